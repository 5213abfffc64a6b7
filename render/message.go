package render

import (
	"net/url"
	"slices"
	"strings"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/oncall"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// message is a rendered message before it takes the shape of its type.
type message struct {
	typ   string
	title string // plain text
	body  string // plain text, or card markdown for a card
	lang  string
	links []link
	color string
	// mentions are the policy's, the only source of mention markup: they
	// are added after the templates ran, outside the body that sizing may
	// cut.
	mentions oncall.Mentions
	// state is the incident's state lines (card markdown) and acts the
	// buttons that act on it, a card's only; like mentions they are not
	// the templates' and sizing does not cut them.
	state string
	acts  []feishu.CardButton
	// text is the escaper of the text view, by the API a text message
	// goes through: it escapes the note of unresolved mentions too.
	text escaper
}

// notMentioned introduces the people who could not be mentioned.
var notMentioned = map[string]string{"en": "could not mention: ", "zh": "无法提及："}

// unresolvedNote names the people who could not be mentioned, escaped by
// e: their emails come from the configuration or a label.
func (m message) unresolvedNote(value replacer) string {
	if len(m.mentions.Unresolved) == 0 {
		return ""
	}
	emails := make([]string, len(m.mentions.Unresolved))
	for i, u := range m.mentions.Unresolved {
		emails[i] = value.Replace(u.Email)
	}
	intro, ok := notMentioned[m.lang]
	if !ok {
		intro = notMentioned["en"]
	}
	return "(" + intro + strings.Join(emails, ", ") + ")"
}

// mentioned are the IDs the message mentions, "all" for @all last.
func (m message) mentioned() []string {
	if !m.mentions.All {
		return m.mentions.IDs
	}
	return append(slices.Clone(m.mentions.IDs), "all")
}

// mentionLine is the line of mentions in text or card markdown, tag being
// the markup of one mention of id.
func (m message) mentionLine(tag func(id string) string, value replacer) string {
	var parts []string
	for _, id := range m.mentioned() {
		parts = append(parts, tag(id))
	}
	if note := m.unresolvedNote(value); note != "" {
		parts = append(parts, note)
	}
	return strings.Join(parts, " ")
}

func textMention(id string) string { return `<at user_id="` + id + `"></at>` }
func cardMention(id string) string { return `<at id=` + id + `></at>` }

// withLine puts line before body, if there is a line.
func withLine(line, body string) string {
	if line == "" {
		return body
	}
	return line + "\n" + body
}

// Bounds of the request that carries a message, used to skip measuring it
// (an encoding of its content) when it is far below the limit:
// encoding a byte of text into the content JSON and that into the request
// JSON makes at most 7 bytes ("<" becomes \u003c, then \\u003c); escaping a
// value for text or markdown at most triples it; the rest of a request
// (structure, button labels, IDs, a mention's tag) is far below skeleton.
const (
	jsonGrowth    = 7
	escapeGrowth  = 3
	skeletonBytes = 4096
	mentionBytes  = 64
	// buttonBytes is more than the structure of one button of acts.
	buttonBytes = 256
)

// sizeBound is more than the size of any request carrying m.
func (m message) sizeBound() int {
	n := len(m.title) + len(m.body) + len(m.lang) + len(m.color)
	for _, l := range m.links {
		n += len(l.text) + len(l.url)
	}
	n += mentionBytes * (len(m.mentions.IDs) + 1)
	for _, u := range m.mentions.Unresolved {
		n += escapeGrowth*len(u.Email) + 2
	}
	n += len(notMentioned["en"]) + len(notMentioned["zh"])
	n += len(m.state)
	for _, b := range m.acts {
		n += len(b.Text.Content) + buttonBytes
		for k, v := range b.Value {
			n += len(k) + len(v)
		}
		if c := b.Confirm; c != nil {
			n += len(c.Title.Content) + len(c.Text.Content)
		}
	}
	// Every character that may start a style tag may cost its weight:
	// feishu.Footprint counts no more tags than there are such characters.
	// A mention's tag holds two; an unresolved email is escaped when the
	// message is built, into at most one entity a character.
	tags := markupChars(m.title) + markupChars(m.body) + markupChars(m.state) + len(m.links) + 2*(len(m.mentions.IDs)+1)
	for _, u := range m.mentions.Unresolved {
		tags += len(u.Email)
	}
	return jsonGrowth*n + skeletonBytes + feishu.StyleTagBytes*tags
}

// markupChars counts the characters of s that may start a style tag.
func markupChars(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '<', '&', ']', ':':
			n++
		}
	}
	return n
}

// link is a URL a message offers as a button (card) or link (post);
// silence marks the link to a new silence of the group.
type link struct {
	text, url string
	silence   bool
}

// textEscaper is m.text, or textEscaper when it was not set.
func (m message) textEscaper() escaper {
	if m.text.value == nil {
		return textEscaper
	}
	return m.text
}

func (m message) build() feishu.Message {
	switch m.typ {
	case config.MsgPost:
		return feishu.Message{Type: m.typ, Content: m.post()}
	case config.MsgInteractive:
		return feishu.Message{Type: m.typ, Content: m.card()}
	}
	body := withLine(m.mentionLine(textMention, m.textEscaper().value), m.body)
	return feishu.Message{Type: config.MsgText, Content: feishu.Text{Text: strings.TrimSpace(m.title + "\n" + body)}}
}

// post puts each line of the body in a paragraph of its own, as plain text
// nodes, and the links in a last paragraph.
func (m message) post() feishu.Post {
	p := feishu.Post{Locale: "en_us", Title: m.title}
	if m.lang == "zh" {
		p.Locale = "zh_cn"
	}
	var mentions []feishu.PostNode
	for _, id := range m.mentioned() {
		mentions = append(mentions, feishu.PostNode{Tag: "at", UserID: id}, feishu.PostNode{Tag: "text", Text: " "})
	}
	if note := m.unresolvedNote(textEscaper.value); note != "" {
		mentions = append(mentions, feishu.PostNode{Tag: "text", Text: note})
	}
	if len(mentions) > 0 {
		p.Paragraphs = append(p.Paragraphs, mentions)
	}
	for line := range strings.SplitSeq(m.body, "\n") {
		p.Paragraphs = append(p.Paragraphs, []feishu.PostNode{{Tag: "text", Text: line}})
	}
	var links []feishu.PostNode
	for i, l := range m.links {
		if i > 0 {
			links = append(links, feishu.PostNode{Tag: "text", Text: " | "})
		}
		links = append(links, feishu.PostNode{Tag: "a", Text: l.text, Href: l.url})
	}
	if len(links) > 0 {
		p.Paragraphs = append(p.Paragraphs, links)
	}
	return p
}

// card is the default card: a header coloured by state, the body as card
// markdown, the incident's state lines below it (bold keywords and one
// line each, to be read at a glance; a note element would be small grey
// text), and the buttons: those that act on the incident in a row of their
// own above the row of links. update_multi lets the root card be updated
// in place, for the whole chat, when the group resolves or someone acts.
func (m message) card() feishu.Card {
	c := feishu.Card{
		Config: feishu.CardConfig{WideScreenMode: true, UpdateMulti: true},
		Header: feishu.CardHeader{Template: m.color, Title: feishu.CardText{Tag: "plain_text", Content: m.title}},
		Elements: []feishu.CardElement{
			{Tag: "div", Text: &feishu.CardText{Tag: "lark_md", Content: withLine(m.mentionLine(cardMention, markdownEscaper.value), m.body)}},
		},
	}
	if m.state != "" {
		c.Elements = append(c.Elements, feishu.CardElement{Tag: "div", Text: &feishu.CardText{Tag: "lark_md", Content: m.state}})
	}
	if len(m.links) == 0 && len(m.acts) == 0 {
		return c
	}
	c.Elements = append(c.Elements, feishu.CardElement{Tag: "hr"})
	if len(m.acts) > 0 {
		c.Elements = append(c.Elements, feishu.CardElement{Tag: "action", Actions: m.acts})
	}
	if len(m.links) == 0 {
		return c
	}
	buttons := make([]feishu.CardButton, len(m.links))
	for i, l := range m.links {
		buttons[i] = feishu.CardButton{Tag: "button", Type: "default", Text: feishu.CardText{Tag: "plain_text", Content: l.text}, URL: l.url}
	}
	// One button stands out: Acknowledge when the incident offers
	// actions, else the first link.
	if len(m.acts) == 0 {
		buttons[0].Type = "primary"
	}
	c.Elements = append(c.Elements, feishu.CardElement{Tag: "action", Actions: buttons})
	return c
}

// Header colours by state, as Feishu's card guidelines suggest: red for an
// error, orange for a warning, green for done.
const (
	colorCritical = "red"
	colorFiring   = "orange"
	colorResolved = "green"
)

// criticalSeverities are the severity label values that colour a firing
// card red.
var criticalSeverities = map[string]bool{"critical": true, "page": true}

func color(p *webhook.Payload) string {
	if p.Resolved() {
		return colorResolved
	}
	for _, a := range p.Alerts.Firing() {
		if criticalSeverities[strings.ToLower(a.Labels["severity"])] {
			return colorCritical
		}
	}
	return colorFiring
}

// maxURLBytes is the longest URL a message links to.
const maxURLBytes = 2048

var linkTexts = map[string][4]string{
	"en": {"Alertmanager", "Silence", "Runbook", "Source"},
	"zh": {"查看告警", "静默", "处理手册", "告警来源"},
}

// links are the URLs a group offers: the group in Alertmanager, a new
// silence pre-filled with the group's labels while it fires, the runbook
// (annotation runbook_url) and the source of the first alert
// (generatorURL). They come from the payload unescaped, as URLs and never
// as markup, and only http and https URLs of at most maxURLBytes are kept:
// a silence link built from kilobytes of labels would crowd out the
// message, and no browser wants it.
func links(p *webhook.Payload, lang string) []link {
	texts, ok := linkTexts[lang]
	if !ok {
		texts = linkTexts["en"]
	}
	var out []link
	add := func(l link) {
		if config.IsWebURL(l.url) && len(l.url) <= maxURLBytes {
			out = append(out, l)
		}
	}
	if base := strings.TrimRight(p.ExternalURL, "/"); config.IsWebURL(base) {
		add(link{text: texts[0], url: base + "/#/alerts?receiver=" + url.QueryEscape(p.Receiver)})
		if !p.Resolved() && len(p.GroupLabels) > 0 {
			add(link{text: texts[1], url: base + "/#/silences/new?filter=" + url.QueryEscape(silenceFilter(p)), silence: true})
		}
	}
	add(link{text: texts[2], url: p.CommonAnnotations["runbook_url"]})
	if len(p.Alerts) > 0 {
		add(link{text: texts[3], url: p.Alerts[0].GeneratorURL})
	}
	return out
}

// silenceFilter is Alertmanager's matcher syntax for the group's labels,
// e.g. {alertname="HighCPU", team="infra"}.
func silenceFilter(p *webhook.Payload) string {
	ms := make([]string, 0, len(p.GroupLabels))
	for _, pair := range p.GroupLabels.SortedPairs() {
		ms = append(ms, equalMatcher(pair.Name, pair.Value))
	}
	return "{" + strings.Join(ms, ", ") + "}"
}
