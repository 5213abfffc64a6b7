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
	t.Parallel()
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
	in := firing("g", "om_1", now())
	require.ErrorIs(t, dead.Commit(context.Background(), Write{Incident: in, Notification: "n", At: in.Updated}), ErrLockLost)
}

// A live holder keeps its lock past the TTL by extending it.
func TestRedisHeldLockIsExtended(t *testing.T) {
	t.Parallel()
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
	in := firing("g", "om_1", now())
	require.NoError(t, a.Commit(context.Background(), Write{Incident: in, Notification: "n", At: in.Updated}))
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
	theirs := firing("g", "om_next", now())
	deliver(t, next, theirs, "n1")

	err = slow.Commit(context.Background(), Write{Incident: firing("g", "om_slow", now()), Notification: "n2", At: time.Now()})
	require.ErrorIs(t, err, ErrLockLost)
	require.ErrorContains(t, err, "expired or taken by another replica")
	require.Equal(t, Loaded{Incident: theirs}, load(t, next, "g", "n2"))
}

// With Redis away every operation fails fast, and the store works again by
// itself once Redis is back, with what it held before.
func TestRedisOutageAndRecovery(t *testing.T) {
	srv := redistest.Start(t)
	s := openRedis(t, srv.Addr, opts)
	in := firing("g", "om_1", now())
	deliver(t, s, in, "n1")

	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := s.Lock(ctx, "g")
	require.Error(t, err)
	require.NoError(t, ctx.Err(), "the lock fails rather than waiting for Redis")
	_, err = s.Load(ctx, "g", "n1")
	require.Error(t, err)
	_, err = s.Get(ctx, in.ID)
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrNotFound, "an outage is not a missing incident")
	require.Error(t, s.Schedule(ctx, in.ID, time.Now()))
	_, err = s.Due(ctx, time.Now(), 10)
	require.Error(t, err)
	require.Error(t, s.Ping(ctx))
	t.Logf("six failures took %v", time.Since(start))

	srv.Restart(t)
	require.Eventually(t, func() bool { return s.Ping(context.Background()) == nil }, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, Loaded{Incident: in, Delivered: true}, load(t, s, "g", "n1"))
	deliver(t, s, in, "n2")
}

// Services sharing one Redis under different prefixes do not see each
// other's state, and the count of open chains drops as chains expire.
func TestRedisPrefixAndCount(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	short := Options{ChainTTL: 1500 * time.Millisecond, DedupeWindow: time.Minute}
	a := openRedis(t, srv.Addr, short)
	b, err := OpenRedis(RedisOptions{Addresses: []string{srv.Addr}, KeyPrefix: "other:"}, short, a.logger)
	require.NoError(t, err)
	defer b.Close()

	in := firing("g", "om_1", now())
	deliver(t, a, in, "n")
	require.NoError(t, a.Schedule(context.Background(), in.ID, time.Now()))
	require.Equal(t, Loaded{}, load(t, b, "g", "n"))
	require.Empty(t, due(t, b, time.Now(), 10))
	require.Equal(t, 1, chains(t, a))
	require.Equal(t, 0, chains(t, b))
	eventually(t, 5*time.Second, func() bool { return chains(t, a) == 0 }, "the count drops as chains expire")
}

// The counting set is trimmed by commits too, so it stays small even if
// nobody reads the gauge.
func TestRedisCountingSetTrimmedOnCommit(t *testing.T) {
	srv := redistest.Start(t)
	s := openRedis(t, srv.Addr, Options{ChainTTL: 200 * time.Millisecond, DedupeWindow: time.Minute})
	deliver(t, s, firing("old", "om_1", now()), "n1")
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer raw.Close()
	eventually(t, 3*time.Second, func() bool {
		deliver(t, s, firing("new", "om_2", now()), "n2")
		members, err := raw.ZRange(context.Background(), "test:chains", 0, -1).Result()
		require.NoError(t, err)
		return len(members) == 1 && members[0] == "new"
	}, "the expired chain is trimmed")
}
