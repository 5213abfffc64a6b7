package render

import (
	"strings"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// textEscaper neutralises markup in a text message. Feishu documents no
// escape for a literal "<at ...>" in text, so angle brackets are replaced by
// their full-width forms: the value stays readable, and no tag (a mention
// above all) can be formed from it.
var textEscaper = strings.NewReplacer("<", "＜", ">", "＞")

// neutralised returns a copy of the payload for templates in which every
// value that came from the request has been escaped. Templates then cannot
// emit markup from alert content, whatever they do with it; only the
// templates themselves (the operator's text) and the mention policy can.
func neutralised(p *webhook.Payload, language string) *Data {
	esc := textEscaper.Replace
	d := &Data{
		Data: template.Data{
			Receiver:           esc(p.Receiver),
			Status:             p.Status,
			Alerts:             make(template.Alerts, len(p.Alerts)),
			NotificationReason: esc(p.NotificationReason),
			GroupLabels:        escapeKV(p.GroupLabels, esc),
			CommonLabels:       escapeKV(p.Data.CommonLabels, esc),
			CommonAnnotations:  escapeKV(p.CommonAnnotations, esc),
			RouteLabels:        escapeKV(p.RouteLabels, esc),
			ExternalURL:        esc(p.ExternalURL),
		},
		GroupKey:        esc(p.GroupKey),
		TruncatedAlerts: p.TruncatedAlerts,
		Language:        language,
	}
	template.MarkRouteLabelsRendered(&d.Data)
	for i, a := range p.Alerts {
		d.Alerts[i] = template.Alert{
			Status:       a.Status,
			Labels:       escapeKV(a.Labels, esc),
			Annotations:  escapeKV(a.Annotations, esc),
			StartsAt:     a.StartsAt,
			EndsAt:       a.EndsAt,
			GeneratorURL: esc(a.GeneratorURL),
			Fingerprint:  esc(a.Fingerprint),
		}
	}
	return d
}

func escapeKV(kv template.KV, esc func(string) string) template.KV {
	out := make(template.KV, len(kv))
	for k, v := range kv {
		out[esc(k)] = esc(v)
	}
	return out
}
