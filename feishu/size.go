package feishu

import (
	"bytes"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

// Placeholders as long as the longest real values, so that RequestSize
// errs on the large side.
var (
	sizeID   = string(bytes.Repeat([]byte("x"), 64))
	sizeUUID = string(bytes.Repeat([]byte("x"), MaxUUIDLen))
)

// RequestSize is the size in bytes of the request that would carry m's
// content through api (APIBot for a custom bot), whatever its target, root
// and uuid: the body Feishu's size limits are documented for (Footprint
// adds what its stored message may count beyond). It encodes a whole
// request, with placeholders as long as the longest IDs, a root for v4
// (im/v1 carries it in the path) and a signature for a bot; Measure gives
// the same number encoding the content alone.
func RequestSize(api string, m Message) int {
	m.Target, m.UUID = Target{Kind: config.TargetChatID, ID: sizeID}, sizeUUID
	var b []byte
	var err error
	switch api {
	case APIBot:
		_, b, err = PreviewBot(m, Webhook{Secret: "signed"})
	case config.APIv4:
		m.RootID = sizeID
		fallthrough
	default:
		_, b, err = Preview(api, m)
	}
	if err != nil {
		return 0
	}
	return len(b)
}

// Measure is RequestSize without encoding the request: the encoding of
// m's content as api carries it, plus the rest of the request, which does
// not depend on the content and is measured once per API and message type.
// Render measures a message many times while it cuts it to size; this
// keeps each probe to one encoding of the content.
func Measure(api string, m Message) int {
	n, ok := contentSize(api, m)
	if !ok {
		return 0
	}
	return n + overhead(api, m.Type)
}

// contentSize is the size of m's content inside a request through api:
// im/v1 carries the content's JSON as a string, v4 and a custom bot the
// object itself.
func contentSize(api string, m Message) (int, bool) {
	if api == config.APIIMv1 {
		s, err := imContent(m.Content)
		return jsonStringSize(s), err == nil
	}
	content, card := v4Body(m)
	if card != nil {
		content = card
	}
	b, err := marshal(content)
	return len(b), err == nil
}

// overheads are the sizes of requests less their content, by API and
// message type.
var overheads sync.Map // [2]string{api, type} -> int

// overhead is the size of a request through api of a message of msgType
// less its content, as RequestSize reckons it. It is the same for any
// content, which JSON only nests: measure it with the smallest.
func overhead(api, msgType string) int {
	key := [2]string{api, msgType}
	if n, ok := overheads.Load(key); ok {
		return n.(int)
	}
	probe := Message{Type: msgType, Content: Text{}}
	n, _ := contentSize(api, probe)
	o := RequestSize(api, probe) - n
	overheads.Store(key, o)
	return o
}

// jsonStringSize is the length of s encoded as a JSON string by marshal:
// quoted, with \" \\ \b \f \n \r \t, \u00XX for other control characters,
// and \ufffd for each invalid UTF-8 byte, \u2028 and \u2029 escaped.
func jsonStringSize(s string) int {
	n := len(`""`)
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\' || b == '\b' || b == '\f' || b == '\n' || b == '\r' || b == '\t':
				n += 2
			case b < 0x20:
				n += len(`\u0000`)
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			n += len(`\ufffd`)
		} else {
			n += size
		}
		i += size
	}
	return n
}

// StyleTagBytes is what Footprint counts for each style tag of a message
// beyond the request that carries it. Feishu's create page warns that
// "when the message contains style tags, the real message body is larger
// than the request body you sent", without saying by how much; a tag
// stored as a node of its rich text ({"tag":"text","text":"",
// "style":["bold"]}) would take about 40 bytes. This is well above that,
// and a message Feishu refuses for its size all the same goes again
// smaller.
const StyleTagBytes = 64

// Footprint is the size Feishu may hold m to through api: its request's
// size (Measure), plus StyleTagBytes for everything in its content that
// may be a style tag. It errs on the large side, as sizing must.
func Footprint(api string, m Message) int {
	n := Measure(api, m)
	if n == 0 {
		return 0
	}
	return n + StyleTagBytes*StyleTags(m)
}

// StyleTags counts, generously, what Feishu may read as style tags in m's
// content: in text every "**" (bold), "<" (a mention or another tag) and
// "](" (a link); in card markdown those, every "&" (an entity) and every
// other ":" (an emoji key); in a post, each link and mention node. Plain
// text (a card's title and buttons, a post's text nodes) has none.
func StyleTags(m Message) int {
	switch c := m.Content.(type) {
	case Text:
		return textTags(c.Text)
	case Card:
		n := 0
		for _, e := range c.Elements {
			texts := e.Texts
			if e.Text != nil {
				texts = append([]CardText{*e.Text}, texts...)
			}
			for _, t := range texts {
				if t.Tag == "lark_md" {
					n += textTags(t.Content) + strings.Count(t.Content, "&") + strings.Count(t.Content, ":")/2
				}
			}
		}
		return n
	case Post:
		n := 0
		for _, para := range c.Paragraphs {
			for _, node := range para {
				if node.Tag != "text" {
					n++
				}
			}
		}
		return n
	}
	return 0
}

// textTags counts the style tags text and card markdown share.
func textTags(s string) int {
	return strings.Count(s, "**") + strings.Count(s, "<") + strings.Count(s, "](")
}
