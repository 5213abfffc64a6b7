package state

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/internal/redistest"
)

// backend opens stores for the conformance suite. replicas returns two
// handles on one state: two processes sharing a Redis, or the one process
// that may use a file.
type backend struct {
	name     string
	replicas func(t testing.TB, opts Options) (Store, Store)
}

func backends() []backend {
	return []backend{
		{"file", func(t testing.TB, opts Options) (Store, Store) {
			f, err := OpenFile(filepath.Join(t.TempDir(), "state.db"), opts, promslog.NewNopLogger())
			require.NoError(t, err)
			t.Cleanup(func() { f.Close() })
			return f, f
		}},
		{"redis", func(t testing.TB, opts Options) (Store, Store) {
			srv := redistest.Start(t)
			return openRedis(t, srv.Addr, opts), openRedis(t, srv.Addr, opts)
		}},
		// Through a Sentinel: the client asks it for the master.
		{"redis-sentinel", func(t testing.TB, opts Options) (Store, Store) {
			sentinel := redistest.StartSentinel(t, redistest.Start(t))
			ro := RedisOptions{Addresses: []string{sentinel.Addr}, MasterName: "mymaster"}
			return openRedisWith(t, ro, opts), openRedisWith(t, ro, opts)
		}},
		// On a Cluster of three masters: a chain's keys must share a slot
		// for Commit's script, or Redis refuses it (CROSSSLOT).
		{"redis-cluster", func(t testing.TB, opts Options) (Store, Store) {
			ro := RedisOptions{Addresses: redistest.StartCluster(t, 3)}
			return openRedisWith(t, ro, opts), openRedisWith(t, ro, opts)
		}},
	}
}

func openRedis(t testing.TB, addr string, opts Options) *Redis {
	t.Helper()
	return openRedisWith(t, RedisOptions{Addresses: []string{addr}}, opts)
}

func openRedisWith(t testing.TB, ro RedisOptions, opts Options) *Redis {
	t.Helper()
	ro.KeyPrefix, ro.LockTTL = "test:", time.Second
	r, err := OpenRedis(ro, opts, promslog.NewNopLogger())
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

// commitLocked commits d as the receiver does: holding the chain's lock.
func commitLocked(t *testing.T, s Store, d Delivery) {
	t.Helper()
	unlock, err := s.Lock(context.Background(), d.Chain)
	require.NoError(t, err)
	defer unlock()
	require.NoError(t, s.Commit(context.Background(), d))
}

func load(t *testing.T, s Store, chain, notification string) Record {
	t.Helper()
	rec, err := s.Load(context.Background(), chain, notification)
	require.NoError(t, err)
	return rec
}

func chains(t *testing.T, s Store) int {
	t.Helper()
	n, err := s.Chains(context.Background())
	require.NoError(t, err)
	return n
}

func TestStoreConformance(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Run("chains", func(t *testing.T) { testChains(t, b) })
			t.Run("expiry", func(t *testing.T) { testExpiry(t, b) })
			t.Run("attempts", func(t *testing.T) { testAttempts(t, b) })
			t.Run("lock contention", func(t *testing.T) { testLockContention(t, b) })
			t.Run("lock per key", func(t *testing.T) { testLockPerKey(t, b) })
		})
	}
}

// A chain is seen by every replica, replies keep its root, and a resolved
// notification closes it while staying remembered as delivered.
func testChains(t *testing.T, b backend) {
	a, other := b.replicas(t, opts)
	now := time.Now()
	require.Equal(t, Record{}, load(t, a, "chain", "n1"))

	commitLocked(t, a, Delivery{Chain: "chain", Notification: "n1", Root: "om_root", At: now})
	require.Equal(t, Record{Root: "om_root", Delivered: true}, load(t, other, "chain", "n1"))
	require.Equal(t, Record{Root: "om_root"}, load(t, other, "chain", "n2"))
	require.Equal(t, Record{}, load(t, other, "another", "n9"), "chains are apart")
	require.Equal(t, 1, chains(t, other))

	commitLocked(t, other, Delivery{Chain: "chain", Notification: "n2", Root: "om_root", Close: true, Resolution: "r1", At: now})
	closed := Closure{Root: "om_root", Resolution: "r1"}
	require.Equal(t, Record{Closed: closed, Delivered: true}, load(t, a, "chain", "n2"))
	require.Equal(t, Record{Closed: closed}, load(t, a, "chain", "n3"), "a closed chain is remembered for late notifications")
	require.Equal(t, 0, chains(t, a), "a closed chain is not counted")

	commitLocked(t, a, Delivery{Chain: "chain", Notification: "n3", Root: "om_new", At: now})
	require.Equal(t, Record{Root: "om_new"}, load(t, other, "chain", "n4"), "the next firing starts a new chain, the closure forgotten")
	require.Equal(t, 1, chains(t, a))

	commitLocked(t, other, Delivery{Chain: "chain", Notification: "n5", Root: "om_new", Close: true, Resolution: "r2", At: now})
	require.Equal(t, Record{Closed: Closure{Root: "om_new", Resolution: "r2"}}, load(t, a, "chain", "n6"))
}

// Dedupe keys last the dedupe window and chains their TTL, on the real clock.
func testExpiry(t *testing.T, b backend) {
	short := Options{ChainTTL: 3 * time.Second, DedupeWindow: 300 * time.Millisecond}
	s, _ := b.replicas(t, short)
	commitLocked(t, s, Delivery{Chain: "c", Notification: "n", Root: "om_1", At: time.Now()})
	require.Equal(t, Record{Root: "om_1", Delivered: true}, load(t, s, "c", "n"))

	require.Eventually(t, func() bool { return !load(t, s, "c", "n").Delivered }, 2*time.Second, 20*time.Millisecond,
		"past the dedupe window the notification may be sent again")
	require.Equal(t, "om_1", load(t, s, "c", "n").Root, "the chain outlives the dedupe key")
	require.Eventually(t, func() bool { return load(t, s, "c", "n").Root == "" }, 5*time.Second, 20*time.Millisecond,
		"past the chain TTL a new chain starts")

	commitLocked(t, s, Delivery{Chain: "c", Notification: "r", Root: "om_2", Close: true, Resolution: "res", At: time.Now()})
	require.Equal(t, "om_2", load(t, s, "c", "n").Closed.Root)
	require.Eventually(t, func() bool { return load(t, s, "c", "n").Closed == Closure{} }, 2*time.Second, 20*time.Millisecond,
		"a closure lasts the dedupe window")
}

// An attempt's key is kept until the notification is committed, and no
// longer than Feishu's uuid window.
func testAttempts(t *testing.T, b backend) {
	ctx := context.Background()
	a, other := b.replicas(t, opts)
	require.NoError(t, a.Begin(ctx, "c", "n", "uuid-1", time.Now()))
	require.Equal(t, Record{Attempt: "uuid-1"}, load(t, other, "c", "n"), "a retry at the other replica reuses the key")

	commitLocked(t, other, Delivery{Chain: "c", Notification: "n", Root: "om_1", At: time.Now()})
	require.Equal(t, Record{Root: "om_1", Delivered: true}, load(t, a, "c", "n"), "a delivered notification has no attempt left")

	require.NoError(t, a.Begin(ctx, "c", "late", "uuid-2", time.Now().Add(-AttemptTTL+time.Second)))
	require.Equal(t, "uuid-2", load(t, a, "c", "late").Attempt)
	require.Eventually(t, func() bool { return load(t, a, "c", "late").Attempt == "" }, 3*time.Second, 20*time.Millisecond,
		"past Feishu's uuid window the key is no use")
}

// Holders of one key, spread over both replicas, are never inside together.
func testLockContention(t *testing.T, b backend) {
	a, other := b.replicas(t, opts)
	var inside, most, entered atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		s := a
		if i%2 == 1 {
			s = other
		}
		wg.Go(func() {
			unlock, err := s.Lock(context.Background(), "group")
			if !assertNoError(t, err) {
				return
			}
			entered.Add(1)
			n := inside.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
			inside.Add(-1)
			unlock()
			unlock() // a second call is harmless
		})
	}
	wg.Wait()
	require.EqualValues(t, 20, entered.Load())
	require.EqualValues(t, 1, most.Load())
}

func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Error(err)
		return false
	}
	return true
}

// Other keys do not wait, and a waiter gives up when its context ends.
func testLockPerKey(t *testing.T, b backend) {
	a, other := b.replicas(t, opts)
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
