package feishu_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
)

func newPacer(t *testing.T, l config.RateLimit) (*feishu.Pacer, *feishu.Metrics) {
	t.Helper()
	m := feishu.NewMetrics(prometheus.NewRegistry())
	return feishu.NewPacer(l, m), m
}

// chat is the chat oc_<id>.
func chat(id string) feishu.Target { return feishu.Target{Kind: config.TargetChatID, ID: "oc_" + id} }

// gaps waits for n slots to target one after the other and returns the
// time between each and the one before.
func gaps(t *testing.T, p *feishu.Pacer, target feishu.Target, n int) []time.Duration {
	t.Helper()
	out := make([]time.Duration, n)
	last := time.Now()
	for i := range n {
		require.NoError(t, p.Wait(context.Background(), target))
		out[i] = time.Since(last)
		last = time.Now()
	}
	return out
}

// repeat is n times d.
func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

// The sends of a per-second limit go evenly, a twentieth slower than the
// limit: 5 sends take 1.05 s, so that one a little late does not share a
// second with the fifth after it.
func TestPacerSpacesSendsToOneTarget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, m := newPacer(t, config.RateLimit{PerChat: 10})
		require.Equal(t, append([]time.Duration{0}, repeat(105*time.Millisecond, 5)...), gaps(t, p, chat("1"), 6))
		count, sum := histogram(t, m.RateLimitWait)
		require.Equal(t, uint64(6), count)
		require.InDelta(t, 0.525, sum, 1e-6, "five of them waited 105 ms")
	})
}

// A slow start: the sends of a limit's first window after idleFor
// without one count for a second and a quarter, as if each could arrive
// 250 ms late, which a burst's first sends can. The sixth send to a chat
// at 5/s goes 1.275 s after the first instead of 1.05 s; the sends after
// keep their spacing, and from the seventh window on count for a second
// and half the guard again. A stream with shorter gaps than idleFor
// starts none.
func TestPacerSlowStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := newPacer(t, config.RateLimit{PerChat: 5})
		c := chat("1")
		const idle = 2 * time.Second // the pacer's idleFor
		spaced := 210 * time.Millisecond
		first := append(append([]time.Duration{0}, repeat(spaced, 4)...), 1275*time.Millisecond-4*spaced)
		require.Equal(t, append(first, spaced, spaced, spaced, spaced), gaps(t, p, c, 10),
			"the sixth send waits for the first to stop counting, 1.275 s after it")
		require.Equal(t, []time.Duration{1025*time.Millisecond - 4*spaced, spaced}, gaps(t, p, c, 2),
			"the sixth and later count for a second and half the guard")

		time.Sleep(idle - time.Millisecond)
		require.Equal(t, append([]time.Duration{0}, repeat(spaced, 6)...), gaps(t, p, c, 7), "not idle for long enough: the full rate")

		time.Sleep(idle)
		require.Equal(t, first, gaps(t, p, c, 6), "idle: a slow start again")
	})
}

func TestPacerAppLimitBindsAcrossTargets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := newPacer(t, config.RateLimit{PerChat: 100, PerApp: 10})
		ctx := context.Background()
		start := time.Now()
		for i := range 6 {
			require.NoError(t, p.Wait(ctx, chat(string(rune('a'+i)))))
		}
		require.Equal(t, 525*time.Millisecond, time.Since(start), "6 chats, 5 gaps of the app's 105 ms")
	})
}

// A send held back by its chat takes the app's slot when it goes, and
// leaves the app's earlier slots to sends to other chats.
func TestPacerBusyChatDoesNotHoldUpOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := newPacer(t, config.RateLimit{PerChat: 1, PerApp: 10})
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() { _ = p.Wait(context.Background(), chat("busy")) })
		}
		synctest.Wait() // they all have their slots, up to 4.2 s away
		start := time.Now()
		require.NoError(t, p.Wait(context.Background(), chat("other")))
		require.Equal(t, 105*time.Millisecond, time.Since(start), "the next of the app's slots, after the busy chat's first")
		wg.Wait()
	})
}

// A slot past the deadline is refused at once, and the refused request
// takes no slot from those behind it.
func TestPacerRefusesASlotPastTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := newPacer(t, config.RateLimit{PerChat: 2})
		require.NoError(t, p.Wait(context.Background(), chat("1")))
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err := p.Wait(ctx, chat("1"))
		var se *feishu.SlotError
		require.ErrorAs(t, err, &se)
		require.Equal(t, "feishu rate limit: no send slot for chat_id oc_1 before the delivery deadline", err.Error())
		require.NoError(t, ctx.Err(), "refused without waiting for the deadline")

		start := time.Now()
		ctx, cancel = context.WithTimeout(context.Background(), 700*time.Millisecond)
		defer cancel()
		require.NoError(t, p.Wait(ctx, chat("1")), "the next slot, 525 ms after the first, is still free")
		require.Equal(t, 525*time.Millisecond, time.Since(start))
	})
}

func TestPacerSlowPausesTheBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := newPacer(t, config.RateLimit{})
		require.Equal(t, 300*time.Millisecond, p.Slow(chat("1"), time.Now(), 300*time.Millisecond))
		start := time.Now()
		require.NoError(t, p.Wait(context.Background(), chat("2")))
		other := time.Since(start)
		require.NoError(t, p.Wait(context.Background(), chat("1")))
		require.Equal(t, 300*time.Millisecond, time.Since(start), "the chat waits out its pause")
		require.Zero(t, other, "another chat is not paused")

		require.Equal(t, 3*time.Second, p.Slow(feishu.Target{}, time.Now(), 3*time.Second), "Feishu's reset header is honoured")
		ctx, cancel := context.WithTimeout(context.Background(), 2900*time.Millisecond)
		defer cancel()
		var se *feishu.SlotError
		require.ErrorAs(t, p.Wait(ctx, chat("2")), &se, "an app pause holds every chat")
	})
}

// One refusal costs its window, a second, and a little rate: the guard
// doubles, 5 sends take 1.1 s, until it halves back 5 s later. Refusals
// of sends that went before the pause began are the same round.
func TestPacerSingleRefusalCostsItsWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := newPacer(t, config.RateLimit{PerChat: 5})
		spaced, wider := 210*time.Millisecond, 220*time.Millisecond
		require.Equal(t, []time.Duration{0, spaced, spaced}, gaps(t, p, chat("1"), 3))
		sent := time.Now()
		require.Equal(t, time.Second, p.Slow(chat("1"), sent, 0), "no reset header: the per-second window")
		time.Sleep(20 * time.Millisecond) // another send of the same burst is refused a little later
		require.Equal(t, time.Second, p.Slow(chat("1"), sent, 0), "the same round: its pause from its refusal")
		require.Equal(t, []time.Duration{time.Second, wider, wider, wider, wider}, gaps(t, p, chat("1"), 5),
			"the pause, then the guard doubled")
		time.Sleep(5 * time.Second)
		require.Equal(t, []time.Duration{0, spaced}, gaps(t, p, chat("1"), 2), "the guard back")

		// When the chat's last five sends are this process's, the window
		// clears a second and the guard after the first of them. The
		// chat was idle: these are a slow start's, and the first counts
		// until 1.3 s after it went (a second, half the doubled guard and
		// 250 ms).
		gaps(t, p, chat("1"), 3)
		require.Equal(t, spaced, p.Slow(chat("1"), time.Now(), 0), "1.05 s after the send 840 ms ago")
		require.Equal(t, []time.Duration{1300*time.Millisecond - 4*spaced, spaced}, gaps(t, p, chat("1"), 2))
	})
}

// Refusals that come right after the pause of the one before mean the
// limit is lower than configured: the rate halves with each, to a
// sixteenth, and doubles back every half second once they stop. The
// sends waiting take new slots as it does.
func TestPacerPersistentRefusalsSlowItAndItRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := newPacer(t, config.RateLimit{PerChat: 5})
		wider := 220 * time.Millisecond // the first refusal doubled the guard
		c := chat("1")
		require.Equal(t, time.Second, p.Slow(c, time.Now(), 0))
		time.Sleep(time.Second) // the pause ends; the next send is refused too
		require.Equal(t, time.Second, p.Slow(c, time.Now(), 0))
		// Half the rate, until half a second after the pause.
		require.Equal(t, []time.Duration{time.Second, 2 * wider, 2 * wider, wider}, gaps(t, p, c, 4))

		time.Sleep(10 * time.Second)
		require.Equal(t, time.Second, p.Slow(c, time.Now(), 0))
		for range 5 {
			time.Sleep(time.Second)
			require.Equal(t, time.Second, p.Slow(c, time.Now(), 0))
		}
		// A sixteenth: the second send's slot is 3.52 s after the first.
		// Half a second after the pause the rate doubles and the send
		// takes a new slot 1.76 s after the first; half a second later it
		// doubles again, and the slot, 0.88 s after, has come. The slots
		// after are near enough to keep; the rate is back to the
		// configured one (with the wider guard) 2.7 s after the pause.
		require.Equal(t, []time.Duration{time.Second, time.Second, 4 * wider, 2 * wider, 2 * wider, wider, wider},
			gaps(t, p, c, 7))
	})
}

// A limit with no rate to slow (0 in the configuration) waits longer
// pauses instead while the refusals persist.
func TestPacerPersistentRefusalsLengthenTheApplessPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := newPacer(t, config.RateLimit{})
		var pauses []time.Duration
		for range 5 {
			pauses = append(pauses, p.Slow(chat("1"), time.Now(), 0))
			require.NoError(t, p.Wait(context.Background(), chat("1")))
		}
		require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}, pauses)
	})
}

func TestPacerSetLimitsKeepsBuckets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := newPacer(t, config.RateLimit{})
		ctx := context.Background()
		require.NoError(t, p.Wait(ctx, chat("1")))
		p.SetLimits(config.RateLimit{PerChat: 5})
		start := time.Now()
		for range 3 {
			require.NoError(t, p.Wait(ctx, chat("1")))
		}
		require.Equal(t, 420*time.Millisecond, time.Since(start), "an existing bucket takes the new rate")
	})
}

// The per-minute limit lets a burst through at once, up to the minute's
// count, and holds the rest until a minute (and a cell, the margin) after
// the first.
func TestPacerMinuteLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := newPacer(t, config.RateLimit{PerAppMinute: 100})
		start := time.Now()
		for i := range 100 {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			require.NoError(t, p.Wait(ctx, chat(fmt.Sprint(i))), "send %d", i)
			cancel()
		}
		require.Zero(t, time.Since(start), "none of them waited")
		require.NoError(t, p.Wait(context.Background(), chat("x")))
		require.Equal(t, 62*time.Second, time.Since(start), "the 101st waits for the minute and its margin")
	})
}

// A custom bot has limits of its own: the app's do not hold it up, and
// its own do.
func TestPacerGivesABotItsOwnLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := newPacer(t, config.RateLimit{PerChat: 100, PerApp: 1, PerBot: 10, PerBotMinute: 600})
		bot := feishu.Target{Kind: config.TargetWebhook, ID: "oncall-bot"}
		ctx := context.Background()
		require.NoError(t, p.Wait(ctx, chat("1"))) // the app's one slot this second
		start := time.Now()
		for range 4 {
			require.NoError(t, p.Wait(ctx, bot))
		}
		require.Equal(t, 315*time.Millisecond, time.Since(start),
			"3 gaps of 105 ms under the bot's own limit, not behind the app's 1 per second")
	})
}
