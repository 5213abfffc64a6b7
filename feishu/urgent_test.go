package feishu_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
)

// rootIn sends a root message to chat, whose members are members, and
// returns the buzzer and the message's ID.
func rootIn(t *testing.T, s *feishutest.Server, chat string, members ...string) (feishu.Buzzer, string) {
	t.Helper()
	s.AddChatMembers(chat, members...)
	sender := newIMv1(t, s, config.RateLimit{})
	id, err := sender.Send(context.Background(), text(chat, "root"))
	require.NoError(t, err)
	return sender.(feishu.Buzzer), id
}

func TestUrgentReturnsThoseNotInTheChat(t *testing.T) {
	s := feishutest.New(t)
	b, id := rootIn(t, s, "oc_1", "ou_alice", "ou_bob")
	invalid, err := b.Urgent(context.Background(), id, feishu.UrgentApp, []string{"ou_alice", "ou_carol", "ou_bob", "ou_alice"})
	require.NoError(t, err)
	require.Equal(t, []string{"ou_carol"}, invalid)
	require.Equal(t, []feishutest.Urgent{{MessageID: id, Kind: "app", OpenIDs: []string{"ou_alice", "ou_bob"}}}, s.Urgents(),
		"a repeated id is buzzed once")
}

// Feishu answers 230001 when no one can be buzzed: that is everyone
// refused, not a failure.
func TestUrgentAllInvalid(t *testing.T) {
	s := feishutest.New(t)
	b, id := rootIn(t, s, "oc_1", "ou_alice")
	invalid, err := b.Urgent(context.Background(), id, feishu.UrgentSMS, []string{"ou_bob", "ou_carol"})
	require.NoError(t, err)
	require.Equal(t, []string{"ou_bob", "ou_carol"}, invalid)
	require.Empty(t, s.Urgents())
}

// Refusals of the buzz itself fail at once, with Feishu's code.
func TestUrgentRefusalsArePermanent(t *testing.T) {
	for name, tc := range map[string]struct {
		setup func(s *feishutest.Server, id string) string
		code  int
	}{
		"quota exhausted": {func(s *feishutest.Server, id string) string { s.SetUrgentQuota("phone", 0); return id }, 230024},
		"message deleted": {func(s *feishutest.Server, id string) string { s.Delete(id); return id }, 230110},
		"not the bot's":   {func(s *feishutest.Server, id string) string { s.SentByOther(id); return id }, 230012},
		"bot not in chat": {func(s *feishutest.Server, id string) string { s.RemoveBot("oc_1"); return id }, 230002},
		"no such message": {func(*feishutest.Server, string) string { return "om_unknown" }, 230001},
	} {
		t.Run(name, func(t *testing.T) {
			s := feishutest.New(t)
			b, id := rootIn(t, s, "oc_1", "ou_alice")
			id = tc.setup(s, id)
			sends := s.Sends()
			invalid, err := b.Urgent(context.Background(), id, feishu.UrgentPhone, []string{"ou_alice"})
			require.Empty(t, invalid)
			var e *feishu.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tc.code, e.Code)
			require.Equal(t, feishu.EndpointUrgentPhone, e.Endpoint)
			require.Equal(t, feishu.Permanent, feishu.Classify(err))
			require.Equal(t, sends+1, s.Sends(), "no retry")
		})
	}
}

func TestUrgentSplitsLongLists(t *testing.T) {
	s := feishutest.New(t)
	var ids []string
	for i := range 250 {
		ids = append(ids, fmt.Sprintf("ou_%03d", i))
	}
	b, id := rootIn(t, s, "oc_1", ids[:249]...)
	invalid, err := b.Urgent(context.Background(), id, feishu.UrgentApp, ids)
	require.NoError(t, err)
	require.Equal(t, []string{"ou_249"}, invalid)
	got := s.Urgents()
	require.Len(t, got, 2)
	require.Equal(t, ids[:200], got[0].OpenIDs)
	require.Equal(t, ids[200:249], got[1].OpenIDs)
}

func TestUrgentBadRequests(t *testing.T) {
	s := feishutest.New(t)
	b, id := rootIn(t, s, "oc_1", "ou_alice")
	sends, tokens := s.Sends(), s.TokenRequests()
	for name, tc := range map[string]struct {
		id, kind string
		openIDs  []string
	}{
		"unknown kind":   {id, "email", []string{"ou_alice"}},
		"not an open_id": {id, feishu.UrgentApp, []string{"ou_alice", "on_union"}},
		"bare prefix":    {id, feishu.UrgentApp, []string{"ou_"}},
		"no one":         {id, feishu.UrgentApp, nil},
		"no message":     {"", feishu.UrgentApp, []string{"ou_alice"}},
	} {
		_, err := b.Urgent(context.Background(), tc.id, tc.kind, tc.openIDs)
		var re *feishu.RequestError
		require.ErrorAs(t, err, &re, name)
		require.Equal(t, feishu.Permanent, feishu.Classify(err), name)
	}
	require.Equal(t, sends, s.Sends(), "no request made")
	require.Equal(t, tokens, s.TokenRequests(), "not even for a token")
}

// A buzz takes a slot under the app's limits, and is retried when
// Feishu's answer may pass. Virtual time makes the schedule exact.
func TestUrgentPacedAndRetried(t *testing.T) {
	s := feishutest.New(t)
	s.AddChatMembers("oc_1", "ou_alice")
	synctest.Test(t, func(t *testing.T) {
		sender := newIMv1(t, s, config.RateLimit{PerApp: 1}, feishu.WithHTTPClient(s.Client()))
		id, err := sender.Send(context.Background(), text("oc_1", "root"))
		require.NoError(t, err)
		b := sender.(feishu.Buzzer)
		start := time.Now()
		for range 2 {
			_, err := b.Urgent(context.Background(), id, feishu.UrgentApp, []string{"ou_alice"})
			require.NoError(t, err)
		}
		require.Equal(t, 2300*time.Millisecond, time.Since(start),
			"one call every 1.05 s (the pacer's margin), the first after the send's slow start of 1.275 s")

		s.FailNext(1, feishutest.Fault{Status: 500, Code: 2200, Msg: "internal error"})
		_, err = b.Urgent(context.Background(), id, feishu.UrgentApp, []string{"ou_alice"})
		require.NoError(t, err)
		require.Len(t, s.Urgents(), 3)
	})
}
