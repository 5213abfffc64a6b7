package feishutest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type reply struct {
	Code  int             `json:"code"`
	Msg   string          `json:"msg"`
	Token string          `json:"tenant_access_token"`
	Exp   int             `json:"expire"`
	Data  json.RawMessage `json:"data"`
}

func call(t *testing.T, s *Server, path, token string, body any) (int, reply) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewReader(b))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var r reply
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	return resp.StatusCode, r
}

const tokenPath = "/open-apis/auth/v3/tenant_access_token/internal"

// tokenReply asks path for a tenant token with the right credentials.
func tokenReply(t *testing.T, s *Server, path string) reply {
	t.Helper()
	_, r := call(t, s, path, "", map[string]string{"app_id": AppID, "app_secret": AppSecret})
	require.Zero(t, r.Code)
	return r
}

func token(t *testing.T, s *Server) string { return tokenReply(t, s, tokenPath).Token }

func TestTokenReissueRule(t *testing.T) {
	s := New(t)
	now := time.Now()
	s.now = func() time.Time { return now }
	first := token(t, s)
	require.True(t, strings.HasPrefix(first, "t-"))

	now = now.Add(time.Hour)             // 1 h left: the same token comes back
	r := tokenReply(t, s, tokenPath+"/") // clients also use the trailing slash
	require.Equal(t, first, r.Token)
	require.Equal(t, 3600, r.Exp)

	now = now.Add(40 * time.Minute) // 20 min left: a new one, the old still valid
	second := token(t, s)
	require.NotEqual(t, first, second)
	code, _ := call(t, s, "/open-apis/message/v4/send/", first, textBody("oc_1", ""))
	require.Equal(t, http.StatusOK, code)

	now = now.Add(21 * time.Minute) // the first has expired
	code, r = call(t, s, "/open-apis/message/v4/send/", first, textBody("oc_1", ""))
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, 99991663, r.Code)
}

func TestBadCredentials(t *testing.T) {
	s := New(t)
	for _, tc := range []struct {
		body map[string]string
		code int
		msg  string
	}{
		{map[string]string{"app_id": AppID, "app_secret": "x"}, 10014, "app secret invalid"},
		{map[string]string{"app_id": "cli_other", "app_secret": AppSecret}, 10014, "app id not exists"},
		{map[string]string{}, 10003, "invalid param"},
	} {
		status, r := call(t, s, tokenPath, "", tc.body)
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, tc.code, r.Code)
		require.Equal(t, tc.msg, r.Msg)
	}
}

func textBody(chat, root string) map[string]any {
	return map[string]any{"chat_id": chat, "root_id": root, "msg_type": "text", "content": map[string]string{"text": "x"}}
}

func TestV4Validation(t *testing.T) {
	s := New(t)
	tok := token(t, s)
	code, r := call(t, s, "/open-apis/message/v4/send/", "", textBody("oc_1", ""))
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, 99991661, r.Code)

	for name, tc := range map[string]struct {
		body map[string]any
		code int
	}{
		"no recipient":     {map[string]any{"msg_type": "text", "content": map[string]string{"text": "x"}}, 10003},
		"content a string": {map[string]any{"chat_id": "oc_1", "msg_type": "text", "content": `{"text":"x"}`}, 10003},
		"card in content":  {map[string]any{"chat_id": "oc_1", "msg_type": "interactive", "content": map[string]any{"elements": []any{}}}, 10003},
		"unknown root":     {textBody("oc_1", "om_nope"), 230001},
	} {
		t.Run(name, func(t *testing.T) {
			_, r := call(t, s, "/open-apis/message/v4/send/", tok, tc.body)
			require.Equal(t, tc.code, r.Code, r.Msg)
		})
	}
	require.Empty(t, s.Messages())

	// chat_id wins over the other recipient fields.
	_, r = call(t, s, "/open-apis/message/v4/send", tok, map[string]any{
		"email": "a@b.c", "open_id": "ou_1", "chat_id": "oc_1", "msg_type": "text", "content": map[string]string{"text": "x"}})
	require.Zero(t, r.Code)
	require.Equal(t, "chat_id", s.Messages()[0].Target)
}

func TestChatRateLimit(t *testing.T) {
	s := New(t)
	now := time.Now()
	s.now = func() time.Time { return now }
	tok := token(t, s)
	s.SetChatRateLimit(5)
	for i := range 7 {
		_, r := call(t, s, "/open-apis/message/v4/send/", tok, textBody("oc_1", ""))
		if i < 5 {
			require.Zero(t, r.Code)
		} else {
			require.Equal(t, 11233, r.Code)
		}
	}
	_, r := call(t, s, "/open-apis/message/v4/send/", tok, textBody("oc_2", ""))
	require.Zero(t, r.Code, "the limit is per chat")
	now = now.Add(time.Second)
	_, r = call(t, s, "/open-apis/message/v4/send/", tok, textBody("oc_1", ""))
	require.Zero(t, r.Code, "the window moves on")
	require.Equal(t, 2, s.Refused())
	require.Len(t, s.Messages(), 7)
}

func TestContactsLookup(t *testing.T) {
	s := New(t)
	s.AddUser("Alice@Example.com", "ou_alice")
	tok := token(t, s)
	_, r := call(t, s, "/open-apis/contact/v3/users/batch_get_id?user_id_type=open_id", tok,
		map[string]any{"emails": []string{"alice@example.com", "nobody@example.com"}})
	require.Zero(t, r.Code)
	require.JSONEq(t, `{"user_list":[{"user_id":"ou_alice","email":"alice@example.com"},{"email":"nobody@example.com"}]}`, string(r.Data))

	var many []string
	for i := range 51 {
		many = append(many, fmt.Sprintf("u%d@example.com", i))
	}
	code, r := call(t, s, "/open-apis/contact/v3/users/batch_get_id", tok, map[string]any{"emails": many})
	require.Equal(t, http.StatusBadRequest, code)
	require.NotZero(t, r.Code)
}
