package feishutest

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// A reused uuid is answered with its message by default, or with the
// fault SetReusedUUIDAnswer gives; either way it makes no second message,
// on create as on reply.
func TestReusedUUIDAnswers(t *testing.T) {
	s := New(t)
	tok := token(t, s)
	text := map[string]string{"text": "x"}
	_, r := call(t, s, createPath, tok, imBody("oc_1", "text", text, "u-1"))
	require.Zero(t, r.Code, r.Msg)
	root := s.Messages()[0].ID
	_, r = call(t, s, createPath, tok, imBody("oc_1", "text", text, "u-1"))
	require.Zero(t, r.Code, "the default: the message the uuid made")
	require.Contains(t, string(r.Data), root)

	s.SetReusedUUIDAnswer(&ReusedUUIDFault)
	code, r := call(t, s, createPath, tok, imBody("oc_1", "text", text, "u-1"))
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, ReusedUUIDFault.Code, r.Code)
	require.Equal(t, ReusedUUIDFault.Msg, r.Msg)

	reply := "/open-apis/im/v1/messages/" + root + "/reply"
	_, r = call(t, s, reply, tok, imBody("", "text", text, "u-2"))
	require.Zero(t, r.Code, r.Msg)
	s.SetReusedUUIDAnswer(&Fault{Status: http.StatusBadRequest, Code: 239999, Msg: "something new"})
	_, r = call(t, s, reply, tok, imBody("", "text", text, "u-2"))
	require.Equal(t, 239999, r.Code)

	require.Len(t, s.Messages(), 2)
	require.Equal(t, 3, s.ReusedUUIDs())
}

// A lost answer keeps the message: its sender sees the connection close.
func TestLoseAnswers(t *testing.T) {
	s := New(t)
	tok := token(t, s)
	s.LoseAnswers(1)
	b := []byte(`{"receive_id":"oc_1","msg_type":"text","content":"{\"text\":\"x\"}","uuid":"u-1"}`)
	req, err := http.NewRequest(http.MethodPost, s.URL+createPath, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	_, err = http.DefaultClient.Do(req)
	require.Error(t, err)
	require.Len(t, s.Messages(), 1)
	_, r := call(t, s, createPath, tok, imBody("oc_1", "text", map[string]string{"text": "x"}, "u-2"))
	require.Zero(t, r.Code, "only the next")
}
