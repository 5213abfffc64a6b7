package feishutest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// answering is an HTTP callback endpoint whose answers replace the card
// with card.
func answering(t *testing.T, s *Server, card map[string]any) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"card": map[string]any{"type": "raw", "data": card}})
	}))
	t.Cleanup(srv.Close)
	s.SetCallback(srv.URL, VerificationToken, "key")
}

func cardTitle(t *testing.T, content json.RawMessage) string {
	t.Helper()
	var c card
	require.NoError(t, json.Unmarshal(content, &c))
	return c.Header.Title.Content
}

// An answer's card shows to the whole chat only when the old and the new
// card set update_multi; else the clicker alone sees it, and the chat's
// card is unchanged.
func TestAnswerCardUpdateMulti(t *testing.T) {
	for _, tc := range []struct {
		name        string
		old, answer bool
		shared      bool
	}{
		{"both", true, true, true},
		{"not in the answer", true, false, false},
		{"not in the old card", false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(t)
			id, _ := sendCard(t, s, updateCard(tc.old, "firing"))
			answering(t, s, updateCard(tc.answer, "acked"))
			a, err := s.Click(context.Background(), id, "ou_alice", map[string]string{"action": "ack"})
			require.NoError(t, err)
			require.Equal(t, "acked", cardTitle(t, a.Card))

			m, _ := s.Message(id)
			alice, ok := s.CardFor(id, "ou_alice")
			require.True(t, ok)
			bob, _ := s.CardFor(id, "ou_bob")
			require.Equal(t, "acked", cardTitle(t, alice), "the clicker sees the answer's card")
			if tc.shared {
				require.Equal(t, 1, m.Updates)
				require.Equal(t, "acked", cardTitle(t, m.Content))
				require.Equal(t, "acked", cardTitle(t, bob))
				return
			}
			require.Zero(t, m.Updates, "the chat's card is unchanged")
			require.Equal(t, "firing", cardTitle(t, m.Content))
			require.Equal(t, "firing", cardTitle(t, bob), "the others see the card as it was")
		})
	}
}

// A shared update later replaces what a clicker was shown alone.
func TestSharedUpdateEndsAPrivateCard(t *testing.T) {
	s := New(t)
	id, _ := sendCard(t, s, updateCard(true, "firing"))
	answering(t, s, updateCard(false, "mine"))
	_, err := s.Click(context.Background(), id, "ou_alice", map[string]string{"action": "ack"})
	require.NoError(t, err)
	answering(t, s, updateCard(true, "everyone's"))
	_, err = s.Click(context.Background(), id, "ou_bob", map[string]string{"action": "ack"})
	require.NoError(t, err)
	alice, _ := s.CardFor(id, "ou_alice")
	require.Equal(t, "everyone's", cardTitle(t, alice))
	_, ok := s.CardFor("om_nothing", "ou_alice")
	require.False(t, ok)
}
