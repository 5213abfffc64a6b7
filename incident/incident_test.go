package incident

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const chain = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestIDNamesItsChainAndCannotBeGuessed(t *testing.T) {
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	a, b := New(chain, now), New(chain, now)
	require.NotEqual(t, a.ID, b.ID, "two incidents of one chain have IDs of their own")
	require.Equal(t, chain, ChainOf(a.ID))
	require.True(t, strings.HasPrefix(a.ID, chain+"."))
	require.Equal(t, Firing, a.State)
	require.True(t, a.Open())
	require.Equal(t, now, a.FirstSent)
	require.Equal(t, now, a.Updated)

	require.True(t, a.Is(a.ID))
	require.False(t, a.Is(b.ID), "the chain alone does not name the incident")
	require.False(t, a.Is(chain))
	require.False(t, a.Is(a.ID+"0"))
	require.False(t, a.Is(""))
}

func TestChainOfRefusesWhatIsNotAnID(t *testing.T) {
	random := strings.Repeat("ab", 16)
	for _, id := range []string{
		"",
		chain,                      // no random part
		chain + ".",                // an empty one
		chain + "." + random[:31],  // too short
		chain + "." + random + "0", // too long
		"." + random,               // no chain
		chain + "." + random[:16],  // half of it
	} {
		require.Empty(t, ChainOf(id), "%q", id)
	}
	require.Equal(t, chain, ChainOf(chain+"."+random))
}

func TestSilencedUntilItsEnd(t *testing.T) {
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	in := New(chain, now)
	require.False(t, in.Silenced(now), "no silence")
	in.Silence = &Silence{ID: "s1", Until: now.Add(time.Hour)}
	require.True(t, in.Silenced(now))
	require.True(t, in.Silenced(now.Add(time.Hour-time.Nanosecond)))
	require.False(t, in.Silenced(now.Add(time.Hour)), "a silence has ended at its end")
}

func TestRememberKeepsTheLastEvents(t *testing.T) {
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	in := New(chain, now)
	_, ok := in.Answered("ev-0")
	require.False(t, ok)
	for i := range maxEvents + 4 {
		in.Remember(fmt.Sprintf("ev-%d", i), now, json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)))
	}
	require.Len(t, in.Events, maxEvents)
	for i := range 4 {
		_, ok := in.Answered(fmt.Sprintf("ev-%d", i))
		require.False(t, ok, "the oldest are forgotten: ev-%d", i)
	}
	answer, ok := in.Answered(fmt.Sprintf("ev-%d", maxEvents+3))
	require.True(t, ok)
	require.JSONEq(t, fmt.Sprintf(`{"n":%d}`, maxEvents+3), string(answer), "a repeat is told what the first click was")
	answer, ok = in.Answered("ev-4")
	require.True(t, ok)
	require.JSONEq(t, `{"n":4}`, string(answer))
}

// The record's JSON is what the stores keep and every replica reads: a
// round trip loses nothing but the chain, which a store sets from its key.
func TestRecordRoundTrip(t *testing.T) {
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	in := New(chain, now)
	in.Receiver, in.Target, in.GroupKey = "infra", "chat:oc_1", `{}:{alertname="X"}`
	in.GroupLabels = map[string]string{"alertname": "X"}
	in.CommonLabels = map[string]string{"alertname": "X", "severity": "critical"}
	in.Root = "om_1"
	in.Ack = &Ack{By: Person{OpenID: "ou_1", Name: "Alice"}, At: now.Add(time.Minute)}
	in.Silence = &Silence{ID: "s1", Until: now.Add(time.Hour), By: Person{OpenID: "ou_2"}}
	in.Escalation = Escalation{Step: 1, Reached: []string{"ou_3"}, Due: now.Add(30 * time.Minute)}
	in.Remember("ev-1", now, json.RawMessage(`{"toast":{}}`))

	b, err := json.Marshal(in)
	require.NoError(t, err)
	require.NotContains(t, string(b), chain+`"`, "the chain is not kept twice")
	var got Incident
	require.NoError(t, json.Unmarshal(b, &got))
	require.Empty(t, got.Chain)
	got.Chain = ChainOf(got.ID)
	require.Equal(t, in, &got)

	// A record that nothing acted on stays small: no empty blocks.
	b, err = json.Marshal(New(chain, now))
	require.NoError(t, err)
	for _, key := range []string{"ack", "silence", "escalation", "events", "last", "root"} {
		require.NotContains(t, string(b), `"`+key+`"`)
	}
}
