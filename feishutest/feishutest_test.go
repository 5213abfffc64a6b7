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
	return callMethod(t, s, http.MethodPost, path, token, body)
}

func callMethod(t *testing.T, s *Server, method, path, token string, body any) (int, reply) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(b))
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

// clock is a stand-in's time, which moves only when told to.
type clock struct{ now time.Time }

func (c *clock) advance(d time.Duration) { c.now = c.now.Add(d) }

// newFrozen starts a stand-in whose time stands still until advanced.
func newFrozen(t *testing.T) (*Server, *clock) {
	t.Helper()
	s := New(t)
	c := &clock{now: time.Now()}
	s.now = func() time.Time { return c.now }
	return s, c
}

func TestTokenReissueRule(t *testing.T) {
	s, clock := newFrozen(t)
	first := token(t, s)
	require.True(t, strings.HasPrefix(first, "t-"))

	clock.advance(time.Hour)             // 1 h left: the same token comes back
	r := tokenReply(t, s, tokenPath+"/") // clients also use the trailing slash
	require.Equal(t, first, r.Token)
	require.Equal(t, 3600, r.Exp)

	clock.advance(40 * time.Minute) // 20 min left: a new one, the old still valid
	second := token(t, s)
	require.NotEqual(t, first, second)
	code, _ := call(t, s, "/open-apis/message/v4/send/", first, textBody("oc_1", ""))
	require.Equal(t, http.StatusOK, code)

	clock.advance(21 * time.Minute) // the first has expired
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
	s, clock := newFrozen(t)
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
	clock.advance(time.Second)
	_, r = call(t, s, "/open-apis/message/v4/send/", tok, textBody("oc_1", ""))
	require.Zero(t, r.Code, "the window moves on")
	require.Equal(t, 2, s.Refused())
	require.Len(t, s.Messages(), 7)
}

// A sender that spaces its sends evenly at the limit is never refused.
func TestChatRateLimitAcceptsAnEvenPace(t *testing.T) {
	s, clock := newFrozen(t)
	tok := token(t, s)
	s.SetChatRateLimit(5)
	for range 50 {
		_, r := call(t, s, createPath, tok, imBody("oc_1", "text", map[string]string{"text": "x"}, ""))
		require.Zero(t, r.Code)
		clock.advance(200 * time.Millisecond)
	}
	require.Zero(t, s.Refused())
}

// The per-app limit is the gateway's: HTTP 429, 99991400 and the reset
// header, whatever the chat.
func TestAppRateLimit(t *testing.T) {
	s, clock := newFrozen(t)
	tok := token(t, s)
	s.SetAppRateLimit(3)
	send := func(chat string) (*http.Response, reply) {
		b, _ := json.Marshal(imBody(chat, "text", map[string]string{"text": "x"}, ""))
		req, err := http.NewRequest(http.MethodPost, s.URL+createPath, bytes.NewReader(b))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var r reply
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
		return resp, r
	}
	for i := range 3 {
		_, r := send(fmt.Sprintf("oc_%d", i))
		require.Zero(t, r.Code)
	}
	resp, r := send("oc_9")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, 99991400, r.Code)
	require.Equal(t, "3", resp.Header.Get("x-ogw-ratelimit-limit"))
	require.Equal(t, "1", resp.Header.Get("x-ogw-ratelimit-reset"), "the second's window, in whole seconds")
	clock.advance(time.Second)
	_, r = send("oc_9")
	require.Zero(t, r.Code, "the refused send took no quota, and the window has passed")
	require.Equal(t, 1, s.RefusedByApp())
	require.Equal(t, 1, s.Refused())
}

func TestFailEveryAndFailTarget(t *testing.T) {
	s := New(t)
	tok := token(t, s)
	s.FailEvery(3, Fault{Status: http.StatusInternalServerError, Code: 2200, Msg: "internal error"})
	var codes []int
	for range 6 {
		_, r := call(t, s, createPath, tok, imBody("oc_1", "text", map[string]string{"text": "x"}, ""))
		codes = append(codes, r.Code)
	}
	require.Equal(t, []int{0, 0, 2200, 0, 0, 2200}, codes)
	s.FailEvery(0, Fault{})

	s.FailTarget("oc_2", Fault{Status: http.StatusBadRequest, Code: 230020, Msg: "rate limit"})
	_, r := call(t, s, createPath, tok, imBody("oc_2", "text", map[string]string{"text": "x"}, ""))
	require.Equal(t, 230020, r.Code)
	_, r = call(t, s, createPath, tok, imBody("oc_1", "text", map[string]string{"text": "x"}, ""))
	require.Zero(t, r.Code, "other targets are not affected")
	s.ClearTarget("oc_2")
	_, r = call(t, s, createPath, tok, imBody("oc_2", "text", map[string]string{"text": "x"}, ""))
	require.Zero(t, r.Code)
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

func imBody(receiveID, msgType string, content any, uuid string) map[string]any {
	b, _ := json.Marshal(content)
	return map[string]any{"receive_id": receiveID, "msg_type": msgType, "content": string(b), "uuid": uuid}
}

const createPath = "/open-apis/im/v1/messages?receive_id_type=chat_id"

func TestIMv1Validation(t *testing.T) {
	s := New(t)
	tok := token(t, s)
	bigCard := map[string]any{"config": map[string]any{"update_multi": true},
		"elements": []any{map[string]any{"tag": "div", "text": map[string]string{"tag": "lark_md", "content": strings.Repeat("x", 31*1024)}}}}
	for name, tc := range map[string]struct {
		path string
		body map[string]any
		code int
	}{
		"no receive_id_type": {"/open-apis/im/v1/messages", imBody("oc_1", "text", map[string]string{"text": "x"}, ""), 99992402},
		"content an object":  {createPath, map[string]any{"receive_id": "oc_1", "msg_type": "text", "content": map[string]string{"text": "x"}}, 230001},
		"v4 post wrapper":    {createPath, imBody("oc_1", "post", map[string]any{"post": map[string]any{"zh_cn": map[string]any{}}}, ""), 230001},
		"card without body":  {createPath, imBody("oc_1", "interactive", map[string]any{"header": map[string]any{}}, ""), 230099},
		"card over 30 KB":    {createPath, imBody("oc_1", "interactive", bigCard, ""), 230025},
		"text over 150 KB":   {createPath, imBody("oc_1", "text", map[string]string{"text": strings.Repeat("x", 151*1024)}, ""), 230025},
		"uuid over 50":       {createPath, imBody("oc_1", "text", map[string]string{"text": "x"}, strings.Repeat("u", 51)), 99992402},
		"reply to nothing":   {"/open-apis/im/v1/messages/om_nope/reply", imBody("", "text", map[string]string{"text": "x"}, ""), 230001},
	} {
		t.Run(name, func(t *testing.T) {
			code, r := call(t, s, tc.path, tok, tc.body)
			require.Equal(t, http.StatusBadRequest, code)
			require.Equal(t, tc.code, r.Code, r.Msg)
		})
	}
	require.Empty(t, s.Messages())

	// 100 KB of text is fine on im/v1.
	_, r := call(t, s, createPath, tok, imBody("oc_1", "text", map[string]string{"text": strings.Repeat("x", 100*1024)}, ""))
	require.Zero(t, r.Code, r.Msg)
}

// A uuid succeeds once an hour: the same uuid within the hour answers with
// the message it made; after the hour it makes a new one.
func TestIMv1UUIDWindow(t *testing.T) {
	s, clock := newFrozen(t)
	tok := token(t, s)
	id := func() string {
		_, r := call(t, s, createPath, tok, imBody("oc_1", "text", map[string]string{"text": "x"}, "u-1"))
		require.Zero(t, r.Code, r.Msg)
		var d struct {
			MessageID string `json:"message_id"`
		}
		require.NoError(t, json.Unmarshal(r.Data, &d))
		return d.MessageID
	}
	first := id()
	clock.advance(59 * time.Minute)
	require.Equal(t, first, id())
	require.Len(t, s.Messages(), 1)
	clock.advance(2 * time.Minute)
	require.NotEqual(t, first, id())
	require.Len(t, s.Messages(), 2)
}

func TestIMv1ReplyAndPatch(t *testing.T) {
	s, clock := newFrozen(t)
	tok := token(t, s)
	card := func(title string) map[string]any {
		return map[string]any{"config": map[string]any{"update_multi": true},
			"header":   map[string]any{"template": "red", "title": map[string]string{"tag": "plain_text", "content": title}},
			"elements": []any{map[string]any{"tag": "div", "text": map[string]string{"tag": "lark_md", "content": "body"}}}}
	}
	_, r := call(t, s, createPath, tok, imBody("oc_1", "interactive", card("firing"), ""))
	require.Zero(t, r.Code, r.Msg)
	root := s.Messages()[0].ID
	_, r = call(t, s, "/open-apis/im/v1/messages/"+root+"/reply", tok, imBody("", "text", map[string]string{"text": "one"}, ""))
	require.Zero(t, r.Code, r.Msg)
	first := s.Messages()[1]
	_, r = call(t, s, "/open-apis/im/v1/messages/"+first.ID+"/reply", tok, imBody("", "text", map[string]string{"text": "two"}, ""))
	require.Zero(t, r.Code, r.Msg)
	msgs := s.Messages()
	require.Equal(t, root, msgs[1].RootID)
	require.Equal(t, root, msgs[2].RootID, "a reply to a reply keeps the root")
	require.Equal(t, first.ID, msgs[2].ParentID)
	require.Equal(t, "oc_1", msgs[2].TargetID)

	patch := func(id string, content any) reply {
		b, _ := json.Marshal(content)
		_, r := callMethod(t, s, http.MethodPatch, "/open-apis/im/v1/messages/"+id, tok, map[string]string{"content": string(b)})
		return r
	}
	require.Zero(t, patch(root, card("resolved")).Code)
	got, _ := s.Message(root)
	require.Equal(t, 1, got.Updates)
	require.True(t, strings.HasPrefix(got.Text, "resolved"))
	require.True(t, strings.HasPrefix(got.FirstText, "firing"), "the text as first sent is kept")
	require.Zero(t, patch(root, card("again")).Code)
	got, _ = s.Message(root)
	require.True(t, strings.HasPrefix(got.FirstText, "firing"), "as first sent, not as before the last update")
	require.Equal(t, 230001, patch(first.ID, card("x")).Code, "only cards can be updated")

	clock.advance(15 * 24 * time.Hour)
	tok = token(t, s)
	require.Equal(t, 230031, patch(root, card("late")).Code, "14 days at most")
}

// The per-chat limit answers im/v1 with 230020, v4 with 11233.
func TestIMv1ChatRateLimit(t *testing.T) {
	s, _ := newFrozen(t)
	tok := token(t, s)
	s.SetChatRateLimit(1)
	_, r := call(t, s, createPath, tok, imBody("oc_1", "text", map[string]string{"text": "x"}, ""))
	require.Zero(t, r.Code)
	code, r := call(t, s, createPath, tok, imBody("oc_1", "text", map[string]string{"text": "x"}, ""))
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, 230020, r.Code)
	s.RemoveBot("oc_2")
	_, r = call(t, s, createPath, tok, imBody("oc_2", "text", map[string]string{"text": "x"}, ""))
	require.Equal(t, 230002, r.Code)
}

func TestMentionsAndLookupFaults(t *testing.T) {
	for _, tc := range []struct {
		typ, text string
		want      []string
	}{
		{"text", `hi <at user_id="ou_a"></at> <at user_id="all"></at> ＜at user_id="ou_x"＞`, []string{"ou_a", "all"}},
		{"post", `title` + "\n" + `<at user_id="ou_b"></at>`, []string{"ou_b"}},
		{"interactive", "title\n<at id=ou_c></at> &#60;at id=ou_x&#62;", []string{"ou_c"}},
	} {
		require.Equal(t, tc.want, Message{Type: tc.typ, Text: tc.text}.Mentions(), tc.typ)
	}

	s := New(t)
	tok := token(t, s)
	s.FailLookups(&Fault{Status: http.StatusBadRequest, Code: 99991672, Msg: "Access denied."})
	_, r := call(t, s, "/open-apis/contact/v3/users/batch_get_id?user_id_type=open_id", tok, map[string]any{"emails": []string{"a@x"}})
	require.Equal(t, 99991672, r.Code)
	s.FailLookups(nil)
	_, r = call(t, s, "/open-apis/contact/v3/users/batch_get_id?user_id_type=open_id", tok, map[string]any{"emails": []string{"a@x"}})
	require.Zero(t, r.Code)
	require.Equal(t, 2, s.Lookups())
}
