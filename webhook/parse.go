package webhook

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/template"
)

// parse decodes a body as Alertmanager writes it, in one pass: the fields
// of Payload, each once, by their exact names, with strings, label sets,
// the alert list, times, a count or null as their values. Its strings are
// slices of one copy of the body. Anything else it declines (ok false), an
// unknown field or a duplicate among them, and decoding is then left to
// encoding/json (decodeReference), which answers for what a body means:
// FuzzDecode holds parse to it, for what parse accepts.
//
// encoding/json scanned the body three times (validation, decoding, and
// the label sets again) and spent three allocations on each label; it was
// the largest cost of the service's own after the templates.
func parse(body []byte) (p *Payload, ok bool) {
	d := decoder{b: body, s: string(body)}
	p = &Payload{}
	var seen uint32
	ok = d.object(func(key string) bool {
		bit, known := payloadFields[key]
		if !known || seen&bit != 0 {
			return false
		}
		seen |= bit
		switch key {
		case "receiver":
			return d.str(&p.Receiver)
		case "status":
			return d.str(&p.Status)
		case "alerts":
			return d.alerts(&p.Alerts)
		case "notification_reason":
			return d.str(&p.NotificationReason)
		case "groupLabels":
			return d.kv(&p.GroupLabels)
		case "commonLabels":
			return d.kv(&p.CommonLabels)
		case "commonAnnotations":
			return d.kv(&p.CommonAnnotations)
		case "routeLabels":
			return d.kv(&p.RouteLabels)
		case "externalURL":
			return d.str(&p.ExternalURL)
		case "version":
			return d.str(&p.Version)
		case "groupKey":
			return d.str(&p.GroupKey)
		default: // truncatedAlerts
			return d.uint(&p.TruncatedAlerts)
		}
	})
	if !ok || d.space() != len(d.s) {
		return nil, false
	}
	return p, true
}

// payloadFields and alertFields are the JSON names of Payload's and
// template.Alert's fields, each with a bit of its own.
var (
	payloadFields = fieldBits("receiver", "status", "alerts", "notification_reason", "groupLabels", "commonLabels",
		"commonAnnotations", "routeLabels", "externalURL", "version", "groupKey", "truncatedAlerts")
	alertFields = fieldBits("status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint")
)

func fieldBits(names ...string) map[string]uint32 {
	m := make(map[string]uint32, len(names))
	for i, n := range names {
		m[n] = 1 << i
	}
	return m
}

// decoder reads JSON from b at i; s is b as a string.
type decoder struct {
	b []byte
	s string
	i int
}

// space skips whitespace and returns the index of what follows.
func (d *decoder) space() int {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return d.i
		}
	}
	return d.i
}

// next skips whitespace and reports whether c follows, consuming it.
func (d *decoder) next(c byte) bool {
	if d.space() < len(d.s) && d.s[d.i] == c {
		d.i++
		return true
	}
	return false
}

// null consumes a null if one follows.
func (d *decoder) null() bool {
	if d.space(); strings.HasPrefix(d.s[d.i:], "null") {
		d.i += len("null")
		return true
	}
	return false
}

// object reads an object, calling member for each key with d at its value.
func (d *decoder) object(member func(key string) bool) bool {
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		return true
	}
	for {
		key, ok := d.text()
		if !ok || !d.next(':') || !member(key) {
			return false
		}
		if d.next('}') {
			return true
		}
		if !d.next(',') {
			return false
		}
	}
}

// str reads a string, or null, which leaves *v as it is.
func (d *decoder) str(v *string) bool {
	if d.null() {
		return true
	}
	s, ok := d.text()
	if ok {
		*v = s
	}
	return ok
}

// text reads a string.
func (d *decoder) text() (string, bool) {
	start, end, plain := d.token()
	switch {
	case end < 0:
		return "", false
	case plain:
		return d.s[start+1 : end-1], true
	}
	return unquote(d.b[start:end])
}

// unquote decodes a string token with escapes, or invalid UTF-8 that
// becomes U+FFFD, by encoding/json's rules.
func unquote(token []byte) (string, bool) {
	var s string
	err := json.Unmarshal(token, &s)
	return s, err == nil
}

// token finds the string token at d, consuming it: its bounds, quotes
// included, and whether it is plain (no escapes, valid UTF-8), its text
// then being as written. end is -1 if no string token is there, or it
// holds a control character, which JSON does not allow.
func (d *decoder) token() (start, end int, plain bool) {
	if d.space() >= len(d.s) || d.s[d.i] != '"' {
		return 0, -1, false
	}
	start, plain = d.i, true
	ascii := true
	for j := start + 1; j < len(d.s); j++ {
		switch c := d.s[j]; {
		case c == '"':
			d.i = j + 1
			return start, d.i, plain && (ascii || utf8.ValidString(d.s[start+1:j]))
		case c == '\\':
			plain = false
			j++
		case c < ' ':
			return 0, -1, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return 0, -1, false
}

// kv reads an object of strings, or null. A key given twice keeps its
// last value, as encoding/json's maps do.
func (d *decoder) kv(v *template.KV) bool {
	if d.null() {
		return true
	}
	m := template.KV{}
	ok := d.object(func(key string) bool {
		if d.null() {
			m[key] = "" // as encoding/json has it
			return true
		}
		s, ok := d.text()
		m[key] = s
		return ok
	})
	*v = m
	return ok
}

// uint reads an unsigned integer as encoding/json writes one, or null.
func (d *decoder) uint(v *uint64) bool {
	if d.null() {
		return true
	}
	start := d.space()
	for d.i < len(d.s) && '0' <= d.s[d.i] && d.s[d.i] <= '9' {
		d.i++
	}
	digits := d.s[start:d.i]
	if digits == "" || len(digits) > 1 && digits[0] == '0' {
		return false
	}
	if d.i < len(d.s) && strings.IndexByte(".eE-+", d.s[d.i]) >= 0 {
		return false // a number of another form
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	*v = n
	return err == nil
}

// time reads a time by time.Time's own UnmarshalJSON, as encoding/json
// does, or null.
func (d *decoder) time(v *time.Time) bool {
	if d.null() {
		return true
	}
	start, end, _ := d.token()
	return end >= 0 && v.UnmarshalJSON(d.b[start:end]) == nil
}

// alerts reads the list of alerts, or null.
func (d *decoder) alerts(v *template.Alerts) bool {
	if d.null() {
		return true
	}
	if !d.next('[') {
		return false
	}
	as := make(template.Alerts, 0, 8)
	if !d.next(']') {
		for {
			as = append(as, template.Alert{})
			if !d.alert(&as[len(as)-1]) {
				return false
			}
			if d.next(']') {
				break
			}
			if !d.next(',') {
				return false
			}
		}
	}
	*v = as
	return true
}

func (d *decoder) alert(a *template.Alert) bool {
	var seen uint32
	return d.object(func(key string) bool {
		bit, known := alertFields[key]
		if !known || seen&bit != 0 {
			return false
		}
		seen |= bit
		switch key {
		case "status":
			return d.str(&a.Status)
		case "labels":
			return d.kv(&a.Labels)
		case "annotations":
			return d.kv(&a.Annotations)
		case "startsAt":
			return d.time(&a.StartsAt)
		case "endsAt":
			return d.time(&a.EndsAt)
		case "generatorURL":
			return d.str(&a.GeneratorURL)
		default: // fingerprint
			return d.str(&a.Fingerprint)
		}
	})
}
