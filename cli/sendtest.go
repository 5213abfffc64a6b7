package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/matcher/parse"
	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/core"
	"github.com/alertmanager-feishu/alertmanager-feishu/state"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// TestAlertName is the alertname of the notification send-test sends.
const TestAlertName = "AlertmanagerFeishuTest"

// SendTestOptions say what SendTest sends and where.
type SendTestOptions struct {
	ConfigFile string
	// Receiver is the receiver to send to; "" routes the test alert's
	// labels through the route tree, as POST /webhook does.
	Receiver string
	// Labels are name=value pairs added to the test alert's labels (or
	// replacing them: alertname, severity).
	Labels []string
	// Resolved also sends the group's resolved notification, a reply to
	// the first message, once the firing one is delivered.
	Resolved bool
	// Timeout bounds each notification, waits under the rate limits and
	// retries included; 0 is none.
	Timeout time.Duration
	Logger  *slog.Logger
}

// SendTest sends a test notification to Feishu through the whole pipeline
// serve uses: the configuration and its secrets, routing, templates,
// mentions (emails are looked up), the rate limits and retries, and the
// reply chain. With Resolved the group's resolved notification follows as a
// reply to the first message, which is updated in place on im/v1.
//
// It keeps its chain in a state store of its own, in a temporary folder
// removed when it returns, not in the configured one: a running service
// holds the file store's lock, and a test must not join or close a real
// group's chain. Its messages are new chains, nothing schedules their
// escalation, and the service knows nothing of them: buttons on their cards
// find no incident.
func SendTest(ctx context.Context, w io.Writer, o SendTestOptions) error {
	cfg, err := config.Load(o.ConfigFile)
	if err != nil {
		return err
	}
	ls := model.LabelSet{"alertname": TestAlertName, "severity": "info"}
	for _, arg := range o.Labels {
		m, err := parse.Matcher(arg)
		if err != nil || m.Type != labels.MatchEqual {
			return fmt.Errorf("label %q: want name=value or name=\"value\"", arg)
		}
		ls[model.LabelName(m.Name)] = model.LabelValue(m.Value)
	}
	pl, err := core.NewPipeline(cfg, core.PipelineOptions{Logger: o.Logger})
	if err != nil {
		return err
	}
	var receivers []*core.Receiver
	if o.Receiver != "" {
		rc := pl.Receiver(o.Receiver)
		if rc == nil {
			return fmt.Errorf("no receiver %q", o.Receiver)
		}
		receivers = []*core.Receiver{rc}
	} else {
		receivers = pl.Routed(pl.Route.Receivers(ls))
	}

	dir, err := os.MkdirTemp("", "alertmanager-feishu-send-test")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store, err := state.OpenFile(filepath.Join(dir, "state.db"), state.Options{
		ChainTTL: time.Duration(cfg.State.ChainTTL), DedupeWindow: time.Duration(cfg.State.DedupeWindow),
	}, o.Logger)
	if err != nil {
		return fmt.Errorf("send-test state: %w", err)
	}
	defer store.Close()
	c := core.New(store, pl, core.Options{Logger: o.Logger})

	start := time.Now().UTC().Truncate(time.Second)
	steps := []string{"firing"}
	if o.Resolved {
		steps = append(steps, "resolved")
	}
	var failed []error
	for _, status := range steps {
		body, err := testPayload(ls, status, start, time.Now().UTC())
		if err != nil {
			return err
		}
		p, err := webhook.DecodeBytes(body)
		if err != nil {
			return fmt.Errorf("test notification: %w", err)
		}
		for _, rc := range receivers {
			key := webhook.NotificationKey(rc.Name(), p)
			out := notify(ctx, c, rc, core.Notification{Payload: p, Key: key, Body: body}, o.Timeout)
			fmt.Fprintf(w, "receiver %s (%s): %s test notification ", rc.Name(), rc.Target, status)
			if out.Status != core.Sent {
				err := out.Err
				if err == nil {
					err = errors.New(string(out.Status))
				}
				fmt.Fprintf(w, "FAILED: %v\n", err)
				failed = append(failed, fmt.Errorf("receiver %q: %w", rc.Name(), err))
				continue
			}
			fmt.Fprintln(w, "sent"+describe(ctx, store, rc, p, key))
		}
		if len(failed) > 0 {
			break // a resolution of a group not delivered would start a chain of its own
		}
	}
	if len(receivers) == 0 {
		fmt.Fprintf(w, "no receiver: the route tree sends %s to none\n", ls)
	}
	// The root card's update on resolve goes on after Notify returns.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.Shutdown(sctx)
	return errors.Join(failed...)
}

func notify(ctx context.Context, c *core.Core, rc *core.Receiver, n core.Notification, timeout time.Duration) core.Outcome {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return c.Notify(ctx, rc, n)
}

// describe says where the message went in its chain.
func describe(ctx context.Context, store state.Store, rc *core.Receiver, p *webhook.Payload, key string) string {
	l, err := store.Load(ctx, state.ChainKey(rc.Name(), rc.Target.String(), p.GroupKey), key)
	if err != nil {
		return ""
	}
	in := l.Incident
	if in == nil {
		in = l.Closed
	}
	switch {
	case in == nil || in.Root == "":
		return ""
	case p.Resolved():
		return ", a reply to " + in.Root
	default:
		return ", message " + in.Root
	}
}

// testPayload is the webhook Alertmanager would post for a group of one
// alert with labels ls, firing since start, or resolved at now.
func testPayload(ls model.LabelSet, status string, start, now time.Time) ([]byte, error) {
	kv := map[string]string{}
	var names []string
	for n, v := range ls {
		kv[string(n)] = string(v)
		names = append(names, fmt.Sprintf("%s=%q", n, v))
	}
	slices.Sort(names)
	end := time.Time{}
	if status == "resolved" {
		end = now
		if !end.After(start) {
			end = start.Add(time.Second)
		}
	}
	annotations := map[string]string{
		"summary":     "A test notification from alertmanager-feishu send-test",
		"description": "Sent by hand to check the receiver's chat, app and templates; no alert is firing.",
	}
	alert := map[string]any{
		"status": status, "labels": kv, "annotations": annotations,
		"startsAt": start, "endsAt": end, "generatorURL": "", "fingerprint": ls.Fingerprint().String(),
	}
	return json.Marshal(map[string]any{
		"version": "4", "groupKey": "{}:{" + strings.Join(names, ", ") + "}", "truncatedAlerts": 0,
		"status": status, "receiver": "send-test",
		"groupLabels": map[string]string{"alertname": kv["alertname"]}, "commonLabels": kv, "commonAnnotations": annotations,
		"externalURL": "", "alerts": []any{alert},
	})
}
