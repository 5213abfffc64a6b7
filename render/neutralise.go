package render

import (
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// textEscaper neutralises markup in a text message. Feishu documents no
// escape for a literal "<at ...>" in text, so angle brackets are replaced by
// their full-width forms: the value stays readable, and no tag (a mention
// above all) can be formed from it.
var textEscaper = escaper{value: strings.NewReplacer("<", "＜", ">", "＞")}

// imTextEscaper neutralises markup in an im/v1 text message, which also
// parses **bold** and [label](url): asterisks and square brackets take
// their full-width forms too, as angle brackets do. v4 text parses
// neither, so its values are left as they were.
var imTextEscaper = escaper{value: strings.NewReplacer(
	"<", "＜", ">", "＞", "*", "＊", "[", "［", "]", "］")}

// textEscaperFor is the escaper of text messages sent through api.
func textEscaperFor(api string) escaper {
	if api == config.APIIMv1 {
		return imTextEscaper
	}
	return textEscaper
}

// markdownEscaper neutralises card markdown (lark_md) with the HTML entities
// Feishu documents for it: no tag (a mention above all), emphasis, link or
// entity can be formed from a value, and the value still reads the same.
// Label and annotation names keep their underscores, so that templates can
// still look them up by name (.CommonAnnotations.runbook_url); a name can
// at worst make italics, never a tag or a link.
var markdownEscaper = escaper{
	value: emojiEscaper{strings.NewReplacer(append(markdownEntities, "_", "&#95;")...)},
	name:  emojiEscaper{strings.NewReplacer(markdownEntities...)},
}

// markdownEntities are the replacements card markdown needs, "_" aside.
var markdownEntities = []string{
	"&", "&#38;", "<", "&#60;", ">", "&#62;", "*", "&#42;",
	"~", "&#126;", "[", "&#91;", "]", "&#93;", "`", "&#96;",
}

// replacer is what an escaper replaces a value with: a *strings.Replacer,
// or one that also looks at the value as a whole.
type replacer interface{ Replace(s string) string }

// emojiEscaper is r followed by the neutralising of emoji keys: card
// markdown renders :KEY: as an emoji, so the colons around a key in a value
// become &#58;. Only those: a colon elsewhere (host:9100, 23:01) cannot
// make an emoji within the value, and stays as written. The default
// templates never write a colon against a value; a template that does
// could pair it with a value's lone colon.
type emojiEscaper struct{ r replacer }

func (e emojiEscaper) Replace(s string) string {
	// A key takes two colons: most values with one (host:9100) have none.
	if i := strings.IndexByte(s, ':'); i < 0 || strings.IndexByte(s[i+1:], ':') < 0 {
		return e.r.Replace(s)
	}
	// Keys are found in the value as written, before "_" becomes an
	// entity, so that Feishu finds none whichever it reads first.
	var b strings.Builder
	last := 0
	for _, k := range emojiKey.FindAllStringIndex(s, -1) {
		b.WriteString(e.r.Replace(s[last:k[0]]))
		b.WriteString("&#58;" + e.r.Replace(s[k[0]+1:k[1]-1]) + "&#58;")
		last = k[1]
	}
	b.WriteString(e.r.Replace(s[last:]))
	return b.String()
}

// emojiKey is a :KEY: of card markdown, by the characters Feishu's keys
// are made of (OK, Status_PrivateMessage, 2022).
var emojiKey = regexp.MustCompile(`:[0-9A-Za-z_]+:`)

// escaper neutralises values, and names (label and annotation keys) by its
// own rule if it has one.
type escaper struct{ value, name replacer }

func (e escaper) kv(kv template.KV) template.KV {
	name := e.name
	if name == nil {
		name = e.value
	}
	// Most label sets have nothing to escape: templates then read the
	// payload's own, which nothing writes to.
	if e.leaves(kv, name) {
		return kv
	}
	out := make(template.KV, len(kv))
	for k, v := range kv {
		out[name.Replace(k)] = e.value.Replace(v)
	}
	return out
}

// leaves reports whether e would leave every name (escaped by name) and
// value of kv as it is. The replacers return a string they leave alone
// without copying it.
func (e escaper) leaves(kv template.KV, name replacer) bool {
	for k, v := range kv {
		if name.Replace(k) != k || e.value.Replace(v) != v {
			return false
		}
	}
	return true
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
