package state

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
)

// full is an incident with every field set, so that a round trip shows
// whatever a store would lose.
func full(chain string, at time.Time) *incident.Incident {
	in := incident.New(chain, at.Add(-time.Minute))
	in.Receiver, in.Target, in.GroupKey = "infra", "chat_id oc_infra", `{}:{alertname="HighCPU"}`
	in.GroupLabels = map[string]string{"alertname": "HighCPU"}
	in.CommonLabels = map[string]string{"alertname": "HighCPU", "severity": "critical"}
	in.Root = "om_root"
	in.Updated = at
	in.Last = []byte(`{"version":"4","status":"firing","alerts":[{"labels":{"alertname":"HighCPU"}}]}`)
	in.Ack = &incident.Ack{By: incident.Person{OpenID: "ou_1", Name: "Ann"}, At: at}
	in.Silence = &incident.Silence{ID: "sil-1", Until: at.Add(time.Hour), By: incident.Person{OpenID: "ou_2"}}
	in.Escalation = incident.Escalation{Step: 2, Due: at.Add(5 * time.Minute)}
	return in
}

// A record comes back as it was written, from either replica, open or
// closed; a write without a notification (an acknowledgement) records no
// delivery.
func testRecords(t *testing.T, replicas replicasFunc) {
	ctx := context.Background()
	a, other := replicas(t, opts)
	at := now()
	in := full("chain", at)
	commitLocked(t, a, Write{Incident: in, At: at})
	require.Equal(t, Loaded{Incident: in}, load(t, other, "chain", "n1"), "an acknowledgement delivers nothing")
	got, err := other.Get(ctx, in.ID)
	require.NoError(t, err)
	require.Equal(t, in, got)

	in.Ack, in.Escalation = nil, incident.Escalation{}
	in.Last = append([]byte(nil), strings.Repeat("x", 8<<10)...) // a webhook body of some size
	deliver(t, other, in, "n1")
	require.Equal(t, Loaded{Incident: in, Delivered: true}, load(t, a, "chain", "n1"), "what a write leaves out is gone")

	closed := resolved(in, "res", at)
	deliver(t, a, closed, "n2")
	require.Equal(t, Loaded{Closed: closed, Delivered: true}, load(t, other, "chain", "n2"))
	got, err = other.Get(ctx, in.ID)
	require.NoError(t, err)
	require.Equal(t, closed, got)
	require.Equal(t, 0, chains(t, other))
}

// Get finds an open or a closed incident by its ID alone, and nothing for
// any other ID.
func testGet(t *testing.T, replicas replicasFunc) {
	ctx := context.Background()
	a, other := replicas(t, opts)
	at := now()
	open := firing("open", "om_1", at)
	deliver(t, a, open, "n1")
	closed := resolved(firing("closed", "om_2", at), "res", at)
	deliver(t, a, closed, "n2")

	for _, in := range []*incident.Incident{open, closed} {
		got, err := other.Get(ctx, in.ID)
		require.NoError(t, err)
		require.Equal(t, in, got)
	}
	for _, id := range []string{
		incident.NewID("open"),   // the chain's, with another random part
		incident.NewID("closed"), // likewise
		incident.NewID("none"),   // a chain without an incident
		"", "open", "open.", "open." + strings.Repeat("0", 31), ".0123456789abcdef0123456789abcdef",
	} {
		_, err := other.Get(ctx, id)
		require.ErrorIs(t, err, ErrNotFound, "id %q", id)
	}
}

// A commit without the chain's lock is refused and writes nothing, so that
// a holder that lost its lock cannot overwrite its successor.
func testFencedCommit(t *testing.T, replicas replicasFunc) {
	ctx := context.Background()
	a, other := replicas(t, opts)
	in := firing("c", "om_1", now())
	err := a.Commit(ctx, Write{Incident: in, Notification: "n", At: in.Updated})
	require.ErrorIs(t, err, ErrLockLost, "never locked")

	unlock, err := other.Lock(ctx, "c")
	require.NoError(t, err)
	if a != other {
		require.ErrorIs(t, a.Commit(ctx, Write{Incident: in, Notification: "n", At: in.Updated}), ErrLockLost,
			"locked by another replica")
	}
	require.NoError(t, other.Commit(ctx, Write{Incident: in, At: in.Updated}))
	unlock()
	later := *in
	later.Root = "om_late"
	require.ErrorIs(t, other.Commit(ctx, Write{Incident: &later, Notification: "n", At: in.Updated}), ErrLockLost,
		"unlocked again")
	require.Equal(t, Loaded{Incident: in}, load(t, a, "c", "n"), "refused commits wrote nothing")

	unlock, err = a.Lock(ctx, "c")
	require.NoError(t, err)
	defer unlock()
	require.Error(t, a.Commit(ctx, Write{At: in.Updated}), "no incident")
	bad := *in
	bad.ID = incident.NewID("other")
	require.Error(t, a.Commit(ctx, Write{Incident: &bad, At: in.Updated}), "an ID of another chain")
}
