package state

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/internal/redistest"
	"github.com/alertmanager-feishu/alertmanager-feishu/ratelimit"
)

// Two replicas on one Redis share one schedule: their slots in a limit
// are spaced as one process's would be, a send's slots in two limits are
// taken at once, and the slots they take are never closer than the
// spacing whichever replica took them.
func TestRedisRateLimitsShareASchedule(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ra := openRedis(t, srv.Addr, opts)
	a, b := ra.RateLimits(), openRedis(t, srv.Addr, opts).RateLimits()
	ctx := context.Background()
	// Spacings of seconds, as Take never waits: a test stalled for a
	// while on a loaded machine still finds its slots where they were.
	app := ratelimit.Limit{Key: "app", Spacing: 10 * time.Second}
	chat := ratelimit.Limit{Key: "chat_id oc_1", Spacing: 30 * time.Second}
	// at is when a slot is, on Redis's clock: its score in the schedule.
	at := func(l ratelimit.Limit, slot ratelimit.Slot) time.Duration {
		t.Helper()
		us, err := ra.client.ZScore(ctx, ra.prefix+"{rate}:s:"+l.Key, slot.Token).Result()
		require.NoError(t, err)
		return time.Duration(us) * time.Microsecond
	}
	take := func(s ratelimit.Shared, within time.Duration, limits ...ratelimit.Limit) (ratelimit.Slot, bool) {
		t.Helper()
		slot, ok, err := s.Take(ctx, limits, 0, within)
		require.NoError(t, err)
		return slot, ok
	}

	var slots []ratelimit.Slot
	for i := range 6 {
		s := a
		if i%2 == 1 {
			s = b
		}
		slot, ok := take(s, time.Hour, app)
		require.True(t, ok)
		slots = append(slots, slot)
	}
	for i := 1; i < len(slots); i++ {
		require.Equal(t, 10*time.Second, at(app, slots[i])-at(app, slots[i-1]), "slot %d", i)
	}
	require.Equal(t, 2, a.Replicas())

	// A send to the chat takes the app's next slot and the chat's; the
	// next send to the chat waits for the chat, and the app's slots
	// between stay free for others.
	first, _ := take(a, time.Hour, app, chat)
	require.Equal(t, 10*time.Second, at(app, first)-at(app, slots[5]))
	second, _ := take(b, time.Hour, app, chat)
	require.Equal(t, 30*time.Second, at(chat, second)-at(chat, first), "the chat's spacing")
	other, _ := take(a, time.Hour, app)
	require.Equal(t, 10*time.Second, at(app, other)-at(app, first), "the app's next slot, between the chat's two")
	third, _ := take(a, time.Hour, app, chat)
	require.Equal(t, 30*time.Second, at(chat, third)-at(chat, second))

	// A slot given back is free for the next; one past the deadline is
	// not taken at all.
	secondAt := at(chat, second)
	require.NoError(t, b.Give(ctx, []ratelimit.Limit{app, chat}, second))
	_, err := ra.client.ZScore(ctx, ra.prefix+"{rate}:s:chat_id oc_1", second.Token).Result()
	require.Error(t, err, "gone from the chat's schedule")
	given, ok, err := a.Take(ctx, []ratelimit.Limit{chat}, first.In+25*time.Second, time.Hour)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, secondAt, at(chat, given), "the second's slot, given back")
	_, ok = take(a, 10*time.Second, app, chat)
	require.False(t, ok, "the chat's next slot is past the deadline")
	late, _ := take(b, time.Hour, app, chat)
	require.Equal(t, 30*time.Second, at(chat, late)-at(chat, third), "the refused one took nothing")
}

// A per-window count holds across replicas: a window's worth goes at
// once, the next waits for the window and its margin.
func TestRedisRateLimitsCountAWindow(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a := openRedis(t, srv.Addr, opts).RateLimits()
	b := openRedis(t, srv.Addr, opts).RateLimits()
	ctx := context.Background()
	minute := ratelimit.Limit{Key: "app", PerWindow: 4, Window: 6 * time.Second}
	rc := openRedis(t, srv.Addr, opts)
	at := func(slot ratelimit.Slot) time.Duration {
		t.Helper()
		us, err := rc.client.ZScore(ctx, rc.prefix+"{rate}:s:app", slot.Token).Result()
		require.NoError(t, err)
		return time.Duration(us) * time.Microsecond
	}
	var firstSlot ratelimit.Slot
	for i := range 4 {
		s := a
		if i%2 == 1 {
			s = b
		}
		slot, ok, err := s.Take(ctx, []ratelimit.Limit{minute}, 0, time.Minute)
		require.NoError(t, err)
		require.True(t, ok)
		require.Less(t, slot.In, 50*time.Millisecond, "slot %d at once", i)
		if i == 0 {
			firstSlot = slot
		}
	}
	slot, ok, err := a.Take(ctx, []ratelimit.Limit{minute}, 0, time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	// The window touches 62 cells of 100 ms: the fifth goes 6.1 to 6.2 s
	// after the first, as the first's cell is aligned. Measured between
	// the slots' own times, on Redis's clock, so that the time the test
	// took between its calls does not count.
	gap := at(slot) - at(firstSlot)
	require.GreaterOrEqual(t, gap, 6*time.Second)
	require.LessOrEqual(t, gap, 6200*time.Millisecond)
}

// Limits that constrain nothing cost Redis nothing.
func TestRedisRateLimitsUnlimited(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := openRedis(t, srv.Addr, opts).RateLimits()
	slot, ok, err := s.Take(context.Background(), []ratelimit.Limit{{Key: "app"}}, 300*time.Millisecond, time.Second)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 300*time.Millisecond, slot.In)
	srv.Stop()
	_, _, err = s.Take(context.Background(), []ratelimit.Limit{{Key: "app", Spacing: time.Second}}, 0, time.Second)
	require.ErrorContains(t, err, "redis rate limits")
}

// A schedule's key lives past its furthest slot: a take nearer now does
// not shorten the life of a key that holds a later one, or Redis would
// forget that slot and hand it out again.
func TestRedisRateLimitsKeepFarSlots(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rs := openRedis(t, srv.Addr, opts)
	s := rs.RateLimits()
	ctx := context.Background()
	chat := ratelimit.Limit{Key: "chat_id oc_far", Spacing: time.Second}
	_, ok, err := s.Take(ctx, []ratelimit.Limit{chat}, 10*time.Minute, time.Hour)
	require.NoError(t, err)
	require.True(t, ok)
	_, ok, err = s.Take(ctx, []ratelimit.Limit{chat}, 0, time.Hour)
	require.NoError(t, err)
	require.True(t, ok)
	ttl, err := rs.client.PTTL(ctx, rs.prefix+"{rate}:s:chat_id oc_far").Result()
	require.NoError(t, err)
	require.Greater(t, ttl, 10*time.Minute, "the far slot's key outlives it")
}
