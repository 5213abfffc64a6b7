package feishutest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// sendText sends a text to receiveID (a chat_id, or a user's open_id) and
// returns the message's ID.
func sendText(t *testing.T, s *Server, tok, kind, receiveID string) string {
	t.Helper()
	_, r := call(t, s, "/open-apis/im/v1/messages?receive_id_type="+kind, tok, imBody(receiveID, "text", map[string]string{"text": "x"}, ""))
	require.Zero(t, r.Code, r.Msg)
	var d struct {
		MessageID string `json:"message_id"`
	}
	require.NoError(t, json.Unmarshal(r.Data, &d))
	return d.MessageID
}

func buzz(t *testing.T, s *Server, tok, id, kind string, openIDs ...string) (int, reply) {
	t.Helper()
	return callMethod(t, s, http.MethodPatch, "/open-apis/im/v1/messages/"+id+"/urgent_"+kind+"?user_id_type=open_id", tok,
		map[string]any{"user_id_list": openIDs})
}

func invalidIDs(t *testing.T, r reply) []string {
	t.Helper()
	var d struct {
		Invalid []string `json:"invalid_user_id_list"`
	}
	require.NoError(t, json.Unmarshal(r.Data, &d))
	return d.Invalid
}

// setup is a stand-in with a message in oc_1, whose members are alice and
// bob.
func setup(t *testing.T) (*Server, string, string) {
	t.Helper()
	s := New(t)
	tok := token(t, s)
	s.AddChatMembers("oc_1", "ou_alice", "ou_bob")
	return s, tok, sendText(t, s, tok, "chat_id", "oc_1")
}

func TestUrgentBuzzesMembersAndReturnsTheOthers(t *testing.T) {
	s, tok, id := setup(t)
	sends := s.Sends()
	_, r := buzz(t, s, tok, id, "app", "ou_alice", "ou_carol", "ou_bob")
	require.Zero(t, r.Code, r.Msg)
	require.Equal(t, []string{"ou_carol"}, invalidIDs(t, r))
	require.Equal(t, []Urgent{{MessageID: id, Kind: "app", OpenIDs: []string{"ou_alice", "ou_bob"}}}, s.Urgents())
	require.Equal(t, sends+1, s.Sends(), "a buzz counts as a send")
}

func TestUrgentReachesTheUserAMessageWentTo(t *testing.T) {
	s := New(t)
	tok := token(t, s)
	id := sendText(t, s, tok, "open_id", "ou_alice")
	_, r := buzz(t, s, tok, id, "phone", "ou_alice", "ou_bob")
	require.Zero(t, r.Code, r.Msg)
	require.Equal(t, []string{"ou_bob"}, invalidIDs(t, r))
}

func TestUrgentAllInvalid(t *testing.T) {
	s, tok, id := setup(t)
	code, r := buzz(t, s, tok, id, "app", "ou_carol")
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, 230001, r.Code)
	require.Contains(t, r.Msg, "ext=invalid user id")
	require.Empty(t, s.Urgents())
}

func TestUrgentOnAMessageGone(t *testing.T) {
	s, tok, id := setup(t)
	other := sendText(t, s, tok, "chat_id", "oc_1")
	s.Delete(id)
	s.Recall(other)
	for _, id := range []string{id, other} {
		_, r := buzz(t, s, tok, id, "app", "ou_alice")
		require.Equal(t, 230110, r.Code, "recalled or deleted")
	}
	_, r := buzz(t, s, tok, "om_unknown", "app", "ou_alice")
	require.Equal(t, 230001, r.Code)
	require.Contains(t, r.Msg, "invalid message_id")
}

func TestUrgentOnlyOnTheBotsMessages(t *testing.T) {
	s, tok, id := setup(t)
	s.SentByOther(id)
	_, r := buzz(t, s, tok, id, "app", "ou_alice")
	require.Equal(t, 230012, r.Code)
}

func TestUrgentBotNotInTheChat(t *testing.T) {
	s, tok, id := setup(t)
	s.RemoveBot("oc_1")
	_, r := buzz(t, s, tok, id, "app", "ou_alice")
	require.Equal(t, 230002, r.Code)
}

func TestUrgentQuota(t *testing.T) {
	s, tok, id := setup(t)
	s.SetUrgentQuota("sms", 3)
	_, r := buzz(t, s, tok, id, "sms", "ou_alice", "ou_bob", "ou_carol")
	require.Zero(t, r.Code, "the refused one costs nothing")
	_, r = buzz(t, s, tok, id, "sms", "ou_alice", "ou_bob")
	require.Equal(t, 230024, r.Code, "one left, two to buzz: no one is")
	_, r = buzz(t, s, tok, id, "sms", "ou_alice")
	require.Zero(t, r.Code)
	_, r = buzz(t, s, tok, id, "sms", "ou_alice")
	require.Equal(t, 230024, r.Code)
	_, r = buzz(t, s, tok, id, "phone", "ou_alice")
	require.Zero(t, r.Code, "each kind has its own quota")
	_, r = buzz(t, s, tok, id, "app", "ou_alice")
	require.Zero(t, r.Code, "app buzzes are free")
	s.SetUrgentQuota("sms", -1)
	_, r = buzz(t, s, tok, id, "sms", "ou_alice")
	require.Zero(t, r.Code)
	require.Len(t, s.Urgents(), 5)
	require.Panics(t, func() { s.SetUrgentQuota("app", 1) })
}

func TestUrgentValidation(t *testing.T) {
	s, tok, id := setup(t)
	var many []string
	for i := range 201 {
		many = append(many, fmt.Sprintf("ou_%d", i))
	}
	_, r := buzz(t, s, tok, id, "app", many...)
	require.Equal(t, 99992402, r.Code, "over 200")
	_, r = buzz(t, s, tok, id, "app")
	require.Equal(t, 99992402, r.Code, "no one")
	_, r = callMethod(t, s, http.MethodPatch, "/open-apis/im/v1/messages/"+id+"/urgent_app", tok, map[string]any{"user_id_list": []string{"ou_alice"}})
	require.Equal(t, 99992402, r.Code, "no user_id_type")
	_, r = buzz(t, s, "", id, "app", "ou_alice")
	require.Equal(t, 99991661, r.Code, "no token")
	require.Empty(t, s.Urgents())
}

func TestUrgentAppRateLimit(t *testing.T) {
	s, tok, id := setup(t)
	s.SetAppRateLimit(1)
	code, _ := buzz(t, s, tok, id, "app", "ou_alice")
	require.Equal(t, http.StatusOK, code)
	code, r := buzz(t, s, tok, id, "app", "ou_alice")
	require.Equal(t, http.StatusTooManyRequests, code)
	require.Equal(t, 99991400, r.Code)
}
