package feishu

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
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

// CardButton is a button that opens a URL.
type CardButton struct {
	Tag  string   `json:"tag"` // button
	Type string   `json:"type"`
	Text CardText `json:"text"`
	URL  string   `json:"url"`
}

// marshal encodes v as JSON without escaping <, > and &: Feishu reads
// either form, and the plain one is what its size limits count.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// v4Content is the content object as message/v4/send wants it.
func v4Content(c any) any {
	if p, ok := c.(Post); ok {
		return map[string]any{"post": p.body()}
	}
	return c
}

// imContent is the content as im/v1 wants it: the JSON of the content
// object, as a string.
func imContent(c any) (string, error) {
	if p, ok := c.(Post); ok {
		c = p.body()
	}
	b, err := marshal(c)
	return string(b), err
}

// Placeholders as long as the longest real values, so that RequestSize
// errs on the large side.
var (
	sizeID   = string(bytes.Repeat([]byte("x"), 64))
	sizeUUID = string(bytes.Repeat([]byte("x"), MaxUUIDLen))
)

// RequestSize is the size in bytes of the request that would carry m's
// content through api, whatever its target and root: the number Feishu's
// size limits apply to.
func RequestSize(api string, m Message) int {
	m.Target, m.UUID = Target{Kind: config.TargetChatID, ID: sizeID}, sizeUUID
	if api == APIBot {
		m.Target.Kind, m.Webhook.Secret = config.TargetWebhook, "signed"
	}
	if api == config.APIv4 {
		m.RootID = sizeID // v4 carries the root in the body; im/v1 in the path
	}
	_, b, err := Preview(api, m)
	if err != nil {
		return 0
	}
	return len(b)
}

// previewTime is the Unix time a previewed custom bot request is signed at:
// fixed, and as long as any real one until 2286.
const previewTime = 2000000000

// Preview is the request that sending m as a new message through api would
// make, without the token: its path and its JSON body. The render command
// prints it; nothing is sent. A custom bot's URL is a credential: its path
// is shown as <webhook_url>, and a signed request is signed at previewTime.
func Preview(api string, m Message) (path string, body []byte, err error) {
	var req any
	if api == APIBot {
		r := newBotRequest(m)
		if m.Webhook.Secret != "" {
			r.Timestamp, r.Sign = strconv.FormatInt(previewTime, 10), botSign(previewTime, m.Webhook.Secret)
		}
		path, req = "<webhook_url>", r
	} else if api == config.APIIMv1 {
		content, err := imContent(m.Content)
		if err != nil {
			return "", nil, err
		}
		path = "/open-apis/im/v1/messages?receive_id_type=" + m.Target.Kind
		req = imCreateRequest{ReceiveID: m.Target.ID, MsgType: m.Type, Content: content, UUID: m.UUID}
	} else {
		path = "/open-apis/message/v4/send/"
		if req, err = newV4Request(m); err != nil {
			return "", nil, err
		}
	}
	body, err = marshal(req)
	return path, body, err
}
