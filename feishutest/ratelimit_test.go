package feishutest

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The ways of counting "5 per second" differ on these sequences of sends
// (offsets from the start of a calendar second); each row says which sends
// each way refuses.
func TestCountings(t *testing.T) {
	ms := func(offsets ...int) []time.Duration {
		out := make([]time.Duration, len(offsets))
		for i, o := range offsets {
			out[i] = time.Duration(o) * time.Millisecond
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		sends   []time.Duration
		refused map[Counting][]int // indexes of the refused sends
	}{
		{
			name:  "a burst of six",
			sends: ms(0, 0, 0, 0, 0, 0),
			refused: map[Counting][]int{
				SlidingWindow: {5}, TokenBucket: {5}, FixedWindow: {5},
			},
		},
		{
			name:    "an even pace at the limit",
			sends:   ms(0, 200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000),
			refused: map[Counting][]int{},
		},
		{
			// The second send is 10 ms late: the sixth is then the fifth
			// in the second before it.
			name:  "an even pace with one send late",
			sends: ms(0, 210, 400, 600, 800, 1000, 1200),
			refused: map[Counting][]int{
				SlidingWindow: {6},
			},
		},
		{
			name:  "two bursts across a calendar second",
			sends: ms(900, 900, 900, 900, 900, 1000, 1000, 1000, 1000, 1000),
			refused: map[Counting][]int{
				SlidingWindow: {5, 6, 7, 8, 9}, TokenBucket: {5, 6, 7, 8, 9},
			},
		},
		{
			name:  "a burst, then one after a fifth of a second",
			sends: ms(0, 0, 0, 0, 0, 200),
			refused: map[Counting][]int{
				SlidingWindow: {5}, FixedWindow: {5},
			},
		},
	} {
		for _, mode := range Countings {
			t.Run(tc.name+"/"+mode.String(), func(t *testing.T) {
				s := &Server{counting: mode}
				c := s.newCounter(5, time.Second)
				start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
				var refused []int
				for i, d := range tc.sends {
					if ok, wait := c.allow(start.Add(d)); !ok {
						require.Positive(t, wait)
						refused = append(refused, i)
					}
				}
				require.Equal(t, fmt.Sprint(tc.refused[mode]), fmt.Sprint(refused))
			})
		}
	}
}

// How long a refused send is told to wait, by way of counting: until the
// oldest send leaves the window, until a token is back, until the next
// calendar period.
func TestCountingWaits(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for mode, want := range map[Counting]time.Duration{
		SlidingWindow: time.Minute,
		TokenBucket:   600 * time.Millisecond,
		FixedWindow:   50 * time.Second,
	} {
		s := &Server{counting: mode}
		c := s.newCounter(100, time.Minute)
		for range 100 {
			ok, _ := c.allow(start.Add(10 * time.Second))
			require.True(t, ok, mode)
		}
		ok, wait := c.allow(start.Add(10 * time.Second))
		require.False(t, ok, mode)
		require.Equal(t, want, wait, mode)
	}
}

// The app's per-minute limit is the gateway's too, with its figures in
// the headers.
func TestAppMinuteRateLimit(t *testing.T) {
	for _, mode := range Countings {
		t.Run(mode.String(), func(t *testing.T) {
			s, clock := newFrozen(t)
			clock.now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			s.SetCounting(mode)
			require.Equal(t, mode, s.Counting())
			s.SetAppRateLimit(50)
			s.SetAppMinuteRateLimit(20)
			tok := token(t, s)
			for i := range 20 {
				code, r := call(t, s, createPath, tok, imBody(fmt.Sprintf("oc_%d", i), "text", map[string]string{"text": "x"}, ""))
				require.Equal(t, http.StatusOK, code, "send %d: %d", i, r.Code)
			}
			code, r := call(t, s, createPath, tok, imBody("oc_x", "text", map[string]string{"text": "x"}, ""))
			require.Equal(t, http.StatusTooManyRequests, code)
			require.Equal(t, 99991400, r.Code)
			require.Equal(t, 1, s.RefusedByApp())
			clock.advance(time.Minute)
			_, r = call(t, s, createPath, tok, imBody("oc_x", "text", map[string]string{"text": "x"}, ""))
			require.Zero(t, r.Code, "a minute later")
		})
	}
}
