package feishutest

import (
	"net/http"
	"regexp"
	"slices"
)

// SizeRule is how the stand-in counts a message against Feishu's size
// limits where Feishu's docs are silent: im/v1 takes "150 KB" of text and
// "30 KB" of card or post, message/v4/send names "30KB" in its code 19036,
// a custom bot takes "20 KB"; and im/v1's create page warns that "when the
// message contains style tags, the real message body is larger than the
// request body you sent". The zero rule is the stand-in's default: 1,024
// bytes to the KB, counting the request body alone.
type SizeRule struct {
	// KB is the bytes in a kilobyte of the limits: 1024 (or 0) or 1000.
	KB int
	// TagBytes, when above 0, counts each style tag of the message as that
	// many bytes more than the request carries it in: a bold span, a link,
	// a mention, an emoji key or an HTML entity of card markdown; a bold
	// span, a link or a mention of im/v1 text; a link, mention or bold
	// node of a post. Stored as a node of Feishu's rich text, a tag takes
	// about 40 bytes ({"tag":"text","text":"","style":["bold"]}), which
	// is the figure to try.
	TagBytes int
	// BotCode is what a custom bot answers a body over its limit:
	// BotBadRequest (9499, or 0), as clients observe, or 19036, the
	// generic code of a message over its size.
	BotCode int
}

// Codes of a message over its size limit, by API.
const (
	CodeIMTooLong = 230025
	CodeTooLarge  = 19036
)

// Documented size limits, in KB.
const (
	textKB = 150
	cardKB = 30 // card and post on im/v1, and everything on v4
	botKB  = 20
)

// SetSizeRule sets how messages are counted against the size limits.
func (s *Server) SetSizeRule(r SizeRule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.size = r
}

// kb is the rule's kilobyte.
func (r SizeRule) kb() int {
	if r.KB == 0 {
		return 1024
	}
	return r.KB
}

// limit is the size limit of a message of msgType sent through api ("v4",
// "im_v1" or "bot").
func (r SizeRule) limit(api, msgType string) int {
	switch {
	case api == "bot":
		return botKB * r.kb()
	case api == "im_v1" && msgType == "text":
		return textKB * r.kb()
	}
	return cardKB * r.kb()
}

// counted is the size Feishu holds m to: its request body's, plus its
// style tags as the rule counts them.
func (r SizeRule) counted(m *Message, body int) int {
	if r.TagBytes <= 0 {
		return body
	}
	return body + r.TagBytes*m.StyleTags()
}

// tooLarge answers m, which came in a request body of body bytes, if it is
// over its limit, and reports whether it did. It is called with s.mu held.
func (s *Server) tooLarge(w http.ResponseWriter, m *Message, body int) bool {
	if s.size.counted(m, body) <= s.size.limit(m.API, m.Type) {
		return false
	}
	switch m.API {
	case "im_v1":
		fail(w, http.StatusBadRequest, CodeIMTooLong, "The length of the message content reaches its limit.")
	case "bot":
		code := s.size.BotCode
		if code == 0 {
			code = BotBadRequest
		}
		botFail(w, code, "Bad Request")
	default:
		fail(w, http.StatusBadRequest, CodeTooLarge, "message exceeds the size limit of 30KB")
	}
	return true
}

// entity is an HTML entity, which card markdown reads.
var entity = regexp.MustCompile(`&(#[0-9]+|[A-Za-z]+);`)

// StyleTags counts the style tags Feishu would read in m, as SizeRule
// counts them: the bold spans, links and mentions of text and card
// markdown, and a card's emoji keys and entities; a post's link, mention
// and bold nodes.
func (m Message) StyleTags() int {
	if m.Type == "post" {
		n := 0
		for _, node := range m.postNodes() {
			if node.Tag == "a" || node.Tag == "at" || slices.Contains(node.Style, "bold") {
				n++
			}
		}
		return n
	}
	n := len(m.Bold()) + len(m.Links()) + len(m.Mentions()) + len(m.Emoji())
	if m.Type == "interactive" {
		for _, s := range m.markdown() {
			n += len(entity.FindAllString(s, -1))
		}
	}
	return n
}
