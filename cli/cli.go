// Package cli holds the operator's commands besides serve, in the manner of
// amtool: check-config, route test, render and oncall, which read
// routing.yaml, write to the given writer and send nothing anywhere (none
// needs Feishu credentials or a network); and send-test, which sends a test
// notification to Feishu as serve would.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/matcher/parse"
	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/core"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/oncall"
	"github.com/alertmanager-feishu/alertmanager-feishu/state"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// CheckConfig loads file as serve would: the schema, every matcher, the
// templates of every receiver executed against a sample group, and the
// secret files. It prints a summary, or returns every problem found, each
// with its key and YAML line, one a line. No secret is printed.
func CheckConfig(w io.Writer, file string) error {
	cfg, err := config.Load(file)
	if err != nil {
		return problemList(err)
	}
	_, err = core.NewPipeline(cfg, core.PipelineOptions{Logger: promslog.NewNopLogger(), Offline: true})
	if err := errors.Join(err, cfg.CheckSecretFiles()); err != nil {
		return problemList(err)
	}
	fmt.Fprintf(w, "Checking '%s'  SUCCESS\nFound:\n - %d receivers\n - %d routes\n - %d on-call rotations\n - %d template globs\n - state: %s\n - feishu api: %s\n",
		file, len(cfg.Receivers), countRoutes(cfg.Route), len(cfg.OnCall), len(cfg.Templates), cfg.State.Backend, cfg.Feishu.API)
	return nil
}

// problemList is err as check-config prints it under its FAILED line,
// which names the file: one problem a line, indented.
func problemList(err error) error {
	var lines []string
	var flatten func(err error)
	flatten = func(err error) {
		// The error itself, not what it wraps: a join's members are
		// listed one by one, and config.Errors, itself a join, each.
		switch e := err.(type) { //nolint:errorlint // see above
		case config.Errors:
			for _, p := range e {
				lines = append(lines, p.Error())
			}
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				flatten(x)
			}
		default:
			// config.Load's "config <file>: …" goes: the FAILED line
			// names the file.
			var errs config.Errors
			if errors.As(err, &errs) {
				flatten(errs)
				return
			}
			lines = append(lines, err.Error())
		}
	}
	flatten(err)
	return errors.New("  " + strings.Join(lines, "\n  "))
}

func countRoutes(r *config.Route) int {
	n := 1
	for _, c := range r.Routes {
		n += countRoutes(c)
	}
	return n
}

// RouteTest prints the receivers that a group with the given labels
// reaches, comma-separated, as amtool config routes test does. Each label is
// name=value or name="value". With verify, the answer must be exactly those
// receivers, or RouteTest fails.
func RouteTest(w io.Writer, file string, labelArgs []string, verify string) error {
	cfg, err := config.Load(file)
	if err != nil {
		return err
	}
	ls := model.LabelSet{}
	for _, arg := range labelArgs {
		m, err := parse.Matcher(arg)
		if err != nil || m.Type != labels.MatchEqual {
			return fmt.Errorf("label %q: want name=value or name=\"value\"", arg)
		}
		ls[model.LabelName(m.Name)] = model.LabelValue(m.Value)
	}
	pl, err := core.NewPipeline(cfg, core.PipelineOptions{Logger: promslog.NewNopLogger(), Offline: true})
	if err != nil {
		return err
	}
	got := strings.Join(pl.Route.Receivers(ls), ",")
	fmt.Fprintln(w, got)
	if verify != "" && verify != got {
		return fmt.Errorf("receivers %q, want %q", got, verify)
	}
	return nil
}

// Render prints, per receiver, the request that the notification in
// payloadFile would send to Feishu as the first message of its group: the
// receivers it is routed to, or only the one named. People named by email
// are not looked up (that needs Feishu): they show as could-not-mention.
// With escalation, each receiver's first message is followed by the reply
// of each step of its escalation, when the group escalates.
func Render(w io.Writer, file, payloadFile, receiver string, escalation bool) error {
	cfg, err := config.Load(file)
	if err != nil {
		return err
	}
	f, err := os.Open(payloadFile)
	if err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	defer f.Close()
	p, err := webhook.Decode(f)
	if err != nil {
		return fmt.Errorf("payload %s: %w", payloadFile, err)
	}
	pl, err := core.NewPipeline(cfg, core.PipelineOptions{Logger: promslog.NewNopLogger(), Offline: true})
	if err != nil {
		return err
	}
	var receivers []*core.Receiver
	if receiver != "" {
		rc := pl.Receiver(receiver)
		if rc == nil {
			return fmt.Errorf("no receiver %q", receiver)
		}
		receivers = []*core.Receiver{rc}
	} else {
		receivers = pl.Routed(pl.Route.Receivers(p.CommonLabelSet()))
	}
	for i, rc := range receivers {
		// The incident's ID is made when its first message goes: this
		// one has its shape and size, so that the card is measured and
		// cut as the one sent will be.
		id := incident.NewID(state.ChainKey(rc.Name(), rc.Target.String(), p.GroupKey))
		msg, err := rc.RenderFirst(p, pl.Mentions.For(context.Background(), rc.Config, p), id)
		if err != nil {
			return fmt.Errorf("receiver %q: %w", rc.Name(), err)
		}
		var path string
		var body []byte
		switch rc.API {
		case feishu.APIBot:
			// The webhook URL and secret are credentials, not shown; a
			// signed request shows where its signature goes.
			path, body, err = feishu.PreviewBot(msg, feishu.Webhook{Secret: botSecret(rc.Config)})
		case config.APIIMv1:
			msg.UUID = "<uuid of the attempt>"
			fallthrough
		default:
			path, body, err = feishu.Preview(rc.API, msg)
			path = cfg.Feishu.BaseURL + path
		}
		if err != nil {
			return fmt.Errorf("receiver %q: %w", rc.Name(), err)
		}
		pretty, err := readable(body)
		if err != nil {
			return fmt.Errorf("receiver %q: %w", rc.Name(), err)
		}
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "# receiver %s: %s %s, %s\nPOST %s\n%s\n", rc.Name(), rc.Target.Kind, rc.Target.ID, msg.Type, path, pretty.String())
		if escalation {
			if err := renderEscalation(w, pl, rc, p); err != nil {
				return err
			}
		}
	}
	if len(receivers) == 0 {
		fmt.Fprintln(w, "# no receiver")
	}
	return nil
}

// readable indents a request body for reading. im/v1 carries the message
// in "content" as a JSON string, which printed as it is sent would be one
// long line of escaped quotes; readable shows that string's JSON as JSON,
// in its place, the other fields as they are and in their order.
func readable(body []byte) (*bytes.Buffer, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var out bytes.Buffer
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("request body is not a JSON object")
	}
	out.WriteByte('{')
	for i := 0; dec.More(); i++ {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		var s string
		if t == "content" && json.Unmarshal(v, &s) == nil && json.Valid([]byte(s)) {
			v = json.RawMessage(s)
		}
		if i > 0 {
			out.WriteByte(',')
		}
		k, _ := json.Marshal(t)
		out.Write(k)
		out.WriteByte(':')
		out.Write(v)
	}
	out.WriteByte('}')
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, out.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	return &pretty, nil
}

// botSecret is a placeholder for a custom bot's signing secret, "" when its
// requests are not signed.
func botSecret(rc *config.Receiver) string {
	if rc.Secret != "" || rc.SecretFile != "" {
		return "<secret>"
	}
	return ""
}

// OnCall prints who is on call in each rotation at the RFC 3339 time at
// (now when empty), and whom each receiver would mention.
func OnCall(w io.Writer, file, at string) error {
	cfg, err := config.Load(file)
	if err != nil {
		return err
	}
	t := time.Now()
	if at != "" {
		if t, err = time.Parse(time.RFC3339, at); err != nil {
			return fmt.Errorf("--at %q: want RFC 3339 time like 2026-02-10T12:00:00+08:00", at)
		}
	}
	return oncall.Preview(w, cfg, t)
}
