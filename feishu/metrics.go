package feishu

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the client's instruments. They outlive any one client, which
// a configuration reload replaces.
type Metrics struct {
	Requests       *prometheus.CounterVec
	TokenRefreshes prometheus.Counter
	SendDuration   prometheus.Histogram
	Retries        *prometheus.CounterVec
	RateLimitWait  prometheus.Histogram
	TokenFailures  *prometheus.CounterVec
	// RateLimitShared is 1 while the rate limits are counted in Redis for
	// all replicas, 0 while they are counted in the process.
	RateLimitShared prometheus.Gauge

	token *tokenHealth // alertmanager_feishu_token_ok (token.go)
}

// NewMetrics registers the client's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		Requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "alertmanager_feishu_feishu_requests_total",
			Help: "Requests made to the Feishu Open Platform, by endpoint and Feishu's answer code (or http_<status> when the answer had none, error when there was no answer).",
		}, []string{"endpoint", "code"}),
		TokenRefreshes: f.NewCounter(prometheus.CounterOpts{
			Name: "alertmanager_feishu_token_refreshes_total",
			Help: "Tenant access tokens obtained from Feishu.",
		}),
		SendDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "alertmanager_feishu_send_duration_seconds",
			Help:    "Time to deliver one message to Feishu: token, waits for a slot under the rate limits, and retries included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		Retries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "alertmanager_feishu_feishu_retries_total",
			Help: "Calls to Feishu made again, by endpoint and reason (transient, rate_limited, token).",
		}, []string{"endpoint", "reason"}),
		RateLimitWait: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "alertmanager_feishu_rate_limit_wait_seconds",
			Help:    "Time a call to Feishu waited for its slot under the rate limits.",
			Buckets: []float64{0, .01, .05, .1, .25, .5, 1, 2, 4, 8},
		}),
		TokenFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "alertmanager_feishu_token_failures_total",
			Help: "Attempts to obtain a tenant access token that failed, by reason: dns, connect, timeout, network, tls, credentials, refused (another Feishu code), answer (not Feishu's).",
		}, []string{"reason"}),
		RateLimitShared: f.NewGauge(prometheus.GaugeOpts{
			Name: "alertmanager_feishu_rate_limit_shared",
			Help: "1 while the rate limits are counted in Redis for all replicas; 0 while this replica counts them itself (the file backend, or Redis unreachable: then at its share of the limits).",
		}),
		token: newTokenHealth(),
	}
	if reg != nil {
		reg.MustRegister(m.token)
	}
	return m
}
