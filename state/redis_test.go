package state

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/internal/redistest"
)

// A replica that dies holding a group's lock keeps the group waiting no
// longer than the lock's TTL, and cannot record anything afterwards.
func TestRedisDeadHolderLockExpires(t *testing.T) {
	srv := redistest.Start(t)
	dead, alive := openRedis(t, srv.Addr, opts), openRedis(t, srv.Addr, opts)
	_, err := dead.Lock(context.Background(), "g")
	require.NoError(t, err)
	require.NoError(t, dead.Close()) // stops extending, as a crash would, and releases nothing

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	unlock, err := alive.Lock(ctx, "g")
	require.NoError(t, err, "the lock expires with its holder")
	defer unlock()
	t.Logf("taken over after %v (lock TTL 1s)", time.Since(start))
	require.Error(t, dead.Commit(context.Background(), Delivery{Chain: "g", Notification: "n", Root: "om_1", At: time.Now()}))
}

// A live holder keeps its lock past the TTL by extending it.
func TestRedisHeldLockIsExtended(t *testing.T) {
	srv := redistest.Start(t)
	a, b := openRedis(t, srv.Addr, opts), openRedis(t, srv.Addr, opts)
	// A TTL of 2 s leaves the extension (every 667 ms) over a second of
	// slack on a loaded machine.
	a.ttl = 2 * time.Second
	unlock, err := a.Lock(context.Background(), "g")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = b.Lock(ctx, "g")
	require.ErrorIs(t, err, context.DeadlineExceeded, "2.5 lock TTLs later the holder still has it")
	require.NoError(t, a.Commit(context.Background(), Delivery{Chain: "g", Notification: "n", Root: "om_1", At: time.Now()}))
	unlock()
}

// A holder whose lock passed to another replica (Redis away longer than the
// TTL, a long pause) must not overwrite the chain its successor rooted.
func TestRedisCommitRefusedAfterLockLost(t *testing.T) {
	srv := redistest.Start(t)
	slow, next := openRedis(t, srv.Addr, opts), openRedis(t, srv.Addr, opts)
	unlock, err := slow.Lock(context.Background(), "g")
	require.NoError(t, err)
	defer unlock()

	raw := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer raw.Close()
	require.NoError(t, raw.Del(context.Background(), slow.key("g", "lock")).Err())
	commitLocked(t, next, Delivery{Chain: "g", Notification: "n1", Root: "om_next", At: time.Now()})

	err = slow.Commit(context.Background(), Delivery{Chain: "g", Notification: "n2", Root: "om_slow", At: time.Now()})
	require.ErrorContains(t, err, "group lock expired")
	require.Equal(t, Record{Root: "om_next"}, load(t, next, "g", "n2"))
}

// With Redis away every operation fails fast, and the store works again by
// itself once Redis is back, with what it held before.
func TestRedisOutageAndRecovery(t *testing.T) {
	srv := redistest.Start(t)
	s := openRedis(t, srv.Addr, opts)
	commitLocked(t, s, Delivery{Chain: "g", Notification: "n1", Root: "om_1", At: time.Now()})

	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := s.Lock(ctx, "g")
	require.Error(t, err)
	require.NoError(t, ctx.Err(), "the lock fails rather than waiting for Redis")
	_, err = s.Load(ctx, "g", "n1")
	require.Error(t, err)
	require.Error(t, s.Ping(ctx))
	t.Logf("three failures took %v", time.Since(start))

	srv.Restart(t)
	require.Eventually(t, func() bool { return s.Ping(context.Background()) == nil }, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, Record{Root: "om_1", Delivered: true}, load(t, s, "g", "n1"))
	commitLocked(t, s, Delivery{Chain: "g", Notification: "n2", Root: "om_1", At: time.Now()})
}

// Services sharing one Redis under different prefixes do not see each
// other's state, and the count of open chains drops as chains expire.
func TestRedisPrefixAndCount(t *testing.T) {
	srv := redistest.Start(t)
	short := Options{ChainTTL: 1500 * time.Millisecond, DedupeWindow: time.Minute}
	a := openRedis(t, srv.Addr, short)
	b, err := OpenRedis(RedisOptions{Addresses: []string{srv.Addr}, KeyPrefix: "other:"}, short, a.logger)
	require.NoError(t, err)
	defer b.Close()

	commitLocked(t, a, Delivery{Chain: "g", Notification: "n", Root: "om_1", At: time.Now()})
	require.Equal(t, Record{}, load(t, b, "g", "n"))
	require.Equal(t, 1, chains(t, a))
	require.Equal(t, 0, chains(t, b))
	require.Eventually(t, func() bool { return chains(t, a) == 0 }, 5*time.Second, 20*time.Millisecond)
}

// The counting set is trimmed by commits too, so it stays small even if
// nobody reads the gauge.
func TestRedisCountingSetTrimmedOnCommit(t *testing.T) {
	srv := redistest.Start(t)
	s := openRedis(t, srv.Addr, Options{ChainTTL: 200 * time.Millisecond, DedupeWindow: time.Minute})
	commitLocked(t, s, Delivery{Chain: "old", Notification: "n1", Root: "om_1", At: time.Now()})
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer raw.Close()
	require.Eventually(t, func() bool {
		commitLocked(t, s, Delivery{Chain: "new", Notification: "n2", Root: "om_2", At: time.Now()})
		members, err := raw.ZRange(context.Background(), "test:chains", 0, -1).Result()
		require.NoError(t, err)
		return len(members) == 1 && members[0] == "new"
	}, 3*time.Second, 50*time.Millisecond)
}
