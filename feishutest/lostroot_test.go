package feishutest

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestV4LostRootCode(t *testing.T) {
	s := New(t)
	tok := token(t, s)
	send := func(root string) (int, reply) {
		return call(t, s, "/open-apis/message/v4/send/", tok, textBody("oc_1", root))
	}
	_, r := send("")
	var d struct {
		ID string `json:"message_id"`
	}
	require.NoError(t, json.Unmarshal(r.Data, &d))
	s.Recall(d.ID)

	_, r = send(d.ID)
	require.Equal(t, 230011, r.Code, "the default")
	s.SetV4LostRootCode(18053)
	code, r := send(d.ID)
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, 18053, r.Code)
	_, r = send("om_never")
	require.Equal(t, 230001, r.Code, "an ID never issued is not a lost root")

	s.SetV4LostRootCode(V4LostRootPosted)
	_, r = send(d.ID)
	require.Equal(t, 0, r.Code)
	msgs := s.Messages()
	require.Len(t, msgs, 2)
	require.Empty(t, msgs[1].RootID, "posted without threading")
}

func TestFailReplies(t *testing.T) {
	s := New(t)
	tok := token(t, s)
	_, r := call(t, s, "/open-apis/message/v4/send/", tok, textBody("oc_1", ""))
	var d struct {
		ID string `json:"message_id"`
	}
	require.NoError(t, json.Unmarshal(r.Data, &d))
	s.FailReplies(d.ID, Fault{Status: http.StatusBadRequest, Code: 230050, Msg: "invisible"})

	code, r := call(t, s, "/open-apis/message/v4/send/", tok, textBody("oc_1", d.ID))
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, 230050, r.Code)
	code, r = call(t, s, "/open-apis/im/v1/messages/"+d.ID+"/reply", tok, map[string]any{
		"msg_type": "text", "content": `{"text":"x"}`,
	})
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, 230050, r.Code)
	_, r = call(t, s, "/open-apis/message/v4/send/", tok, textBody("oc_1", ""))
	require.Equal(t, 0, r.Code, "other sends succeed")

	s.ClearReplies(d.ID)
	_, r = call(t, s, "/open-apis/message/v4/send/", tok, textBody("oc_1", d.ID))
	require.Equal(t, 0, r.Code)
}
