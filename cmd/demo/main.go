// Command demo shows the service at work without a Feishu app: it starts
// the Feishu stand-in and the service on loopback, replays the webhook
// bodies captured from a real Alertmanager, and prints each chat as a
// reader would see it: one chat at a time, each reply chain from its first
// message, as first sent, through its replies to the first message as it
// reads at the end. The output is the same on every run but for the ports.
// Run it with go run ./cmd/demo from the repository root.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/servicetest"
)

const routing = `
feishu:
  base_url: %s
  app_id: %s
  app_secret: %s
state:
  path: state.db
receivers:
  - {name: infra, chat_id: oc_infra}
  - {name: oncall, chat_id: oc_oncall, language: zh}
  - {name: catchall, chat_id: oc_catchall, msg_type: post}
route:
  receiver: catchall
  routes:
    - {matchers: ['team="infra"'], receiver: infra, continue: true}
    - {matchers: ['severity="critical"'], receiver: oncall}
`

// chats are the demo's chats in the order it prints them: its receivers'.
var chats = []struct{ receiver, id string }{
	{"infra", "oc_infra"}, {"oncall", "oc_oncall"}, {"catchall", "oc_catchall"},
}

// The captured bodies in the order Alertmanager sent them.
var replay = []string{
	"firing-HighCPU-seq1-first-notification.json",
	"firing-HighCPU-seq2-new-alerts-added.json",
	"firing-HighCPU-seq2-new-alerts-added.json", // Alertmanager retrying: deduped
	"firing-HighCPU-seq3-some-alerts-resolved.json",
	"resolved-HighCPU-seq4-all-alerts-resolved.json",
	"firing-DiskFull-default.json",
	"resolved-DiskFull-default.json",
}

func main() {
	start := func(cfg string) (*servicetest.Service, error) {
		fmt.Println("building the service …")
		bin, err := servicetest.Build(filepath.Dir(cfg))
		if err != nil {
			return nil, err
		}
		return servicetest.Start(bin, "--config.file="+cfg)
	}
	if err := run(os.Stdout, ".", start); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// run replays the captured bodies found under root's testdata to a service
// that start runs with the configuration file it is given, and writes what
// each chat shows to w.
func run(w io.Writer, root string, start func(cfg string) (*servicetest.Service, error)) error {
	dir, err := os.MkdirTemp("", "amfeishu-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fs, err := feishutest.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer fs.Close()
	cfg := filepath.Join(dir, "routing.yaml")
	err = os.WriteFile(cfg, fmt.Appendf(nil, routing, fs.URL, feishutest.AppID, feishutest.AppSecret), 0o600)
	if err != nil {
		return err
	}
	svc, err := start(cfg)
	if err != nil {
		return err
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return svc.Stop(ctx)
	}
	defer func() { _ = stop() }()
	fmt.Fprintf(w, "service on %s, Feishu stand-in on %s\n\n", svc.URL, fs.URL)

	for _, name := range replay {
		body, err := os.ReadFile(filepath.Join(root, "testdata", "alertmanager", name))
		if err != nil {
			return fmt.Errorf("%w (run the demo from the repository root)", err)
		}
		resp, err := http.Post(svc.URL+"/webhook", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(w, "POST /webhook  %-48s → %d %s", name, resp.StatusCode, answer)
	}
	// A root card's update on resolve may go on after the answer: the
	// service finishes it before it exits.
	if err := stop(); err != nil {
		return fmt.Errorf("service: %w", err)
	}

	fmt.Fprintln(w, "\nWhat each chat shows, oldest message first:")
	msgs := fs.Messages()
	for _, chat := range chats {
		printChat(w, chat.receiver, chat.id, msgs)
	}
	return nil
}

// printChat writes the chat's reply chains in the order their first
// messages were sent: each first message as it was sent, its replies, and
// the first message again as it reads now if it was updated in place.
func printChat(w io.Writer, receiver, chatID string, msgs []feishutest.Message) {
	fmt.Fprintf(w, "\n══ chat %s (receiver %s)\n", chatID, receiver)
	number := map[string]int{}
	var inChat []feishutest.Message
	for _, m := range msgs {
		if m.TargetID == chatID {
			inChat = append(inChat, m)
			number[m.ID] = len(inChat)
		}
	}
	if len(inChat) == 0 {
		fmt.Fprintln(w, "\n   (no message)")
		return
	}
	for _, root := range inChat {
		if root.RootID != "" {
			continue
		}
		first := root.Text
		if root.Updates > 0 {
			first = root.FirstText
		}
		fmt.Fprintf(w, "\n── message %d (%s, %s), a new chain\n%s\n", number[root.ID], root.API, root.Type, indent(first))
		for _, m := range inChat {
			if m.RootID == root.ID {
				fmt.Fprintf(w, "\n── message %d (%s, %s), a reply to message %d\n%s\n", number[m.ID], m.API, m.Type, number[root.ID], indent(m.Text))
			}
		}
		if root.Updates > 0 {
			fmt.Fprintf(w, "\n── message %d as it reads now, updated in place %d time(s)\n%s\n", number[root.ID], root.Updates, indent(root.Text))
		}
	}
}

func indent(s string) string {
	return "   " + strings.ReplaceAll(s, "\n", "\n   ")
}
