package feishu_test

import (
	"context"
	"fmt"
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

func TestPacerSpacesSendsToOneTarget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, m := newPacer(t, config.RateLimit{PerChat: 10})
		ctx := context.Background()
		start := time.Now()
		for range 6 {
			require.NoError(t, p.Wait(ctx, chat("1")))
		}
		require.Equal(t, 500*time.Millisecond, time.Since(start), "5 gaps of 100 ms")
		count, sum := histogram(t, m.RateLimitWait)
		require.Equal(t, uint64(6), count)
		require.InDelta(t, 0.5, sum, 1e-6, "five of them waited 100 ms")
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
		require.Equal(t, 500*time.Millisecond, time.Since(start), "6 chats, 5 gaps of the app's 100 ms")
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

		ctx, cancel = context.WithTimeout(context.Background(), 700*time.Millisecond)
		defer cancel()
		require.NoError(t, p.Wait(ctx, chat("1")), "the next slot, 500 ms after the first, is still free")
	})
}

func TestPacerSlowPausesTheBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := newPacer(t, config.RateLimit{})
		p.Slow(chat("1"), 300*time.Millisecond)
		start := time.Now()
		require.NoError(t, p.Wait(context.Background(), chat("2")))
		other := time.Since(start)
		require.NoError(t, p.Wait(context.Background(), chat("1")))
		require.Equal(t, 300*time.Millisecond, time.Since(start), "the chat waits out its pause")
		require.Zero(t, other, "another chat is not paused")

		p.Slow(feishu.Target{}, 300*time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		var se *feishu.SlotError
		require.ErrorAs(t, p.Wait(ctx, chat("2")), &se, "an app pause holds every chat")
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
		require.Equal(t, 400*time.Millisecond, time.Since(start), "an existing bucket takes the new rate")
	})
}

// The buckets start full: the first sends of a burst go at once, up to the
// per-minute bucket's burst, rather than trickling at the per-minute rate.
func TestPacerStartsWithFullBuckets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := newPacer(t, config.RateLimit{PerAppMinute: 1000})
		start := time.Now()
		for i := range 100 {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			require.NoError(t, p.Wait(ctx, chat(fmt.Sprint(i))), "send %d", i)
			cancel()
		}
		require.Zero(t, time.Since(start), "none of them waited")
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
		require.Equal(t, 300*time.Millisecond, time.Since(start),
			"3 gaps of 100 ms under the bot's own limit, not behind the app's 1 per second")
	})
}
