package feishutest

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func updateCard(multi bool, title string) map[string]any {
	return map[string]any{"config": map[string]any{"update_multi": multi},
		"header":   map[string]any{"title": map[string]string{"tag": "plain_text", "content": title}},
		"elements": []any{map[string]any{"tag": "div", "text": map[string]string{"tag": "lark_md", "content": "body"}}}}
}

// sendCard sends a card and returns its message ID and a token.
func sendCard(t *testing.T, s *Server, card map[string]any) (string, string) {
	t.Helper()
	tok := token(t, s)
	_, r := call(t, s, createPath, tok, imBody("oc_1", "interactive", card, ""))
	require.Zero(t, r.Code, r.Msg)
	var d struct {
		MessageID string `json:"message_id"`
	}
	require.NoError(t, json.Unmarshal(r.Data, &d))
	return d.MessageID, tok
}

func patchCard(t *testing.T, s *Server, tok, id string, card map[string]any) (int, reply) {
	t.Helper()
	b, _ := json.Marshal(card)
	return callMethod(t, s, http.MethodPatch, "/open-apis/im/v1/messages/"+id, tok, map[string]string{"content": string(b)})
}

func TestCardUpdateRefusedAfter14Days(t *testing.T) {
	s, clock := newFrozen(t)
	id, _ := sendCard(t, s, updateCard(true, "firing"))
	clock.advance(14*24*time.Hour + time.Minute)
	status, r := patchCard(t, s, token(t, s), id, updateCard(true, "late"))
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, 230031, r.Code, r.Msg)
}

func TestCardUpdateRefusedWithoutUpdateMultiInTheOldCard(t *testing.T) {
	s := New(t)
	id, tok := sendCard(t, s, updateCard(false, "firing"))
	_, r := patchCard(t, s, tok, id, updateCard(true, "acked"))
	require.Equal(t, 230099, r.Code)
	require.Contains(t, r.Msg, "300302")
}

func TestCardUpdateRefusedWithoutUpdateMultiInTheNewCard(t *testing.T) {
	s := New(t)
	id, tok := sendCard(t, s, updateCard(true, "firing"))
	_, r := patchCard(t, s, tok, id, updateCard(false, "acked"))
	require.Equal(t, 230099, r.Code)
	require.Contains(t, r.Msg, "300302")
	m, _ := s.Message(id)
	require.Zero(t, m.Updates)
}

// Five updates of one card in a second pass, the sixth is refused; another
// card has its own five, and the next second brings new ones.
func TestCardUpdateRefusedOver5PerSecondPerMessage(t *testing.T) {
	s, clock := newFrozen(t)
	id, tok := sendCard(t, s, updateCard(true, "firing"))
	other, _ := sendCard(t, s, updateCard(true, "other"))
	for i := range 5 {
		_, r := patchCard(t, s, tok, id, updateCard(true, "u"))
		require.Zero(t, r.Code, "update %d: %s", i, r.Msg)
	}
	status, r := patchCard(t, s, tok, id, updateCard(true, "u"))
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, 230020, r.Code)
	_, r = patchCard(t, s, tok, other, updateCard(true, "u"))
	require.Zero(t, r.Code, r.Msg)
	clock.advance(time.Second)
	_, r = patchCard(t, s, tok, id, updateCard(true, "u"))
	require.Zero(t, r.Code, r.Msg)
	m, _ := s.Message(id)
	require.Equal(t, 6, m.Updates)
}
