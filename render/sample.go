package render

import (
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// SamplePayload is a small group with one firing and one resolved alert.
// Templates are executed against it when a configuration is loaded, so that
// one that cannot execute is refused then.
func SamplePayload() *webhook.Payload {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	labels := func(instance string) template.KV {
		return template.KV{"alertname": "Sample", "severity": "warning", "instance": instance}
	}
	return &webhook.Payload{
		Data: template.Data{
			Receiver: "sample",
			Status:   "firing",
			Alerts: template.Alerts{
				{Status: "firing", Labels: labels("a:9100"), Annotations: template.KV{"summary": "sample"},
					StartsAt: start, GeneratorURL: "http://prometheus.example/graph", Fingerprint: "0000000000000001"},
				{Status: "resolved", Labels: labels("b:9100"), Annotations: template.KV{"summary": "sample"},
					StartsAt: start, EndsAt: start.Add(time.Minute), Fingerprint: "0000000000000002"},
			},
			GroupLabels:       template.KV{"alertname": "Sample"},
			CommonLabels:      template.KV{"alertname": "Sample", "severity": "warning"},
			CommonAnnotations: template.KV{"summary": "sample"},
			ExternalURL:       "http://alertmanager.example",
		},
		Version:  webhook.Version,
		GroupKey: `{}:{alertname="Sample"}`,
	}
}
