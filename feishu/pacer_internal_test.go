package feishu

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

// Refusals halve a bucket's rate, once per round, down to a floor; quiet
// time doubles it back.
func TestPacerSlowsDownAndRecovers(t *testing.T) {
	now := time.Now()
	p := NewPacer(config.RateLimit{PerChat: 8, PerApp: 64}, NewMetrics(prometheus.NewRegistry()))
	p.now = func() time.Time { return now }
	chat := Target{Kind: config.TargetChatID, ID: "oc_1"}
	rateOf := func(target Target) rate.Limit {
		p.mu.Lock()
		defer p.mu.Unlock()
		b := p.app
		if target != (Target{}) {
			b = p.target(target)
		}
		return b.limiters[0].Limit()
	}

	p.Slow(chat, 0)
	p.Slow(chat, 0) // the same round of refusals
	require.Equal(t, rate.Limit(4), rateOf(chat))
	require.Equal(t, rate.Limit(64), rateOf(Target{}), "a chat's refusal leaves the app alone")
	for range 10 {
		now = now.Add(time.Second)
		p.Slow(chat, 0)
	}
	require.Equal(t, rate.Limit(0.5), rateOf(chat), "never below a sixteenth")

	now = now.Add(recoverEvery)
	require.NoError(t, p.Wait(context.Background(), chat))
	require.Equal(t, rate.Limit(1), rateOf(chat), "doubled back after quiet time")
	for range 4 {
		now = now.Add(recoverEvery)
		require.NoError(t, p.Wait(context.Background(), chat))
	}
	require.Equal(t, rate.Limit(8), rateOf(chat), "and no further than configured")

	p.Slow(Target{}, time.Second)
	require.Equal(t, rate.Limit(32), rateOf(Target{}))
}
