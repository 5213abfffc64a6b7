package state

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
)

// OpenIncidents finds every open incident of the receivers named, from
// either replica, as its record says but for its Last; not those of other
// receivers, nor closed or expired ones.
func testOpenIncidents(t *testing.T, replicas replicasFunc) {
	a, other := replicas(t, opts)
	at := now()
	of := func(chain, receiver string, updated time.Time) *incident.Incident {
		in := full(chain, updated)
		in.Receiver = receiver
		return in
	}
	withLast := of("infra-1", "infra", at)
	bare := of("infra-2", "infra", at)
	bare.Last = nil
	bare.Escalation = incident.Escalation{}
	db := of("db-1", "db", at)
	gone := of("infra-3", "infra", at)
	stale := of("infra-4", "infra", at.Add(-opts.ChainTTL-time.Second))
	for i, in := range []*incident.Incident{withLast, bare, db, gone, stale} {
		deliver(t, a, in, "n"+string(rune('0'+i)))
	}
	deliver(t, a, resolved(gone, "res", at), "n9")

	list := func(s Store, receivers ...string) []*incident.Incident {
		t.Helper()
		got, err := s.OpenIncidents(context.Background(), receivers...)
		require.NoError(t, err)
		return got
	}
	head := func(in *incident.Incident) *incident.Incident {
		c := *in
		c.Last = nil
		return &c
	}
	require.ElementsMatch(t, []*incident.Incident{head(withLast), bare}, list(other, "infra"))
	require.ElementsMatch(t, []*incident.Incident{head(withLast), bare, head(db)}, list(a, "db", "infra"))
	require.Empty(t, list(a, "nobody"))
	require.Empty(t, list(a))
}
