package feishutest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// sized is a request body of exactly size bytes sending a card whose
// markdown starts with markup, through api ("im_v1", "v4" or "bot").
func sized(t *testing.T, api, markup string, size int) map[string]any {
	t.Helper()
	body := func(pad int) map[string]any {
		card := map[string]any{"config": map[string]any{"update_multi": true},
			"elements": []any{map[string]any{"tag": "div", "text": map[string]string{"tag": "lark_md", "content": markup + strings.Repeat("x", pad)}}}}
		switch api {
		case "im_v1":
			return imBody("oc_1", "interactive", card, "")
		case "v4":
			return map[string]any{"chat_id": "oc_1", "msg_type": "interactive", "card": card}
		}
		return botBody("interactive", card, 0, "")
	}
	empty, err := json.Marshal(body(0))
	require.NoError(t, err)
	b := body(size - len(empty))
	got, _ := json.Marshal(b)
	require.Len(t, got, size)
	return b
}

// Each size rule holds every API to its limit: the KB of 1,024 bytes or
// 1,000, and the style tags counted or not. The answers are each API's
// code for a message too large.
func TestSizeRules(t *testing.T) {
	paths := map[string]string{"im_v1": createPath, "v4": "/open-apis/message/v4/send/", "bot": hook + "tok"}
	refusal := map[string]int{"im_v1": CodeIMTooLong, "v4": CodeTooLarge, "bot": BotBadRequest}
	kb := map[string]int{"im_v1": cardKB, "v4": cardKB, "bot": botKB}
	tags := strings.Repeat("**b** ", 10) // ten bold spans
	for api, path := range paths {
		t.Run(api, func(t *testing.T) {
			s := New(t)
			s.AddBot("tok", "")
			tok := token(t, s)
			send := func(body map[string]any) int {
				t.Helper()
				_, r := call(t, s, path, tok, body)
				return r.Code
			}
			limit1024, limit1000 := kb[api]*1024, kb[api]*1000

			require.Zero(t, send(sized(t, api, "", limit1024)), "the default: 1,024 bytes to the KB")
			require.Equal(t, refusal[api], send(sized(t, api, "", limit1024+1)))

			s.SetSizeRule(SizeRule{KB: 1000})
			require.Zero(t, send(sized(t, api, "", limit1000)))
			require.Equal(t, refusal[api], send(sized(t, api, "", limit1000+1)))

			s.SetSizeRule(SizeRule{TagBytes: 40})
			require.Zero(t, send(sized(t, api, tags, limit1024-400)), "ten tags of 40 bytes fill the rest")
			require.Equal(t, refusal[api], send(sized(t, api, tags, limit1024-399)))
			require.Zero(t, send(sized(t, api, "", limit1024)), "a card without tags is its request")

			if api == "bot" {
				s.SetSizeRule(SizeRule{BotCode: CodeTooLarge})
				require.Equal(t, CodeTooLarge, send(sized(t, api, "", limit1024+1)))
			}
		})
	}
}

// The style tags counted are those Feishu reads: bold, links, mentions,
// emoji and entities in card markdown; in im/v1 text bold, links and
// mentions; a post's link, mention and bold nodes. Text through v4 has
// only its mentions.
func TestStyleTags(t *testing.T) {
	card := msg("im_v1", "interactive", map[string]any{
		"header": map[string]any{"title": map[string]string{"tag": "plain_text", "content": "**t**"}},
		"elements": []any{map[string]any{"tag": "div", "text": map[string]string{"tag": "lark_md",
			"content": `**b** [v](https://v.example) <at id=ou_1></at> :OK: &#42; &lt; plain`}}}})
	card.Text = "**t**\n**b** [v](https://v.example) <at id=ou_1></at> :OK: &#42; &lt; plain"
	require.Equal(t, 6, card.StyleTags())

	text := map[string]string{"text": `**b** [v](https://v.example) <at user_id="ou_1"></at> :OK: &#42;`}
	im := msg("im_v1", "text", text)
	im.Text = text["text"]
	require.Equal(t, 3, im.StyleTags())
	v4 := msg("v4", "text", text)
	v4.Text = text["text"]
	require.Equal(t, 1, v4.StyleTags())

	post := msg("im_v1", "post", map[string]any{"en_us": map[string]any{"content": [][]map[string]any{
		{{"tag": "text", "text": "**not bold**"}, {"tag": "a", "text": "r", "href": "https://r.example"}, {"tag": "at", "user_id": "ou_1"}},
	}}})
	post.Text = `**not bold**r<at user_id="ou_1"></at>`
	require.Equal(t, 2, post.StyleTags())
}

// A card update is held to the same rule as a card.
func TestSizeRuleForCardUpdates(t *testing.T) {
	s := New(t)
	id, tok := sendCard(t, s, updateCard(true, "firing"))
	card := func(pad int) map[string]any {
		c := updateCard(true, "resolved")
		c["elements"] = []any{map[string]any{"tag": "div", "text": map[string]string{"tag": "lark_md", "content": strings.Repeat("x", pad)}}}
		return c
	}
	// The patch body is {"content":"<card>"}: 30,000 bytes of markdown
	// make one over 30,000 bytes and under 30,720.
	code, r := patchCard(t, s, tok, id, card(30*1000))
	require.Equal(t, http.StatusOK, code, r.Msg)
	s.SetSizeRule(SizeRule{KB: 1000})
	code, r = patchCard(t, s, tok, id, card(30*1000))
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, CodeIMTooLong, r.Code)
}
