package ratelimit

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Whatever the order sends take their slots in, and whichever slots are
// given back, the slots kept in each limit are never closer than its
// spacing and never more than its count in any window; and each send's
// slots in its limits are at one time.
func TestLocalKeepsEveryLimit(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLocal(func() time.Time { return now })
	app := Limit{Key: "app", Spacing: 20 * time.Millisecond, PerWindow: 100, Window: 6 * time.Second}
	chats := []Limit{
		{Key: "a", Spacing: 200 * time.Millisecond},
		{Key: "b", Spacing: 200 * time.Millisecond},
		{Key: "c", Spacing: 50 * time.Millisecond},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	kept := map[string][]time.Time{}
	type taken struct {
		limits []Limit
		slot   Slot
		at     time.Time
	}
	var held []taken
	for range 1000 {
		now = now.Add(time.Duration(rng.IntN(15)) * time.Millisecond)
		limits := []Limit{app}
		if n := rng.IntN(len(chats) + 1); n < len(chats) {
			limits = append(limits, chats[n])
		}
		slot, ok, err := l.Take(context.Background(), limits, time.Duration(rng.IntN(300))*time.Millisecond, 10*time.Second)
		require.NoError(t, err)
		if !ok {
			continue
		}
		require.GreaterOrEqual(t, slot.In, time.Duration(0))
		held = append(held, taken{limits, slot, now.Add(slot.In)})
		if rng.IntN(5) == 0 { // given back: a send paused meanwhile
			i := rng.IntN(len(held))
			require.NoError(t, l.Give(context.Background(), held[i].limits, held[i].slot))
			held = slices.Delete(held, i, i+1)
		}
	}
	for _, h := range held {
		for _, lim := range h.limits {
			kept[lim.Key] = append(kept[lim.Key], h.at)
		}
	}
	for _, lim := range append(chats, app) {
		at := kept[lim.Key]
		slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
		require.NotEmpty(t, at, lim.Key)
		for i := 1; i < len(at); i++ {
			require.GreaterOrEqual(t, at[i].Sub(at[i-1]), lim.Spacing, "%s: slots %d and %d", lim.Key, i-1, i)
		}
		if lim.PerWindow > 0 {
			for i := lim.PerWindow; i < len(at); i++ {
				require.Greater(t, at[i].Sub(at[i-lim.PerWindow]), lim.Window, "%s: %d slots in a window", lim.Key, lim.PerWindow+1)
			}
		}
	}
	require.Greater(t, len(kept["app"]), 200, "the window's count binds, not the test")
}

// A slot past the deadline takes nothing; a burst fills a window's count
// at once and the next waits the window and its margin.
func TestLocalWindowAndDeadline(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLocal(func() time.Time { return now })
	minute := Limit{Key: "app", PerWindow: 3, Window: time.Minute}
	for range 3 {
		slot, ok, err := l.Take(context.Background(), []Limit{minute}, 0, time.Second)
		require.NoError(t, err)
		require.True(t, ok)
		require.Zero(t, slot.In)
	}
	_, ok, err := l.Take(context.Background(), []Limit{minute}, 0, time.Second)
	require.NoError(t, err)
	require.False(t, ok)
	slot, ok, err := l.Take(context.Background(), []Limit{minute}, 0, 2*time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 62*time.Second, slot.In, "62 cells of a second: the minute, the guard, and the cell the first were in")
}
