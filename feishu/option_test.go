package feishu_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
)

// newIMv1 is the im/v1 sender of the stand-in's app, paced at limits and
// built with opts.
func newIMv1(t *testing.T, s *feishutest.Server, limits config.RateLimit, opts ...feishu.Option) feishu.Sender {
	t.Helper()
	m := feishu.NewMetrics(prometheus.NewRegistry())
	cfg := config.Feishu{API: config.APIIMv1, AppID: feishutest.AppID, BaseURL: s.URL, HTTPConfig: commoncfg.DefaultHTTPClientConfig}
	c, err := feishu.New(cfg, feishutest.AppSecret, m, feishu.NewPacer(limits, m), promslog.NewNopLogger(), opts...)
	require.NoError(t, err)
	return c.IMv1()
}

// WithHTTPClient with the stand-in's in-memory client runs a send in a
// bubble: the answer's 30 s latency passes in virtual time, at once.
func TestSendInABubble(t *testing.T) {
	s := feishutest.New(t)
	s.SetLatency(30 * time.Second)
	synctest.Test(t, func(t *testing.T) {
		sender := newIMv1(t, s, config.RateLimit{}, feishu.WithHTTPClient(s.Client()))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		id, err := sender.Send(ctx, text("oc_1", "x"))
		require.NoError(t, err)
		require.Equal(t, 30*time.Second, time.Since(start))
		m, ok := s.Message(id)
		require.True(t, ok)
		require.Equal(t, "x", m.Text)
	})
}
