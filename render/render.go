// Package render turns an alert group into the Feishu message a receiver
// gets: Alertmanager's template engine and functions, the project's default
// templates, payload values neutralised so that alert text can never become
// markup, text, post or card messages, and sizes kept within Feishu's limits.
package render

import (
	"embed"
	"errors"
	"fmt"
	tmplhtml "html/template"
	"log/slog"
	"strings"
	"sync"
	tmpltext "text/template"
	"time"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/oncall"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

//go:embed templates/*.tmpl
var defaults embed.FS

// Default template strings of a receiver that sets none of its own.
const (
	DefaultTitle = `{{ template "feishu.default.title" . }}`
	DefaultText  = `{{ template "feishu.default.text" . }}`
	DefaultCard  = `{{ template "feishu.default.card" . }}`
)

// Size limits of a message, by what Feishu documents: im/v1 takes 150 KB
// of text and 30 KB of post or card, a custom bot 20 KB. For
// message/v4/send it documents nothing but the generic code 19036
// "message exceeds the size limit of 30KB", so everything sent through v4
// stays under that. Feishu does not say whether its KB is 1,000 bytes or
// 1,024: they are read as the smaller.
const (
	MaxTextBytes = 150 * 1000
	MaxCardBytes = 30 * 1000
	MaxBotBytes  = 20 * 1000
	// MaxTitleBytes bounds a message's title, before encoding.
	MaxTitleBytes = 1024
)

// budgetPercent is the share of Feishu's limit a message is cut to: the
// margin is for whatever Feishu counts that the service cannot see.
const budgetPercent = 95

// Limit is Feishu's size limit for a message of msgType sent through api
// (feishu.APIBot for a custom bot).
func Limit(api, msgType string) int {
	if api == feishu.APIBot {
		return MaxBotBytes
	}
	if api == config.APIIMv1 && msgType == config.MsgText {
		return MaxTextBytes
	}
	return MaxCardBytes
}

// MaxBytes is the size a message of msgType sent through api is cut to,
// as feishu.Footprint counts it: a margin under Limit.
func MaxBytes(api, msgType string) int {
	return Limit(api, msgType) * budgetPercent / 100
}

// Data is what templates see: the payload, every value neutralised and
// every time in the receiver's time zone, plus the receiver's language.
type Data struct {
	template.Data
	GroupKey        string
	TruncatedAlerts uint64
	Language        string
	// ResolvedAt is when the last alert of a resolved group ended.
	ResolvedAt time.Time
}

// Renderer renders messages for one API from one parsed template set.
type Renderer struct {
	// set is the parsed templates: Alertmanager's, the project's and the
	// user's, with Alertmanager's functions.
	set    *tmpltext.Template
	api    string
	logger *slog.Logger
	// compiled holds each template string of the configuration parsed
	// against set. Alertmanager's ExecuteTextString clones the whole set
	// and parses the string on every call, which was a third of a render.
	compiled sync.Map // string -> *tmpltext.Template
	// fast is whether the default template strings may be rendered by
	// fastFuncs: no template file redefined what they use.
	fast bool
}

// New parses Alertmanager's default templates, then the project's, then the
// user's template files matching globs, so that a later definition of a name
// overrides an earlier one. Messages are sized for api.
func New(globs []string, api string, logger *slog.Logger) (*Renderer, error) {
	var set *tmpltext.Template
	t, err := template.FromGlobs(nil, func(text *tmpltext.Template, _ *tmplhtml.Template) { set = text })
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
	defaultTrees := treesOf(set)
	for _, g := range globs {
		if err := t.FromGlob(g); err != nil {
			return nil, fmt.Errorf("parse templates %s: %w", g, err)
		}
	}
	fast := sameTrees(defaultTrees, set) && fastWrittenFor()
	return &Renderer{set: set, api: api, logger: logger, fast: fast}, nil
}

// Check renders every receiver's templates against a sample group, so that
// a template that cannot execute is found when the configuration is loaded
// rather than when the first alert arrives. It reports every receiver that
// fails, each by name.
func (r *Renderer) Check(receivers []*config.Receiver) error {
	sample := SamplePayload()
	var errs []error
	for _, rc := range receivers {
		if _, err := r.Render(sample, rc, oncall.Mentions{}); err != nil {
			errs = append(errs, fmt.Errorf("receiver %q: %w", rc.Name, err))
		}
	}
	return errors.Join(errs...)
}

// views are the two neutralised copies of a group: one for plain text
// (titles, text and post messages), one for card markdown.
type views struct{ text, markdown *Data }

// alerts are the views' whole alert lists, each neutralised for its view.
type alerts struct{ text, markdown template.Alerts }

func (v views) alerts() alerts { return alerts{v.text.Alerts, v.markdown.Alerts} }

// keep shows the first n alerts of all in each view, its own neutralised
// copy, and counts the rest as truncated.
func (v views) keep(all alerts, truncated uint64, n int) {
	v.markdown.Alerts, v.markdown.TruncatedAlerts = all.markdown[:n], truncated+uint64(len(all.markdown)-n)
	v.text.Alerts, v.text.TruncatedAlerts = all.text[:n], truncated+uint64(len(all.text)-n)
}

// Render returns the message for one receiver. If the message would be over
// Feishu's size limit, alerts are dropped from the end of the list and counted
// in "and N more" until it fits; the title still describes the whole group.
func (r *Renderer) Render(p *webhook.Payload, rc *config.Receiver, mentions oncall.Mentions) (feishu.Message, error) {
	return r.RenderWith(p, rc, mentions, Options{})
}

// followUp introduces the time of a group's first message in a later one
// through a custom bot, which cannot reply to it.
var followUp = map[string]string{"en": "Follow-up to the message of %s.", "zh": "接续 %s 的消息。"}

// RenderAfter is Render for a custom bot receiver: first, when not zero,
// is when the group's first message was sent (see Options.FirstSent).
func (r *Renderer) RenderAfter(p *webhook.Payload, rc *config.Receiver, mentions oncall.Mentions, first time.Time) (feishu.Message, error) {
	return r.RenderWith(p, rc, mentions, Options{FirstSent: first})
}

// RenderWith is Render with what the message shows of its incident. The
// card's state lines and buttons are outside the body, like the mentions:
// sizing counts them but never cuts them, so a huge group loses alerts
// rather than its buttons.
func (r *Renderer) RenderWith(p *webhook.Payload, rc *config.Receiver, mentions oncall.Mentions, o Options) (feishu.Message, error) {
	first := o.FirstSent
	loc := rc.Location
	if loc == nil {
		loc = time.UTC
	}
	msgType := rc.MsgType
	if msgType == "" {
		msgType = config.MsgText
	}
	api := r.api
	if rc.IsBot() {
		api = feishu.APIBot
	}
	// Text messages through im/v1 parse more markup than the rest: their
	// view (the title included, which is the text's first line) escapes it.
	te := textEscaper
	if msgType == config.MsgText {
		te = textEscaperFor(api)
	}
	v := views{text: neutralised(p, rc.Language, loc, te)}
	v.markdown = v.text
	bodyTmpl := orDefault(rc.Templates.Text, DefaultText)
	if msgType == config.MsgInteractive {
		v.markdown = neutralised(p, rc.Language, loc, markdownEscaper)
		bodyTmpl = orDefault(rc.Templates.Text, DefaultCard)
	}
	title, err := r.execute("title", orDefault(rc.Templates.Title, DefaultTitle), v.text)
	if err != nil {
		return feishu.Message{}, err
	}
	// A title is one line in a header; a group label of kilobytes must not
	// crowd the body out of the size limit, or the title alone exceed it.
	title = truncateBytes(strings.TrimSpace(title), MaxTitleBytes)
	m := message{typ: msgType, title: title, lang: rc.Language, links: links(p, rc.Language), color: color(p), mentions: mentions, text: te}
	if st := o.Card; st != nil && msgType == config.MsgInteractive {
		w := wordsFor(rc.Language)
		m.state, m.acts = stateLines(p, st, w, loc), incidentButtons(p, st, w)
		m.links = silenceLink(m.links, st, w)
	}
	note := ""
	if !first.IsZero() {
		format, ok := followUp[rc.Language]
		if !ok {
			format = followUp["en"]
		}
		note = fmt.Sprintf(format, first.In(loc).Format("2006-01-02 15:04:05 MST")) + "\n"
	}
	body := func() (string, error) {
		s, err := r.execute("text", bodyTmpl, v.markdown)
		return note + strings.TrimSpace(s), err
	}

	limit := MaxBytes(api, msgType)
	if o.MaxBytes > 0 {
		limit = o.MaxBytes
	}
	if m.body, err = body(); err != nil {
		return feishu.Message{}, err
	}
	if m.sizeBound() <= limit || r.size(api, m) <= limit {
		return m.build(), nil
	}
	// Binary search for the most alerts that fit.
	// Each view keeps its own alerts: a card's are escaped for markdown,
	// and the text view's would let a value's "*" or "&" be markup there.
	all := v.alerts()
	lo, hi, best := 0, len(all.text)-1, -1
	var fits string
	for lo <= hi {
		n := (lo + hi) / 2
		v.keep(all, p.TruncatedAlerts, n)
		if m.body, err = body(); err != nil {
			return feishu.Message{}, err
		}
		if r.size(api, m) <= limit {
			best, fits = n, m.body
			lo = n + 1
		} else {
			hi = n - 1
		}
	}
	if best >= 0 {
		r.logger.Warn("message over Feishu's size limit, alerts left out",
			"receiver", rc.Name, "limit_bytes", limit, "alerts", len(all.text), "kept", best)
		m.body = fits
		return m.build(), nil
	}
	// Not even the group without its alert list fits: the common annotations
	// are huge. Cut the body itself, and say so below it. Encoding makes
	// the request at least as long as the body, so cutting the excess from
	// the body shrinks the request by at least as much. Once the body is
	// gone, what is left (the title, mentions, links) cannot shrink: refuse
	// rather than loop.
	text, note := m.body, "\n"+cutNote(rc.Language)
	m.body = text + note
	for size := r.size(api, m); size > limit; size = r.size(api, m) {
		if text == "" {
			return feishu.Message{}, fmt.Errorf("render: message is %d bytes over its size limit of %d without any body", size-limit, limit)
		}
		text = truncateBytes(text, len(text)-(size-limit))
		if msgType == config.MsgInteractive {
			text = dropPartialEntity(text)
		}
		m.body = text + note
	}
	r.logger.Warn("message over Feishu's size limit even without its alerts, text cut",
		"receiver", rc.Name, "limit_bytes", limit)
	return m.build(), nil
}

// size is the size Feishu may count for m through api: its request's and
// its style tags' (feishu.Footprint). It encodes m's content alone, once
// per probe of the cutting above.
func (r *Renderer) size(api string, m message) int {
	return feishu.Footprint(api, m.build())
}

// cutNotes say below a body that it was cut.
var cutNotes = map[string]string{
	"en": "(some content was cut to fit Feishu's size limit)",
	"zh": "（部分内容超出飞书的大小限制，已截去）",
}

func cutNote(lang string) string {
	if n, ok := cutNotes[lang]; ok {
		return n
	}
	return cutNotes["en"]
}

func (r *Renderer) execute(field, text string, d *Data) (string, error) {
	if text == "" {
		return "", nil
	}
	if f := fastFuncs[text]; f != nil && r.fast {
		return f(d), nil
	}
	return r.executeTemplate(field, text, d)
}

// executeTemplate is execute by the template engine alone.
func (r *Renderer) executeTemplate(field, text string, d *Data) (string, error) {
	t, err := r.compile(text)
	if err == nil {
		var b strings.Builder
		err = t.Execute(&b, d)
		if err == nil {
			return b.String(), nil
		}
	}
	return "", fmt.Errorf("render %s: %w", field, err)
}

// compile parses text against the template set once, as Alertmanager's
// ExecuteTextString would on each call. Its routeLabels function renders
// nothing: route labels are in .RouteLabels already.
func (r *Renderer) compile(text string) (*tmpltext.Template, error) {
	if t, ok := r.compiled.Load(text); ok {
		return t.(*tmpltext.Template), nil
	}
	t, err := r.set.Clone()
	if err != nil {
		return nil, err
	}
	noRouteLabels := tmpltext.FuncMap{"routeLabels": func(string) (string, error) { return "", nil }}
	t, err = t.New("").Option("missingkey=zero").Funcs(noRouteLabels).Parse(text)
	if err != nil {
		return nil, err
	}
	r.compiled.Store(text, t)
	return t, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// dropPartialEntity removes an HTML entity that a cut left unfinished
// before the closing ellipsis, so that "&#6…" does not reach card markdown.
func dropPartialEntity(s string) string {
	const mark = "…"
	body, ok := strings.CutSuffix(s, mark)
	if !ok {
		return s
	}
	if i := strings.LastIndexByte(body, '&'); i >= 0 && !strings.Contains(body[i:], ";") {
		body = body[:i]
	}
	return body + mark
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
