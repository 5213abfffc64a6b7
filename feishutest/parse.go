package feishutest

import (
	"encoding/json"
	"regexp"
	"slices"
)

// Link is a link Feishu would render in a message: its text and target.
type Link struct{ Text, URL string }

// Markup rules, as Feishu documents them: im/v1 text and card markdown
// parse [label](url) and **bold**; card markdown renders :KEY: as an
// emoji. v4 text parses neither. Entities are read after markup, as the
// card docs' table of escapes has it, so "&#42;&#42;" is no bold.
var (
	mdLink  = regexp.MustCompile(`\[([^\[\]]*)\]\(([^()\s]*)\)`)
	mdBold  = regexp.MustCompile(`\*\*([^*]+)\*\*`)
	mdEmoji = regexp.MustCompile(`:([0-9A-Za-z_]+):`)
)

// Links lists what the message would show as links: markdown links in
// im/v1 text and card markdown, a post's a nodes. A card's buttons are
// not markup and are not listed.
func (m Message) Links() []Link {
	var out []Link
	for _, s := range m.markdown() {
		for _, l := range mdLink.FindAllStringSubmatch(s, -1) {
			out = append(out, Link{Text: l[1], URL: l[2]})
		}
	}
	for _, n := range m.postNodes() {
		if n.Tag == "a" {
			out = append(out, Link{Text: n.Text, URL: n.Href})
		}
	}
	return out
}

// Bold lists the texts the message would show in bold: **x** in im/v1
// text and card markdown, a post's text nodes styled bold.
func (m Message) Bold() []string {
	var out []string
	for _, s := range m.markdown() {
		for _, b := range mdBold.FindAllStringSubmatch(s, -1) {
			out = append(out, b[1])
		}
	}
	for _, n := range m.postNodes() {
		if n.Tag == "text" && slices.Contains(n.Style, "bold") {
			out = append(out, n.Text)
		}
	}
	return out
}

// Emoji lists the keys card markdown would render as emoji. Which keys
// Feishu knows is not the stand-in's to say: every :KEY: is listed.
func (m Message) Emoji() []string {
	if m.Type != "interactive" {
		return nil
	}
	var out []string
	for _, s := range m.markdown() {
		for _, e := range mdEmoji.FindAllStringSubmatch(s, -1) {
			out = append(out, e[1])
		}
	}
	return out
}

// markdown is the message's text that Feishu parses as markdown: an im/v1
// text's text, a card's lark_md texts.
func (m Message) markdown() []string {
	switch m.Type {
	case "text":
		var c struct {
			Text string `json:"text"`
		}
		if m.API != "im_v1" || json.Unmarshal(m.Content, &c) != nil {
			return nil
		}
		return []string{c.Text}
	case "interactive":
		var c struct {
			Elements []struct {
				Text  *cardText  `json:"text"`
				Texts []cardText `json:"elements"`
			} `json:"elements"`
		}
		if json.Unmarshal(m.Content, &c) != nil {
			return nil
		}
		var out []string
		for _, e := range c.Elements {
			for _, t := range append(e.Texts, derefText(e.Text)...) {
				if t.Tag == "lark_md" {
					out = append(out, t.Content)
				}
			}
		}
		return out
	}
	return nil
}

type cardText struct {
	Tag     string `json:"tag"`
	Content string `json:"content"`
}

func derefText(t *cardText) []cardText {
	if t == nil {
		return nil
	}
	return []cardText{*t}
}

// postNode is a node of a post paragraph.
type postNode struct {
	Tag   string   `json:"tag"`
	Text  string   `json:"text"`
	Href  string   `json:"href"`
	Style []string `json:"style"`
	// HasText tells a node without "text" from one with "".
	HasText bool `json:"-"`
}

func (n *postNode) UnmarshalJSON(b []byte) error {
	type plain postNode
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	_, n.HasText = raw["text"]
	return json.Unmarshal(b, (*plain)(n))
}

// postNodes are the nodes of every paragraph of a post, in every locale.
func (m Message) postNodes() []postNode {
	if m.Type != "post" {
		return nil
	}
	var c map[string]struct {
		Content [][]postNode `json:"content"`
	}
	if json.Unmarshal(m.Content, &c) != nil {
		return nil
	}
	var out []postNode
	for _, p := range c {
		for _, para := range p.Content {
			out = append(out, para...)
		}
	}
	return out
}

// SetStrictPostText makes the stand-in refuse a post with a text node
// that has no "text", which Feishu marks required but may well accept:
// im/v1 answers 230001, as its create page has it for invalid content,
// v4 9499.
func (s *Server) SetStrictPostText(strict bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.strictPostText = strict
}

// refusesPostText reports whether m is a post the strict stand-in
// refuses, and with which code. It is called with s.mu held.
func (s *Server) refusesPostText(m *Message) (int, bool) {
	if !s.strictPostText {
		return 0, false
	}
	for _, n := range m.postNodes() {
		if n.Tag == "text" && !n.HasText {
			if m.API == "v4" {
				return 9499, true
			}
			return 230001, true
		}
	}
	return 0, false
}

// Button is the value the card's button for action (and duration, "" for
// none) carries back when clicked, as Click takes it; nil when the card has
// no such button, or the message is not a card.
func (m Message) Button(action, duration string) map[string]string {
	if m.Type != "interactive" {
		return nil
	}
	var c card
	if json.Unmarshal(m.Content, &c) != nil {
		return nil
	}
	for _, el := range c.Elements {
		for _, a := range el.Actions {
			var v map[string]string
			if json.Unmarshal(a.Value, &v) == nil && v["action"] == action && v["duration"] == duration {
				return v
			}
		}
	}
	return nil
}
