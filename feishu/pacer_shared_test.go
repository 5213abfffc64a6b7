package feishu_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/logtest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/redistest"
	"github.com/alertmanager-feishu/alertmanager-feishu/ratelimit"
	"github.com/alertmanager-feishu/alertmanager-feishu/state"
)

// With Redis away, a replica counts the limits itself at its share of
// them, and says so in the log and the metric; with Redis back, it counts
// them there again.
func TestPacerFallsBackWhileRedisIsAway(t *testing.T) {
	srv := redistest.Start(t)
	open := func() ratelimit.Shared {
		r, err := state.OpenRedis(state.RedisOptions{Addresses: []string{srv.Addr}, KeyPrefix: "test:"}, state.Options{}, promslog.NewNopLogger())
		require.NoError(t, err)
		t.Cleanup(func() { r.Close() })
		return r.RateLimits()
	}
	// Another replica takes a slot: there are two.
	_, _, err := open().Take(context.Background(), []ratelimit.Limit{{Key: "app", Spacing: 1}}, 0, 0)
	require.NoError(t, err)

	p, m := newPacer(t, config.RateLimit{PerChat: 50, PerApp: 50})
	var log logtest.Buffer
	p.Share(open(), slog.New(slog.NewTextHandler(&log, nil)))
	require.NoError(t, p.Wait(context.Background(), chat("1")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.RateLimitShared))

	srv.Stop()
	require.NoError(t, p.Wait(context.Background(), chat("1")), "the send goes, paced by the process")
	require.Equal(t, 0.0, testutil.ToFloat64(m.RateLimitShared))
	require.Contains(t, log.String(), "rate limits cannot be counted in redis; this replica keeps to its share of them")
	require.Contains(t, log.String(), "replicas=2")

	srv.Restart(t)
	feishu.SetSharedRetry(p, 0)
	require.NoError(t, p.Wait(context.Background(), chat("1")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.RateLimitShared))
	require.Contains(t, log.String(), "rate limits are counted in redis again")
}
