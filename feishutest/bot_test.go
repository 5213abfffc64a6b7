package feishutest

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func botBody(msgType string, content any, ts int64, secret string) map[string]any {
	b := map[string]any{"msg_type": msgType}
	if msgType == "interactive" {
		b["card"] = content
	} else {
		b["content"] = content
	}
	if secret != "" {
		b["timestamp"], b["sign"] = strconv.FormatInt(ts, 10), BotSign(ts, secret)
	}
	return b
}

const hook = "/open-apis/bot/v2/hook/"

// Signatures are checked as Feishu documents: right, wrong, missing, and a
// timestamp more than an hour from the stand-in's clock.
func TestBotSignature(t *testing.T) {
	s, c := newFrozen(t)
	s.AddBot("signed", "s3cret")
	s.AddBot("open", "")
	text := map[string]any{"text": "hello"}
	now := c.now.Unix()

	for name, tc := range map[string]struct {
		body map[string]any
		code int
	}{
		"right":              {botBody("text", text, now, "s3cret"), 0},
		"wrong secret":       {botBody("text", text, now, "other"), BotSignMismatch},
		"missing":            {botBody("text", text, 0, ""), BotSignMismatch},
		"an hour and a bit":  {botBody("text", text, now-3700, "s3cret"), BotSignMismatch},
		"in the hour before": {botBody("text", text, now-3500, "s3cret"), 0},
	} {
		status, r := call(t, s, hook+"signed", "", tc.body)
		require.Equal(t, http.StatusOK, status, name)
		require.Equal(t, tc.code, r.Code, name)
	}
	require.Equal(t, 3, s.RefusedSignatures())

	_, r := call(t, s, hook+"open", "", botBody("text", text, 0, ""))
	require.Zero(t, r.Code, "a bot without a secret takes unsigned requests")
	_, r = call(t, s, hook+"nobody", "", botBody("text", text, 0, ""))
	require.Equal(t, BotTokenInvalid, r.Code)
	require.Len(t, s.Messages(), 3)
}

// Bodies are checked for shape and size, and every answer is HTTP 200 with
// the verdict in code, a success carrying no message ID.
func TestBotBodies(t *testing.T) {
	s := New(t)
	s.AddBot("b", "")
	for name, tc := range map[string]struct {
		body map[string]any
		code int
	}{
		"text":               {botBody("text", map[string]any{"text": "<at user_id=\"ou_1\"></at> hi"}, 0, ""), 0},
		"post":               {botBody("post", map[string]any{"post": map[string]any{"en_us": map[string]any{"title": "t", "content": [][]map[string]any{{{"tag": "text", "text": "x"}}}}}}, 0, ""), 0},
		"card":               {botBody("interactive", map[string]any{"elements": []any{map[string]any{"tag": "markdown", "content": "x"}}}, 0, ""), 0},
		"card in content":    {map[string]any{"msg_type": "interactive", "content": map[string]any{"elements": []any{}}}, BotBadRequest},
		"text without text":  {botBody("text", map[string]any{"txt": "x"}, 0, ""), BotBadRequest},
		"over 20 KB of text": {botBody("text", map[string]any{"text": strings.Repeat("x", BotMaxBytes)}, 0, ""), BotBadRequest},
	} {
		status, r := call(t, s, hook+"b", "", tc.body)
		require.Equal(t, http.StatusOK, status, name)
		require.Equal(t, tc.code, r.Code, name)
		if tc.code == 0 {
			require.JSONEq(t, `{}`, string(r.Data), name)
		}
	}
	msgs := s.Messages()
	require.Len(t, msgs, 3)
	for _, m := range msgs {
		require.Equal(t, "bot", m.API)
		if m.Type == "text" {
			require.Equal(t, []string{"ou_1"}, m.Mentions())
		}
	}
}

// A custom bot takes 5 sends a second and 100 a minute.
func TestBotRateLimits(t *testing.T) {
	s, c := newFrozen(t)
	s.AddBot("b", "")
	text := botBody("text", map[string]any{"text": "x"}, 0, "")
	codes := func(n int) (ok, limited int) {
		for range n {
			_, r := call(t, s, hook+"b", "", text)
			switch r.Code {
			case 0:
				ok++
			case BotRateLimited:
				limited++
			}
		}
		return
	}
	ok, limited := codes(7)
	require.Equal(t, 5, ok)
	require.Equal(t, 2, limited)
	total := ok
	for range 39 {
		c.advance(time.Second)
		n, _ := codes(5)
		total += n
	}
	// 40 s at the per-second limit would be 200; a sliding minute allows
	// 100 (ratelimit_test.go has the other ways of counting).
	require.Equal(t, 100, total, "the per-minute limit binds")
}
