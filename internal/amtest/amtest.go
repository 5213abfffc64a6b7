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
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// Group is the body of a notification for group n, one alert, with the
// given extra labels (which the group is also grouped by), firing or, with
// resolved, resolved.
func Group(n int, labels map[string]string, resolved bool) []byte {
	start := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	kv := template.KV{"alertname": "Storm", "group": fmt.Sprint(n), "severity": "warning"}
	for k, v := range labels {
		kv[k] = v
	}
	status, end := "firing", time.Time{}
	if resolved {
		status, end = "resolved", start.Add(10*time.Minute)
	}
	p := webhook.Payload{
		Data: template.Data{
			Receiver: "feishu",
			Status:   status,
			Alerts: template.Alerts{{
				Status:       status,
				Labels:       kv,
				Annotations:  template.KV{"summary": fmt.Sprintf("storm group %d", n)},
				StartsAt:     start,
				EndsAt:       end,
				GeneratorURL: "http://prometheus.example/graph",
			}},
			GroupLabels:       kv,
			CommonLabels:      kv,
			CommonAnnotations: template.KV{},
			RouteLabels:       template.KV{},
			ExternalURL:       "http://alertmanager.example",
		},
		Version: "4",
	}
	// As Alertmanager makes them: the root route's key and the group's
	// labels, and the alert's fingerprint from its labels.
	ls := p.CommonLabelSet()
	p.GroupKey = "{}:" + ls.String()
	p.Alerts[0].Fingerprint = ls.Fingerprint().String()
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
