package state

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
)

func due(t *testing.T, s Store, at time.Time, limit int) []string {
	t.Helper()
	ids, err := s.Due(context.Background(), at, limit)
	require.NoError(t, err)
	return ids
}

// Due items come earliest first, at most limit of them, each at the one
// time it was last scheduled for.
func testDueOrder(t *testing.T, replicas replicasFunc) {
	ctx := context.Background()
	a, other := replicas(t, opts)
	t0 := now()
	x, y, z := incident.NewID("x"), incident.NewID("y"), incident.NewID("z")
	require.NoError(t, a.Schedule(ctx, z, t0.Add(3*time.Second)))
	require.NoError(t, a.Schedule(ctx, x, t0.Add(time.Second)))
	require.NoError(t, other.Schedule(ctx, y, t0.Add(5*time.Second)))
	require.NoError(t, other.Schedule(ctx, y, t0.Add(2*time.Second)), "a second schedule replaces the first")
	require.Error(t, a.Schedule(ctx, "not-an-id", t0))

	require.Empty(t, due(t, a, t0, 10), "nothing is due before its time")
	require.Equal(t, []string{x}, due(t, other, t0.Add(time.Second), 10), "due at its time exactly")
	require.Equal(t, []string{y}, due(t, a, t0.Add(4*time.Second), 1), "the earliest first, within the limit")
	require.NoError(t, other.Unschedule(ctx, z))
	require.NoError(t, other.Unschedule(ctx, z), "unscheduling twice is harmless")
	require.Empty(t, due(t, a, t0.Add(4*time.Second), 10), "an unscheduled item does not come due")
	require.Empty(t, due(t, a, t0.Add(time.Hour), 0))
}

// A claimed item is the claimer's until ClaimTTL passes, and then anyone's
// again; scheduling it anew ends the claim.
func testDueClaim(t *testing.T, replicas replicasFunc) {
	ctx := context.Background()
	a, other := replicas(t, opts)
	t0 := now()
	id := incident.NewID("c")
	require.NoError(t, a.Schedule(ctx, id, t0))
	require.Equal(t, []string{id}, due(t, a, t0, 10))
	require.Empty(t, due(t, other, t0, 10), "claimed")
	require.Empty(t, due(t, other, t0.Add(ClaimTTL-time.Millisecond), 10), "claimed until ClaimTTL passes")
	require.Equal(t, []string{id}, due(t, other, t0.Add(ClaimTTL), 10), "a claimer that died lets go")

	require.NoError(t, other.Schedule(ctx, id, t0.Add(time.Minute)))
	require.Empty(t, due(t, a, t0.Add(ClaimTTL+time.Second), 10), "the claimer scheduled the next time")
	require.Equal(t, []string{id}, due(t, a, t0.Add(time.Minute), 10))
}

// Claimers racing for the same items, through both handles (two processes
// on Redis, two goroutines on the file), get each item exactly once.
func testDueClaimedOnce(t *testing.T, replicas replicasFunc) {
	ctx := context.Background()
	a, other := replicas(t, opts)
	t0 := now()
	for round := range 10 {
		id := incident.NewID("one")
		require.NoError(t, a.Schedule(ctx, id, t0))
		start := make(chan struct{})
		won := make(chan []string, 2)
		var wg sync.WaitGroup
		for _, s := range []Store{a, other} {
			wg.Go(func() {
				<-start
				ids, err := s.Due(ctx, t0, 1)
				if assertNoError(t, err) {
					won <- ids
				}
			})
		}
		close(start)
		wg.Wait()
		close(won)
		var winners int
		for ids := range won {
			if len(ids) > 0 {
				require.Equal(t, []string{id}, ids)
				winners++
			}
		}
		require.Equal(t, 1, winners, "round %d", round)
		require.NoError(t, a.Unschedule(ctx, id))
	}

	const items, claimers = 30, 8
	want := map[string]bool{}
	for i := range items {
		id := incident.NewID("c")
		want[id] = true
		require.NoError(t, a.Schedule(ctx, id, t0.Add(time.Duration(i)*time.Millisecond)))
	}

	start := make(chan struct{})
	claims := make(chan []string, items*claimers)
	errs := make(chan error, claimers)
	var wg sync.WaitGroup
	for i := range claimers {
		s := a
		if i%2 == 1 {
			s = other
		}
		wg.Go(func() {
			<-start
			for {
				ids, err := s.Due(ctx, t0.Add(time.Second), 3)
				if err != nil {
					errs <- err
					return
				}
				if len(ids) == 0 {
					return
				}
				claims <- ids
			}
		})
	}
	close(start)
	wg.Wait()
	close(claims)
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got := map[string]int{}
	for ids := range claims {
		for _, id := range ids {
			got[id]++
		}
	}
	require.Len(t, got, items)
	for id, n := range got {
		require.True(t, want[id], id)
		require.Equal(t, 1, n, "claimed once: %s", id)
	}
}
