package render

import (
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// textEscaper neutralises markup in a text message. Feishu documents no
// escape for a literal "<at ...>" in text, so angle brackets are replaced by
// their full-width forms: the value stays readable, and no tag (a mention
// above all) can be formed from it.
var textEscaper = escaper{value: strings.NewReplacer("<", "＜", ">", "＞")}

// markdownEscaper neutralises card markdown (lark_md) with the HTML entities
// Feishu documents for it: no tag (a mention above all), emphasis, link or
// entity can be formed from a value, and the value still reads the same.
// Label and annotation names keep their underscores, so that templates can
// still look them up by name (.CommonAnnotations.runbook_url); a name can
// at worst make italics, never a tag or a link.
var markdownEscaper = escaper{
	value: strings.NewReplacer(append(markdownEntities, "_", "&#95;")...),
	name:  strings.NewReplacer(markdownEntities...),
}

// markdownEntities are the replacements card markdown needs, "_" aside.
var markdownEntities = []string{
	"&", "&#38;", "<", "&#60;", ">", "&#62;", "*", "&#42;",
	"~", "&#126;", "[", "&#91;", "]", "&#93;", "`", "&#96;",
}

// escaper neutralises values, and names (label and annotation keys) by its
// own rule if it has one.
type escaper struct{ value, name *strings.Replacer }

func (e escaper) kv(kv template.KV) template.KV {
	name := e.name
	if name == nil {
		name = e.value
	}
	out := make(template.KV, len(kv))
	for k, v := range kv {
		out[name.Replace(k)] = e.value.Replace(v)
	}
	return out
}

// neutralised returns a copy of the payload for templates in which every
// value that came from the request has been escaped by e and every time
// moved to loc. Templates then cannot emit markup from alert content,
// whatever they do with it; only the templates themselves (the operator's
// text) and the mention policy can.
func neutralised(p *webhook.Payload, language string, loc *time.Location, e escaper) *Data {
	esc := e.value.Replace
	d := &Data{
		Data: template.Data{
			Receiver:           esc(p.Receiver),
			Status:             p.Status,
			Alerts:             make(template.Alerts, len(p.Alerts)),
			NotificationReason: esc(p.NotificationReason),
			GroupLabels:        e.kv(p.GroupLabels),
			CommonLabels:       e.kv(p.CommonLabels),
			CommonAnnotations:  e.kv(p.CommonAnnotations),
			RouteLabels:        e.kv(p.RouteLabels),
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
			Labels:       e.kv(a.Labels),
			Annotations:  e.kv(a.Annotations),
			StartsAt:     a.StartsAt.In(loc),
			EndsAt:       a.EndsAt.In(loc),
			GeneratorURL: esc(a.GeneratorURL),
			Fingerprint:  esc(a.Fingerprint),
		}
		if p.Resolved() && a.EndsAt.After(d.ResolvedAt) {
			d.ResolvedAt = a.EndsAt.In(loc)
		}
	}
	return d
}
