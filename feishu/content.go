package feishu

import (
	"bytes"
	"encoding/json"
	"sync"
)

// Text is the content of a text message.
type Text struct {
	Text string `json:"text"`
}

// Post is the content of a rich-text message in one language. It is
// API-neutral: v4 wraps it in {"post": ...}, im/v1 does not.
type Post struct {
	Locale     string       // zh_cn or en_us
	Title      string       // plain text
	Paragraphs [][]PostNode // each paragraph a line of nodes
}

// PostNode is one node of a post paragraph: tag text (Text), a (Text,
// Href) or at (UserID).
type PostNode struct {
	Tag    string `json:"tag"`
	Text   string `json:"text,omitempty"`
	Href   string `json:"href,omitempty"`
	UserID string `json:"user_id,omitempty"`
}

// MarshalJSON always writes a text node's text, "" for a blank line:
// Feishu marks it required there, and a node without it may be refused.
// The other tags keep theirs out when empty.
func (n PostNode) MarshalJSON() ([]byte, error) {
	type plain PostNode
	if n.Tag != "text" {
		return json.Marshal(plain(n))
	}
	return json.Marshal(struct {
		Tag  string `json:"tag"`
		Text string `json:"text"`
	}{n.Tag, n.Text})
}

type postBody struct {
	Title   string       `json:"title"`
	Content [][]PostNode `json:"content"`
}

func (p Post) body() map[string]postBody {
	return map[string]postBody{p.Locale: {Title: p.Title, Content: p.Paragraphs}}
}

// Card is an interactive message in Feishu's card JSON 1.0, which every
// client version shows. UpdateMulti must be set for the card to be updated
// in place later.
type Card struct {
	Config   CardConfig    `json:"config"`
	Header   CardHeader    `json:"header"`
	Elements []CardElement `json:"elements"`
}

// CardConfig is a card's config block.
type CardConfig struct {
	WideScreenMode bool `json:"wide_screen_mode"`
	UpdateMulti    bool `json:"update_multi"`
}

// CardHeader is a card's coloured title bar. Template is the colour: red,
// orange, green, grey, blue and others.
type CardHeader struct {
	Template string   `json:"template"`
	Title    CardText `json:"title"`
}

// CardText is a text object: tag plain_text (shown as is) or lark_md
// (Feishu's card markdown).
type CardText struct {
	Tag     string `json:"tag"`
	Content string `json:"content"`
}

// CardElement is a module of a card body: div (Text), hr, note (Texts) or
// action (Actions).
type CardElement struct {
	Tag     string       `json:"tag"`
	Text    *CardText    `json:"text,omitempty"`
	Texts   []CardText   `json:"elements,omitempty"`
	Actions []CardButton `json:"actions,omitempty"`
}

// CardButton is a button of an action element: one that opens URL, or one
// whose Value Feishu hands back to the app's callback as action.value when
// it is clicked. Confirm, if set, asks the clicker before the callback.
type CardButton struct {
	Tag     string            `json:"tag"`  // button
	Type    string            `json:"type"` // primary, default or danger
	Text    CardText          `json:"text"`
	URL     string            `json:"url,omitempty"`
	Value   map[string]string `json:"value,omitempty"`
	Confirm *CardConfirm      `json:"confirm,omitempty"`
}

// CardConfirm is the dialog a button shows before it acts: Title and Text
// are plain_text, and Feishu adds the confirm and cancel buttons.
type CardConfirm struct {
	Title CardText `json:"title"`
	Text  CardText `json:"text"`
}

// marshal encodes v as JSON without escaping <, > and &: Feishu reads
// either form, and the plain one is what its size limits count. It encodes
// into a pooled buffer and returns a copy of its size: a growing buffer of
// its own took half a dozen allocations for each message.
func marshal(v any) ([]byte, error) {
	buf := encodeBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBuffer {
			buf.Reset()
			encodeBuffers.Put(buf)
		}
	}()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.Clone(bytes.TrimRight(buf.Bytes(), "\n")), nil
}

var encodeBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer is the largest buffer kept for another encoding: more
// than any message Feishu takes, so that one huge encoding is not kept.
const maxPooledBuffer = 256 << 10
