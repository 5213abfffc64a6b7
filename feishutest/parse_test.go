package feishutest

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func msg(api, typ string, content any) Message {
	b, _ := json.Marshal(content)
	return Message{API: api, Type: typ, Content: b}
}

// im/v1 text parses links and bold, v4 text neither; a post's a nodes are
// links and its bold style bold; card markdown has all three, entities
// and plain_text none.
func TestParsedMarkup(t *testing.T) {
	text := map[string]string{"text": "[login](https://example.com) **x** :OK: ［a］(b) ＊＊y＊＊"}
	im := msg("im_v1", "text", text)
	require.Equal(t, []Link{{"login", "https://example.com"}}, im.Links())
	require.Equal(t, []string{"x"}, im.Bold())
	require.Empty(t, im.Emoji())
	v4 := msg("v4", "text", text)
	require.Empty(t, v4.Links())
	require.Empty(t, v4.Bold())

	post := msg("im_v1", "post", map[string]any{"en_us": map[string]any{"content": [][]map[string]any{
		{{"tag": "text", "text": "[l](https://x.example) **b**"}, {"tag": "text", "text": "s", "style": []string{"bold"}}},
		{{"tag": "a", "text": "Runbook", "href": "https://r.example"}},
	}}})
	require.Equal(t, []Link{{"Runbook", "https://r.example"}}, post.Links())
	require.Equal(t, []string{"s"}, post.Bold())
	require.Empty(t, post.Emoji())

	card := msg("im_v1", "interactive", map[string]any{
		"header": map[string]any{"title": map[string]string{"tag": "plain_text", "content": "**t** :OK:"}},
		"elements": []any{
			map[string]any{"tag": "div", "text": map[string]string{"tag": "lark_md", "content": "**b** [v](https://v.example) :DONE: &#58;OK&#58; &#42;&#42;n&#42;&#42;"}},
			map[string]any{"tag": "note", "elements": []any{map[string]string{"tag": "lark_md", "content": ":Fire:"}}},
			map[string]any{"tag": "div", "text": map[string]string{"tag": "plain_text", "content": "**p**"}},
		}})
	require.Equal(t, []Link{{"v", "https://v.example"}}, card.Links())
	require.Equal(t, []string{"b"}, card.Bold())
	require.Equal(t, []string{"DONE", "Fire"}, card.Emoji())
}

// A post text node without text is accepted, as Feishu probably does,
// until the stand-in is made strict: then im/v1 answers 230001 and v4
// 9499; a node with "" passes either way.
func TestStrictPostText(t *testing.T) {
	s := New(t)
	tok := token(t, s)
	post := func(node map[string]any) map[string]any {
		return map[string]any{"zh_cn": map[string]any{"title": "t", "content": [][]map[string]any{{node}}}}
	}
	blank, empty := post(map[string]any{"tag": "text"}), post(map[string]any{"tag": "text", "text": ""})
	send := func(content map[string]any) (int, int) {
		_, im := call(t, s, createPath, tok, imBody("oc_1", "post", content, ""))
		_, v4 := call(t, s, "/open-apis/message/v4/send/", tok, map[string]any{"chat_id": "oc_1", "msg_type": "post", "content": map[string]any{"post": content}})
		return im.Code, v4.Code
	}
	im, v4 := send(blank)
	require.Zero(t, im)
	require.Zero(t, v4)
	s.SetStrictPostText(true)
	im, v4 = send(blank)
	require.Equal(t, 230001, im)
	require.Equal(t, 9499, v4)
	im, v4 = send(empty)
	require.Zero(t, im)
	require.Zero(t, v4)
	require.Len(t, s.Messages(), 4)
}

// Button finds a card's button by the value it carries back, as a clicker
// would press it; links and other messages have none.
func TestButton(t *testing.T) {
	card := msg("im_v1", "interactive", map[string]any{"elements": []any{
		map[string]any{"tag": "action", "actions": []any{
			map[string]any{"tag": "button", "value": map[string]string{"action": "ack", "incident": "c.1"}},
			map[string]any{"tag": "button", "value": map[string]string{"action": "silence", "duration": "1h", "incident": "c.1"}},
			map[string]any{"tag": "button", "url": "https://am.example/#/silences/new"},
		}},
	}})
	require.Equal(t, map[string]string{"action": "ack", "incident": "c.1"}, card.Button("ack", ""))
	require.Equal(t, "1h", card.Button("silence", "1h")["duration"])
	require.Nil(t, card.Button("silence", "4h"))
	require.Nil(t, card.Button("unsilence", ""))
	require.Nil(t, msg("im_v1", "text", map[string]string{"text": `{"action":"ack"}`}).Button("ack", ""))
}
