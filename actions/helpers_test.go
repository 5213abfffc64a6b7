package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/logtest"
)

func newLogger() (*slog.Logger, *logtest.Buffer) {
	buf := &logtest.Buffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// sendCard puts a card in chat oc_ops on the stand-in and returns its ID.
func sendCard(t *testing.T, s *feishutest.Server) string {
	t.Helper()
	post := func(path, token string, body any) map[string]any {
		b, _ := json.Marshal(body)
		req, err := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewReader(b))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		require.EqualValues(t, 0, out["code"], out["msg"])
		return out
	}
	tok := post("/open-apis/auth/v3/tenant_access_token/internal", "",
		map[string]string{"app_id": feishutest.AppID, "app_secret": feishutest.AppSecret})["tenant_access_token"].(string)
	card, _ := json.Marshal(testCard("firing"))
	out := post("/open-apis/im/v1/messages?receive_id_type=chat_id", tok,
		map[string]any{"receive_id": "oc_ops", "msg_type": "interactive", "content": string(card)})
	return out["data"].(map[string]any)["message_id"].(string)
}

func testCard(title string) map[string]any {
	return map[string]any{"config": map[string]any{"update_multi": true},
		"header":   map[string]any{"title": map[string]string{"tag": "plain_text", "content": title}},
		"elements": []any{map[string]any{"tag": "div", "text": map[string]string{"tag": "lark_md", "content": "body"}}}}
}

// recorder is a Handler that remembers its callbacks and answers answer.
type recorder struct {
	mu     sync.Mutex
	got    []Callback
	answer Answer
}

func (r *recorder) Callback(_ context.Context, cb Callback) Answer {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, cb)
	return r.answer
}

func (r *recorder) callbacks() []Callback {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Callback(nil), r.got...)
}
