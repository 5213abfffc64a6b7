package state

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
)

// The census counts each open incident once, in the state its record says
// at the time asked: a silence that ran out no longer counts, and a
// resolution takes the incident out.
func testCensus(t *testing.T, replicas replicasFunc) {
	a, b := replicas(t, opts)
	at := now()
	chain := func(i int) string { return strings.Repeat(string(rune('a'+i)), 64) }
	census := func(s Store, at time.Time) Census {
		t.Helper()
		c, err := s.Census(context.Background(), at)
		require.NoError(t, err)
		return c
	}
	require.Equal(t, Census{}, census(a, at))

	fire := firing(chain(0), "om_0", at)
	deliver(t, a, fire, "n0")
	acked := firing(chain(1), "om_1", at)
	acked.Ack = &incident.Ack{By: incident.Person{OpenID: "ou_a"}, At: at}
	deliver(t, b, acked, "n1")
	silenced := firing(chain(2), "om_2", at)
	silenced.Silence = &incident.Silence{ID: "s", Until: at.Add(50 * time.Minute)}
	deliver(t, a, silenced, "n2")
	both := firing(chain(3), "om_3", at)
	both.Ack = &incident.Ack{By: incident.Person{OpenID: "ou_a"}, At: at}
	both.Silence = &incident.Silence{ID: "s2", Until: at.Add(30 * time.Minute)}
	deliver(t, b, both, "n3")
	gone := firing(chain(4), "om_4", at)
	deliver(t, a, gone, "n4")
	deliver(t, a, resolved(gone, "r", at), "n5")

	want := Census{Firing: 1, Acknowledged: 1, Silenced: 2}
	require.Equal(t, want, census(a, at.Add(time.Second)))
	require.Equal(t, want, census(b, at.Add(time.Second)), "every replica counts the same")
	require.Equal(t, Census{Firing: 1, Acknowledged: 2, Silenced: 1}, census(a, at.Add(45*time.Minute)),
		"the acknowledged incident's silence ran out")
	require.Equal(t, Census{Firing: 2, Acknowledged: 2}, census(b, at.Add(55*time.Minute)), "both silences ran out")
	require.Equal(t, Census{}, census(a, at.Add(2*time.Hour)), "and the chains expired (chain_ttl 1h)")
}
