// Package webhook decodes and validates the body Alertmanager posts to a
// webhook receiver (payload version 4) and derives the keys that identify a
// notification and its group.
package webhook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
)

// Version is the only webhook payload version Alertmanager has ever sent.
const Version = "4"

// Payload is Alertmanager's webhook body: notify/webhook.Message without the
// import cost of the notify package.
type Payload struct {
	template.Data
	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// InvalidError says why a body is not an acceptable webhook payload. The
// receiver answers it with 400 and sends nothing.
type InvalidError struct{ Reason string }

func (e *InvalidError) Error() string { return "invalid webhook payload: " + e.Reason }

func invalid(format string, args ...any) error {
	return &InvalidError{Reason: fmt.Sprintf(format, args...)}
}

// Decode reads one payload from r and validates it. A read error (for example
// http.MaxBytesError) is returned as is; anything wrong with the body itself
// is an *InvalidError. Unknown fields are accepted because Alertmanager adds
// new ones from release to release.
func Decode(r io.Reader) (*Payload, error) {
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return DecodeBytes(body)
}

// DecodeBytes is Decode of a body already read.
func DecodeBytes(body []byte) (*Payload, error) {
	p, ok := parse(body)
	if !ok {
		// A body of another shape, or not JSON: the answer names what is
		// wrong as decoding into Payload does.
		return decodeReference(body)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p.finish()
	return p, nil
}

// decodeReference is DecodeBytes by encoding/json into Payload itself, the
// definition of what a body means: FuzzDecode holds DecodeBytes to it, and
// its errors are the answer to a body that does not decode.
func decodeReference(body []byte) (*Payload, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, invalid("empty body")
	}
	var p Payload
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&p); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, invalid("field %q: cannot use JSON %s as %s", typeErr.Field, typeErr.Value, typeErr.Type)
		}
		return nil, invalid("malformed JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("unexpected data after the JSON object")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p.finish()
	return &p, nil
}

// finish completes a valid payload.
func (p *Payload) finish() {
	// Alertmanager renders route labels before it posts them. Without this
	// mark the routeLabels template function would execute their values, which
	// come from the request, as templates.
	template.MarkRouteLabelsRendered(&p.Data)
	for i := range p.Alerts {
		a := &p.Alerts[i]
		if a.Fingerprint == "" {
			// Very old Alertmanagers omit it; it is the hash of the labels.
			a.Fingerprint = LabelSet(a.Labels).Fingerprint().String()
		}
	}
}

// Validate checks the payload's meaning: the fields a notification cannot do
// without.
func (p *Payload) Validate() error {
	switch {
	case p.Version != Version:
		return invalid("version %q is not supported, want %q", p.Version, Version)
	case p.GroupKey == "":
		return invalid("groupKey is missing")
	case !validStatus(p.Status):
		return invalid("status %q is neither firing nor resolved", p.Status)
	case len(p.Alerts) == 0:
		return invalid("no alerts")
	}
	for i, a := range p.Alerts {
		if !validStatus(a.Status) {
			return invalid("alerts[%d]: status %q is neither firing nor resolved", i, a.Status)
		}
	}
	return nil
}

func validStatus(s string) bool {
	return s == string(model.AlertFiring) || s == string(model.AlertResolved)
}

// Resolved reports whether the whole group is resolved, which closes its
// reply chain.
func (p *Payload) Resolved() bool { return p.Status == string(model.AlertResolved) }

// CommonLabelSet is the group's common label set, which routing matches on.
func (p *Payload) CommonLabelSet() model.LabelSet { return LabelSet(p.CommonLabels) }

// LabelSet is kv as a label set: alerts' fingerprints are the label set's.
func LabelSet(kv template.KV) model.LabelSet {
	ls := make(model.LabelSet, len(kv))
	for k, v := range kv {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}

// NotificationKey identifies one notification of a group to one receiver: a
// hash of the receiver, the group key, the group's status and the sorted
// (fingerprint, status, startsAt, endsAt) of its alerts. Alertmanager's
// retries and the two members of an HA pair produce the same key, while any
// change to the group (an alert added or resolved) produces a new one. The
// external URL and notification reason are left out on purpose: HA peers may
// differ in them for the same notification.
func NotificationKey(receiver string, p *Payload) string {
	return hashSorted([]string{receiver, p.GroupKey, p.Status}, p.Alerts, true)
}

// ResolutionKey identifies what a resolved notification resolves: a hash
// of the receiver, the group key and the sorted (fingerprint, startsAt) of
// its alerts, without their endsAt. The members of an HA pair stamp endsAt
// on their own when an alert times out (Alertmanager's resolve_timeout, or
// Prometheus's last update reaching one member and not the other), so one
// resolution may come as two notifications; their resolution keys agree.
func ResolutionKey(receiver string, p *Payload) string {
	return hashSorted([]string{"resolution", receiver, p.GroupKey}, p.Alerts, false)
}

// hashSorted is the hex SHA-256 of head's fields and then the sorted
// entries of alerts, each field length-prefixed so that no two different
// lists produce the same byte stream. An alert's entry is its
// fingerprint, status, startsAt and endsAt when full, its fingerprint and
// startsAt when not, separated by NUL bytes. The entries are written into
// one buffer and sorted as byte strings, the order of sort.Strings.
func hashSorted(head []string, alerts template.Alerts, full bool) string {
	buf := make([]byte, 0, 96*len(alerts))
	bounds := make([]int, 0, len(alerts)+1)
	bounds = append(bounds, 0)
	for _, a := range alerts {
		buf = append(buf, a.Fingerprint...)
		buf = append(buf, 0)
		if full {
			buf = append(buf, a.Status...)
			buf = append(buf, 0)
		}
		buf = appendTime(buf, a.StartsAt)
		if full {
			buf = append(buf, 0)
			buf = appendTime(buf, a.EndsAt)
		}
		bounds = append(bounds, len(buf))
	}
	entries := make([][]byte, len(alerts))
	for i := range entries {
		entries[i] = buf[bounds[i]:bounds[i+1]]
	}
	slices.SortFunc(entries, bytes.Compare)

	stream := make([]byte, 0, len(buf)+256)
	for _, f := range head {
		stream = appendField(stream, f)
	}
	for _, e := range entries {
		stream = appendField(stream, e)
	}
	sum := sha256.Sum256(stream)
	var hexed [2 * sha256.Size]byte
	hex.Encode(hexed[:], sum[:])
	return string(hexed[:])
}

// appendField appends f, length-prefixed.
func appendField[F string | []byte](stream []byte, f F) []byte {
	stream = strconv.AppendInt(stream, int64(len(f)), 10)
	stream = append(stream, ':')
	return append(stream, f...)
}

func appendTime(b []byte, t time.Time) []byte { return t.UTC().AppendFormat(b, time.RFC3339Nano) }
