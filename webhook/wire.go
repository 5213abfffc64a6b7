package webhook

import (
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/template"
)

// wirePayload is Payload as it is decoded: the same fields under the same
// names, with label sets that decode themselves. encoding/json spends three
// allocations on each entry of a map[string]string (the key twice, the
// value); kv spends one on the whole set. FuzzDecode holds the result to
// what decoding into Payload gives.
type wirePayload struct {
	Receiver           string      `json:"receiver"`
	Status             string      `json:"status"`
	Alerts             []wireAlert `json:"alerts"`
	NotificationReason string      `json:"notification_reason"`
	GroupLabels        kv          `json:"groupLabels"`
	CommonLabels       kv          `json:"commonLabels"`
	CommonAnnotations  kv          `json:"commonAnnotations"`
	RouteLabels        kv          `json:"routeLabels"`
	ExternalURL        string      `json:"externalURL"`
	Version            string      `json:"version"`
	GroupKey           string      `json:"groupKey"`
	TruncatedAlerts    uint64      `json:"truncatedAlerts"`
}

// wireAlert is template.Alert as it is decoded.
type wireAlert struct {
	Status       string    `json:"status"`
	Labels       kv        `json:"labels"`
	Annotations  kv        `json:"annotations"`
	StartsAt     time.Time `json:"startsAt"`
	EndsAt       time.Time `json:"endsAt"`
	GeneratorURL string    `json:"generatorURL"`
	Fingerprint  string    `json:"fingerprint"`
}

func (w *wirePayload) payload() *Payload {
	p := &Payload{
		Data: template.Data{
			Receiver:           w.Receiver,
			Status:             w.Status,
			NotificationReason: w.NotificationReason,
			GroupLabels:        template.KV(w.GroupLabels),
			CommonLabels:       template.KV(w.CommonLabels),
			CommonAnnotations:  template.KV(w.CommonAnnotations),
			RouteLabels:        template.KV(w.RouteLabels),
			ExternalURL:        w.ExternalURL,
		},
		Version:         w.Version,
		GroupKey:        w.GroupKey,
		TruncatedAlerts: w.TruncatedAlerts,
	}
	if w.Alerts != nil {
		p.Alerts = make(template.Alerts, len(w.Alerts))
		for i, a := range w.Alerts {
			p.Alerts[i] = template.Alert{
				Status:       a.Status,
				Labels:       template.KV(a.Labels),
				Annotations:  template.KV(a.Annotations),
				StartsAt:     a.StartsAt,
				EndsAt:       a.EndsAt,
				GeneratorURL: a.GeneratorURL,
				Fingerprint:  a.Fingerprint,
			}
		}
	}
	return p
}

// kv is a label set that decodes an object of plain strings into one
// string, its keys and values slices of it. Anything else (null, escapes,
// other types, invalid UTF-8) is left to encoding/json, which decodes it
// as it would a map[string]string, errors included.
type kv template.KV

func (m *kv) UnmarshalJSON(data []byte) error {
	if !plainObject(data) {
		return json.Unmarshal(data, (*map[string]string)(m))
	}
	s := string(data)
	if *m == nil {
		*m = make(kv)
	}
	// plainObject checked the shape: strings without escapes, separated by
	// ':' and ',' with optional whitespace.
	i := skipSpace(s, 0)
	for {
		i = skipSpace(s, i+1) // past '{' or ','
		if s[i] == '}' {
			return nil
		}
		k, j := plainString(s, i)
		i = skipSpace(s, skipSpace(s, j)+1) // past ':'
		v, j := plainString(s, i)
		(*m)[k] = v
		i = skipSpace(s, j)
		if s[i] == '}' {
			return nil
		}
	}
}

// plainObject reports whether data is one JSON object whose keys and
// values are all strings without escapes, in valid UTF-8.
func plainObject(data []byte) bool {
	i := skipSpaceBytes(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpaceBytes(data, i+1)
	if i < len(data) && data[i] == '}' {
		return skipSpaceBytes(data, i+1) == len(data)
	}
	for {
		var ok bool
		if i, ok = plainStringEnd(data, i); !ok {
			return false
		}
		if i = skipSpaceBytes(data, i); i >= len(data) || data[i] != ':' {
			return false
		}
		if i, ok = plainStringEnd(data, skipSpaceBytes(data, i+1)); !ok {
			return false
		}
		if i = skipSpaceBytes(data, i); i >= len(data) {
			return false
		}
		switch data[i] {
		case '}':
			return skipSpaceBytes(data, i+1) == len(data)
		case ',':
			i = skipSpaceBytes(data, i+1)
		default:
			return false
		}
	}
}

// plainStringEnd is the end of the string starting at i if it is one
// without escapes or control characters, in valid UTF-8: what encoding/json
// takes as it is.
func plainStringEnd(data []byte, i int) (int, bool) {
	if i >= len(data) || data[i] != '"' {
		return 0, false
	}
	ascii := true
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			if !ascii && !utf8.Valid(data[i+1:j]) {
				return 0, false
			}
			return j + 1, true
		case c == '\\' || c < ' ':
			return 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return 0, false
}

// plainString is the string starting at i, which plainObject checked, and
// the index past it.
func plainString(s string, i int) (string, int) {
	for j := i + 1; ; j++ {
		if s[j] == '"' {
			return s[i+1 : j], j + 1
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

func skipSpaceBytes(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}
