// Package amtest plays Alertmanager's part in tests and load runs: it makes
// webhook bodies for synthetic alert groups, and posts them the way
// Alertmanager's webhook notifier does, retrying a 5xx or a transport error
// with Alertmanager's backoff.
package amtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// Group is the body of a notification for group n, one alert, with the
// given extra labels (which the group is also grouped by), firing or, with
// resolved, resolved.
func Group(n int, labels map[string]string, resolved bool) []byte {
	return GroupOf(n, 1, labels, resolved)
}

// GroupOf is Group with k alerts, told apart by their instance label.
func GroupOf(n, k int, labels map[string]string, resolved bool) []byte {
	return groupOf(fmt.Sprint(n), k, labels, resolved)
}

// stamp stands for the group number in a Stamper's body.
const stamp = "#GROUP#"

// Stamper makes the bodies of many groups cheaply, for load: one body is
// encoded once and each group's number is stamped into it. The alerts'
// fingerprints are then the same in every group, which Alertmanager would
// not do but which changes nothing here: a notification's key is made with
// its group key.
type Stamper struct{ parts [][]byte }

// NewStamper makes groups of k alerts with the given extra labels.
func NewStamper(k int, labels map[string]string, resolved bool) *Stamper {
	return &Stamper{parts: bytes.Split(groupOf(stamp, k, labels, resolved), []byte(stamp))}
}

// Group returns the body of group n.
func (s *Stamper) Group(n int) []byte {
	return bytes.Join(s.parts, strconv.AppendInt(nil, int64(n), 10))
}

func groupOf(id string, k int, labels map[string]string, resolved bool) []byte {
	start := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	group := template.KV{"alertname": "Storm", "group": id, "severity": "warning"}
	for k, v := range labels {
		group[k] = v
	}
	status, end := "firing", time.Time{}
	if resolved {
		status, end = "resolved", start.Add(10*time.Minute)
	}
	alerts := make(template.Alerts, k)
	for i := range alerts {
		kv := group
		if k > 1 {
			kv = template.KV{"instance": fmt.Sprintf("host-%d:9100", i)}
			for name, v := range group {
				kv[name] = v
			}
		}
		alerts[i] = template.Alert{
			Status:       status,
			Labels:       kv,
			Annotations:  template.KV{"summary": "storm group " + id},
			StartsAt:     start,
			EndsAt:       end,
			GeneratorURL: "http://prometheus.example/graph",
			// As Alertmanager makes it: from the alert's labels.
			Fingerprint: webhook.LabelSet(kv).Fingerprint().String(),
		}
	}
	p := webhook.Payload{
		Data: template.Data{
			Receiver:          "feishu",
			Status:            status,
			Alerts:            alerts,
			GroupLabels:       group,
			CommonLabels:      group,
			CommonAnnotations: template.KV{"summary": "storm group " + id},
			RouteLabels:       template.KV{},
			ExternalURL:       "http://alertmanager.example",
		},
		Version: "4",
	}
	// As Alertmanager makes it: the root route's key and the group's labels.
	p.GroupKey = "{}:" + p.CommonLabelSet().String()
	b, err := json.Marshal(p)
	if err != nil {
		panic(err) // a Payload of strings and times always encodes
	}
	return b
}

// Outcome is how one notification went.
type Outcome struct {
	Attempts int
	Status   int    // the last answer's HTTP status; 0 if there was none
	Body     string // the last answer's body
}

// Post sends body to url as Alertmanager's webhook notifier does: a 2xx is
// done; a 4xx is given up at once; a 5xx or a transport error is tried
// again after Alertmanager's backoff (500 ms, growing 1.5x, ±50%, at most
// 60 s), until ctx is done.
func Post(ctx context.Context, c *http.Client, url string, body []byte) (Outcome, error) {
	var o Outcome
	interval := 500 * time.Millisecond
	for {
		o.Attempts++
		status, answer, err := post(ctx, c, url, body)
		o.Status, o.Body = status, answer
		switch {
		case err == nil && status/100 == 2:
			return o, nil
		case err == nil && status < 500:
			return o, fmt.Errorf("post %s: unrecoverable status %d: %s", url, status, answer)
		}
		wait := time.Duration(float64(interval) * (0.5 + rand.Float64()))
		interval = min(time.Duration(float64(interval)*1.5), time.Minute)
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("status %d: %s", status, answer)
			}
			return o, fmt.Errorf("post %s: gave up after %d attempts: %w", url, o.Attempts, err)
		case <-time.After(wait):
		}
	}
}

func post(ctx context.Context, c *http.Client, url string, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
