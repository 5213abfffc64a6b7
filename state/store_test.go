package state

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/redistest"
)

// replicasFunc returns two handles on one fresh state: two processes
// sharing a Redis, or the one process that may use a file.
type replicasFunc = func(t testing.TB, opts Options) (Store, Store)

// backend opens stores for the conformance suite. start runs what the
// backend needs for a test and its subtests. Redis backends share one
// server (or cluster) among the subtests, each under a key prefix of its
// own, as services sharing a Redis do: a cluster takes seconds to form.
type backend struct {
	name  string
	start func(t testing.TB) replicasFunc
}

func backends() []backend {
	shared := func(ro RedisOptions) replicasFunc {
		var n atomic.Int32
		return func(t testing.TB, opts Options) (Store, Store) {
			ro := ro
			ro.KeyPrefix = fmt.Sprintf("test%d:", n.Add(1))
			return openRedisWith(t, ro, opts), openRedisWith(t, ro, opts)
		}
	}
	return []backend{
		{"file", func(testing.TB) replicasFunc {
			return func(t testing.TB, opts Options) (Store, Store) {
				f, err := OpenFile(filepath.Join(t.TempDir(), "state.db"), opts, promslog.NewNopLogger())
				require.NoError(t, err)
				t.Cleanup(func() { f.Close() })
				return f, f
			}
		}},
		{"redis", func(t testing.TB) replicasFunc {
			return shared(RedisOptions{Addresses: []string{redistest.Start(t).Addr}})
		}},
		// Through a Sentinel: the client asks it for the master.
		{"redis-sentinel", func(t testing.TB) replicasFunc {
			sentinel := redistest.StartSentinel(t, redistest.Start(t))
			return shared(RedisOptions{Addresses: []string{sentinel.Addr}, MasterName: "mymaster"})
		}},
		// On a Cluster of three masters: a chain's keys must share a slot
		// for Commit's script, or Redis refuses it (CROSSSLOT).
		{"redis-cluster", func(t testing.TB) replicasFunc {
			return shared(RedisOptions{Addresses: redistest.StartCluster(t, 3)})
		}},
	}
}

func openRedis(t testing.TB, addr string, opts Options) *Redis {
	t.Helper()
	return openRedisWith(t, RedisOptions{Addresses: []string{addr}}, opts)
}

func openRedisWith(t testing.TB, ro RedisOptions, opts Options) *Redis {
	t.Helper()
	if ro.KeyPrefix == "" {
		ro.KeyPrefix = "test:"
	}
	ro.LockTTL = time.Second
	r, err := OpenRedis(ro, opts, promslog.NewNopLogger())
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

func TestStoreConformance(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			replicas := b.start(t)
			for _, c := range []struct {
				name string
				test func(*testing.T, replicasFunc)
			}{
				{"records", testRecords},
				{"chains", testChains},
				{"get", testGet},
				{"fenced commit", testFencedCommit},
				{"expiry", testExpiry},
				{"attempts", testAttempts},
				{"lock contention", testLockContention},
				{"lock per key", testLockPerKey},
				{"due order and limit", testDueOrder},
				{"due claim", testDueClaim},
				{"due claimed once", testDueClaimedOnce},
				{"census", testCensus},
				{"open incidents", testOpenIncidents},
			} {
				t.Run(c.name, func(t *testing.T) { c.test(t, replicas) })
			}
		})
	}
}

// now is the wall clock as a store gives it back: without a monotonic
// reading, in UTC, to the millisecond (the Redis due set's resolution).
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// firing is a new open incident of chain rooted at root.
func firing(chain, root string, at time.Time) *incident.Incident {
	in := incident.New(chain, at)
	in.Root = root
	return in
}

// resolved is in closed by resolution at at.
func resolved(in *incident.Incident, resolution string, at time.Time) *incident.Incident {
	c := *in
	c.State, c.Resolution, c.Updated = incident.Resolved, resolution, at
	return &c
}

// commitLocked commits w as the receiver does: holding the chain's lock.
func commitLocked(t *testing.T, s Store, w Write) {
	t.Helper()
	unlock, err := s.Lock(context.Background(), w.Incident.Chain)
	require.NoError(t, err)
	defer unlock()
	require.NoError(t, s.Commit(context.Background(), w))
}

// deliver commits in as delivered by notification n.
func deliver(t *testing.T, s Store, in *incident.Incident, n string) {
	t.Helper()
	commitLocked(t, s, Write{Incident: in, Notification: n, At: in.Updated})
}

func load(t *testing.T, s Store, chain, notification string) Loaded {
	t.Helper()
	l, err := s.Load(context.Background(), chain, notification)
	require.NoError(t, err)
	return l
}

func chains(t *testing.T, s Store) int {
	t.Helper()
	n, err := s.Chains(context.Background())
	require.NoError(t, err)
	return n
}

// eventually polls cond on the test goroutine, where cond may use require,
// until it holds or within is up.
func eventually(t *testing.T, within time.Duration, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A chain is seen by every replica, replies keep its incident, and a
// resolved notification closes it while staying remembered as delivered.
func testChains(t *testing.T, replicas replicasFunc) {
	a, other := replicas(t, opts)
	at := now()
	require.Equal(t, Loaded{}, load(t, a, "chain", "n1"))

	in := firing("chain", "om_root", at)
	deliver(t, a, in, "n1")
	require.Equal(t, Loaded{Incident: in, Delivered: true}, load(t, other, "chain", "n1"))
	require.Equal(t, Loaded{Incident: in}, load(t, other, "chain", "n2"))
	require.Equal(t, Loaded{}, load(t, other, "another", "n9"), "chains are apart")
	require.Equal(t, 1, chains(t, other))

	closed := resolved(in, "r1", at)
	deliver(t, other, closed, "n2")
	require.Equal(t, Loaded{Closed: closed, Delivered: true}, load(t, a, "chain", "n2"))
	require.Equal(t, Loaded{Closed: closed}, load(t, a, "chain", "n3"), "a closed incident is remembered for late notifications")
	require.Equal(t, 0, chains(t, a), "a closed incident is not counted")

	next := firing("chain", "om_new", at)
	deliver(t, a, next, "n3")
	require.Equal(t, Loaded{Incident: next}, load(t, other, "chain", "n4"), "the next firing starts a new incident, the closed one forgotten")
	_, err := other.Get(context.Background(), closed.ID)
	require.ErrorIs(t, err, ErrNotFound, "a firing replaces the closed incident")
	require.Equal(t, 1, chains(t, a))

	again := resolved(next, "r2", at)
	deliver(t, other, again, "n5")
	require.Equal(t, Loaded{Closed: again}, load(t, a, "chain", "n6"), "a second closure replaces the first")
}

// Dedupe keys last the dedupe window and incidents their TTL, on the real
// clock: Redis expires keys itself.
func testExpiry(t *testing.T, replicas replicasFunc) {
	short := Options{ChainTTL: 3 * time.Second, DedupeWindow: 300 * time.Millisecond}
	s, _ := replicas(t, short)
	in := firing("c", "om_1", now())
	deliver(t, s, in, "n")
	require.Equal(t, Loaded{Incident: in, Delivered: true}, load(t, s, "c", "n"))

	eventually(t, 2*time.Second, func() bool { return !load(t, s, "c", "n").Delivered },
		"past the dedupe window the notification may be sent again")
	require.Equal(t, in, load(t, s, "c", "n").Incident, "the incident outlives the dedupe key")
	eventually(t, 5*time.Second, func() bool { return load(t, s, "c", "n").Incident == nil },
		"past the chain TTL a new incident starts")

	closed := resolved(firing("c", "om_2", now()), "res", now())
	deliver(t, s, closed, "r")
	require.Equal(t, closed, load(t, s, "c", "n").Closed)
	eventually(t, 2*time.Second, func() bool { return load(t, s, "c", "n").Closed == nil },
		"a closed incident lasts the dedupe window")
	_, err := s.Get(context.Background(), closed.ID)
	require.ErrorIs(t, err, ErrNotFound)
}

// An attempt's key is kept until the notification is committed, and no
// longer than Feishu's uuid window.
func testAttempts(t *testing.T, replicas replicasFunc) {
	ctx := context.Background()
	a, other := replicas(t, opts)
	require.NoError(t, a.Begin(ctx, "c", "n", "uuid-1", time.Now()))
	require.Equal(t, Loaded{Attempt: "uuid-1"}, load(t, other, "c", "n"), "a retry at the other replica reuses the key")

	in := firing("c", "om_1", now())
	deliver(t, other, in, "n")
	require.Equal(t, Loaded{Incident: in, Delivered: true}, load(t, a, "c", "n"), "a delivered notification has no attempt left")

	require.NoError(t, a.Begin(ctx, "c", "late", "uuid-2", time.Now().Add(-AttemptTTL+time.Second)))
	require.Equal(t, "uuid-2", load(t, a, "c", "late").Attempt)
	eventually(t, 3*time.Second, func() bool { return load(t, a, "c", "late").Attempt == "" },
		"past Feishu's uuid window the key is no use")
}

// Holders of one key, spread over both replicas, are never inside together.
// Each holder stays inside until the next contender is on its way to Lock.
func testLockContention(t *testing.T, replicas replicasFunc) {
	a, other := replicas(t, opts)
	const n = 20
	var inside, most, entered, left atomic.Int32
	left.Store(n)
	coming := make(chan struct{}) // a contender is about to call Lock
	var wg sync.WaitGroup
	for i := range n {
		s := a
		if i%2 == 1 {
			s = other
		}
		wg.Go(func() {
			coming <- struct{}{}
			// Whoever leaves lets the next contender come, even on error.
			next := func() {
				if left.Add(-1) > 0 {
					<-coming
				}
			}
			unlock, err := s.Lock(context.Background(), "group")
			if !assertNoError(t, err) {
				next()
				return
			}
			entered.Add(1)
			in := inside.Add(1)
			for {
				m := most.Load()
				if in <= m || most.CompareAndSwap(m, in) {
					break
				}
			}
			next()
			inside.Add(-1)
			unlock()
			unlock() // a second call is harmless
		})
	}
	<-coming // the first contender goes
	wg.Wait()
	require.EqualValues(t, n, entered.Load())
	require.EqualValues(t, 1, most.Load())
}

// assertNoError reports err without stopping: it runs on other goroutines.
func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Error(err)
		return false
	}
	return true
}

// Other keys do not wait, and a waiter gives up when its context ends.
func testLockPerKey(t *testing.T, replicas replicasFunc) {
	a, other := replicas(t, opts)
	unlock, err := a.Lock(context.Background(), "a")
	require.NoError(t, err)
	defer unlock()
	unlockB, err := other.Lock(context.Background(), "b")
	require.NoError(t, err)
	unlockB()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = other.Lock(ctx, "a")
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
