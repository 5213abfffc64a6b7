package feishutest

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func cardWith(markdown string) string {
	b, _ := json.Marshal(map[string]any{"elements": []any{map[string]any{"tag": "div", "text": map[string]any{"tag": "lark_md", "content": markdown}}}})
	return string(b)
}

func TestStrictMentions(t *testing.T) {
	s := New(t)
	tok := token(t, s)
	imCard := func(markdown string) reply {
		_, r := call(t, s, "/open-apis/im/v1/messages?receive_id_type=chat_id", tok, map[string]any{
			"receive_id": "oc_1", "msg_type": "interactive", "content": cardWith(markdown),
		})
		return r
	}
	v4Card := func(markdown string) reply {
		_, r := call(t, s, "/open-apis/message/v4/send/", tok, map[string]any{
			"chat_id": "oc_1", "msg_type": "interactive", "card": json.RawMessage(cardWith(markdown)),
		})
		return r
	}
	v4Text := func(text string) reply {
		_, r := call(t, s, "/open-apis/message/v4/send/", tok, map[string]any{
			"chat_id": "oc_1", "msg_type": "text", "content": map[string]string{"text": text},
		})
		return r
	}

	require.Equal(t, 0, imCard("<at id=ou_stranger></at>").Code, "lenient by default")
	require.Equal(t, 0, imCard("<at id=all></at>").Code)

	s.SetStrictOpenIDs(true)
	s.AddUser("alice@example.com", "ou_alice")
	s.AddChatMembers("oc_1", "ou_bob")
	s.KnowOpenIDs("ou_carol")
	for _, send := range []func(string) reply{imCard, v4Card} {
		r := send("<at id=ou_stranger></at>")
		require.Equal(t, 230099, r.Code)
		require.Contains(t, r.Msg, "100290")
		require.Equal(t, 0, send("<at id=ou_alice></at> <at id=ou_bob></at> <at id=ou_carol></at>").Code)
	}
	require.Equal(t, 0, v4Text(`<at user_id="ou_stranger"></at>`).Code, "text names whom it cannot mention")

	s.SetAllowAll("oc_1", false)
	for _, send := range []func(string) reply{imCard, v4Card} {
		r := send("<at id=all></at>")
		require.Equal(t, 230099, r.Code)
		require.Contains(t, r.Msg, "@all")
	}
	require.Equal(t, 11235, v4Text(`<at user_id="all"></at>`).Code)
	s.SetAllowAll("oc_1", true)
	require.Equal(t, 0, imCard("<at id=all></at>").Code)
}
