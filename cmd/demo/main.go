// Command demo shows the service at work without a Feishu app: it starts
// the Feishu stand-in and the service on loopback, replays the webhook
// bodies captured from a real Alertmanager, and prints what "Feishu"
// received. Run it with go run ./cmd/demo from the repository root.
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
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
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

	fmt.Println("building the service …")
	bin, err := servicetest.Build(dir)
	if err != nil {
		return err
	}
	svc, err := servicetest.Start(bin, "--config.file="+cfg)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = svc.Stop(ctx)
	}()
	fmt.Printf("service on %s, Feishu stand-in on %s\n\n", svc.URL, fs.URL)

	for _, name := range replay {
		body, err := os.ReadFile(filepath.Join("testdata", "alertmanager", name))
		if err != nil {
			return fmt.Errorf("%w (run the demo from the repository root)", err)
		}
		resp, err := http.Post(svc.URL+"/webhook", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("POST /webhook  %-48s → %d %s", name, resp.StatusCode, answer)
	}

	fmt.Println("\nWhat Feishu received:")
	names := map[string]int{}
	for i, m := range fs.Messages() {
		names[m.ID] = i + 1
		fmt.Printf("\n── message %d (%s, %s) to %s %s", i+1, m.API, m.Type, m.Target, m.TargetID)
		if m.RootID != "" {
			fmt.Printf(", a reply to message %d", names[m.RootID])
		}
		if m.Updates > 0 {
			fmt.Printf(", card updated in place %d time(s); as it reads now", m.Updates)
		}
		fmt.Printf("\n%s\n", indent(m.Text))
	}
	return nil
}

func indent(s string) string {
	return "   " + strings.ReplaceAll(s, "\n", "\n   ")
}
