// Package render turns an alert group into the Feishu message a receiver
// gets: Alertmanager's template engine and functions, the project's default
// templates, payload values neutralised so that alert text can never become
// markup, and messages sized to Feishu's limits.
package render

import (
	"embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

//go:embed templates/*.tmpl
var defaults embed.FS

// Default template strings of a receiver that sets none of its own.
const (
	DefaultTitle = `{{ template "feishu.default.title" . }}`
	DefaultText  = `{{ template "feishu.default.text" . }}`
)

// MaxTextBytes bounds a text message's request body. Feishu documents 150 KB
// for im/v1 text; for message/v4/send it documents nothing but the generic
// code 19036 "message exceeds the size limit of 30KB", so v4 text stays under
// that.
const MaxTextBytes = 30 * 1024

// envelopeBytes bounds what a request adds around the content: target,
// msg_type, root_id and JSON punctuation.
const envelopeBytes = 256

// Data is what templates see: the payload, every value neutralised, plus
// the receiver's language.
type Data struct {
	template.Data
	GroupKey        string
	TruncatedAlerts uint64
	Language        string
}

// Renderer renders messages from one parsed template set.
type Renderer struct {
	tmpl   *template.Template
	logger *slog.Logger
}

// New parses Alertmanager's default templates, then the project's, then the
// user's template files matching globs, so that a later definition of a name
// overrides an earlier one.
func New(globs []string, logger *slog.Logger) (*Renderer, error) {
	t, err := template.FromGlobs(nil)
	if err != nil {
		return nil, fmt.Errorf("load alertmanager templates: %w", err)
	}
	f, err := defaults.Open("templates/feishu.tmpl")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := t.Parse(f); err != nil {
		return nil, fmt.Errorf("parse default feishu templates: %w", err)
	}
	for _, g := range globs {
		if err := t.FromGlob(g); err != nil {
			return nil, fmt.Errorf("parse templates %s: %w", g, err)
		}
	}
	return &Renderer{tmpl: t, logger: logger}, nil
}

// Check renders a receiver's templates against a sample payload, so that a
// template that cannot execute is found when the configuration is loaded
// rather than when the first alert arrives.
func (r *Renderer) Check(rc *config.Receiver, sample *webhook.Payload) error {
	_, err := r.Render(sample, rc)
	return err
}

// Render returns the message for one receiver. If the message would be over
// Feishu's size limit, alerts are dropped from the end of the list and counted
// in "and N more" until it fits; the title still describes the whole group.
func (r *Renderer) Render(p *webhook.Payload, rc *config.Receiver) (feishu.Message, error) {
	d := neutralised(p, rc.Language)
	title, err := r.execute("title", orDefault(rc.Templates.Title, DefaultTitle), d)
	if err != nil {
		return feishu.Message{}, err
	}
	title = strings.TrimSpace(title)
	text, size, err := r.text(title, d, rc)
	if err != nil {
		return feishu.Message{}, err
	}
	if size <= MaxTextBytes {
		return textMessage(text), nil
	}
	// Binary search for the most alerts that fit.
	all := d.Alerts
	lo, hi, best := 0, len(all)-1, -1
	for lo <= hi {
		n := (lo + hi) / 2
		d.Alerts, d.TruncatedAlerts = all[:n], p.TruncatedAlerts+uint64(len(all)-n)
		cut, csize, err := r.text(title, d, rc)
		if err != nil {
			return feishu.Message{}, err
		}
		if csize <= MaxTextBytes {
			best, text = n, cut
			lo = n + 1
		} else {
			hi = n - 1
		}
	}
	if best >= 0 {
		r.logger.Warn("message over Feishu's size limit, alerts left out",
			"receiver", rc.Name, "limit_bytes", MaxTextBytes, "alerts", len(all), "kept", best)
		return textMessage(text), nil
	}
	// Not even the group without its alert list fits: the common annotations
	// are huge. Cut the text itself. JSON escaping makes the body at least as
	// long as the text, so cutting the excess from the text shrinks the body
	// by at least as much, and the loop ends.
	for size > MaxTextBytes {
		text = truncateBytes(text, len(text)-(size-MaxTextBytes))
		size = textSize(text)
	}
	r.logger.Warn("message over Feishu's size limit even without its alerts, text cut",
		"receiver", rc.Name, "limit_bytes", MaxTextBytes)
	return textMessage(text), nil
}

// text renders the body under title and returns it with the size of the
// request that would carry it.
func (r *Renderer) text(title string, d *Data, rc *config.Receiver) (string, int, error) {
	body, err := r.execute("text", orDefault(rc.Templates.Text, DefaultText), d)
	if err != nil {
		return "", 0, err
	}
	text := strings.TrimSpace(title + "\n" + strings.TrimSpace(body))
	return text, textSize(text), nil
}

func textMessage(text string) feishu.Message {
	return feishu.Message{Type: config.MsgText, Content: feishu.Text{Text: text}}
}

// textSize is the size of a request carrying text as a text message.
func textSize(text string) int {
	b, _ := json.Marshal(feishu.Text{Text: text}) // a string always marshals
	return len(b) + envelopeBytes
}

func (r *Renderer) execute(field, text string, d *Data) (string, error) {
	s, err := r.tmpl.ExecuteTextString(text, d)
	if err != nil {
		return "", fmt.Errorf("render %s: %w", field, err)
	}
	return s, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// truncateBytes cuts s to at most n bytes without splitting a UTF-8
// character, marking the cut with an ellipsis.
func truncateBytes(s string, n int) string {
	const mark = "…"
	if len(s) <= n {
		return s
	}
	if n < len(mark) {
		return ""
	}
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
