package feishu_test

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
)

// clientAt is a client of the stand-in's app whose base URL is url, its
// metrics registered in a registry of its own.
func clientAt(t *testing.T, url, secret string) (*feishu.Client, *prometheus.Registry, *feishu.Metrics) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := feishu.NewMetrics(reg)
	cfg := config.Feishu{API: config.APIIMv1, AppID: feishutest.AppID, BaseURL: url, HTTPConfig: commoncfg.DefaultHTTPClientConfig}
	c, err := feishu.New(cfg, secret, m, feishu.NewPacer(config.RateLimit{}, m), promslog.NewNopLogger())
	require.NoError(t, err)
	return c, reg, m
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// Every reason a token cannot be had is told apart, named with what to
// look at, counted, and shown by alertmanager_feishu_token_ok.
func TestTokenFailureReasons(t *testing.T) {
	s := feishutest.New(t)
	tlsStandIn := httptest.NewUnstartedServer(s.Handler())
	tlsStandIn.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is the point
	tlsStandIn.StartTLS()
	t.Cleanup(tlsStandIn.Close)

	for _, tc := range []struct {
		name, url, secret string
		fault             *feishutest.TokenFault
		timeout           time.Duration // 0: long enough for any answer
		reason            string
		says              []string
	}{
		{name: "connection refused", url: "http://" + closedPort(t), reason: feishu.TokenConnect, says: []string{"connection refused"}},
		{name: "no answer in time", url: s.URL, fault: &feishutest.TokenFault{Hang: true}, timeout: 200 * time.Millisecond, reason: feishu.TokenTimeout, says: []string{"deadline exceeded"}},
		{name: "connection dropped", url: s.URL, fault: &feishutest.TokenFault{Fault: feishutest.Fault{Drop: true}}, reason: feishu.TokenNetwork, says: []string{"EOF"}},
		{name: "plain HTTP behind https", url: strings.Replace(s.URL, "http:", "https:", 1), reason: feishu.TokenTLS, says: []string{"HTTP response to HTTPS client"}},
		{name: "certificate of an unknown authority", url: tlsStandIn.URL, reason: feishu.TokenTLS, says: []string{"x509", "unknown authority"}},
		{name: "wrong secret", url: s.URL, secret: "wrong-secret", reason: feishu.TokenCredentials, says: []string{"code 10014: app secret invalid"}},
		{name: "feishu's internal error", url: s.URL, fault: &feishutest.TokenFault{Fault: feishutest.Fault{Status: 500, Code: 2200, Msg: "Internal Error"}}, reason: feishu.TokenRefused, says: []string{"http 500, code 2200: Internal Error"}},
		{name: "a proxy's error page", url: s.URL, fault: &feishutest.TokenFault{NotFeishu: true}, reason: feishu.TokenAnswer, says: []string{"http 502", "not a Feishu JSON envelope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.FailTokens(tc.fault)
			t.Cleanup(func() { s.FailTokens(nil) })
			secret := tc.secret
			if secret == "" {
				secret = feishutest.AppSecret
			}
			c, reg, m := clientAt(t, tc.url, secret)
			_, known := m.TokenOK()
			require.False(t, known, "no value before the first attempt")

			if tc.timeout == 0 {
				tc.timeout = time.Minute
			}
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			err := c.CheckCredentials(ctx)
			require.Error(t, err)
			var te *feishu.TokenError
			require.ErrorAs(t, err, &te)
			for _, s := range tc.says {
				require.Contains(t, err.Error(), s)
			}
			require.NotContains(t, err.Error(), secret)
			reason, hint := feishu.TokenFailure(err)
			require.Equal(t, tc.reason, reason, "%v", err)
			require.NotEmpty(t, hint)

			require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP alertmanager_feishu_token_ok 1 while the last attempt to obtain a tenant access token from Feishu succeeded, 0 while it failed; absent before the first attempt and without an app.
# TYPE alertmanager_feishu_token_ok gauge
alertmanager_feishu_token_ok 0
`), "alertmanager_feishu_token_ok"))
			require.Equal(t, 1.0, testutil.ToFloat64(m.TokenFailures.WithLabelValues(tc.reason)))
		})
	}
}

// The gauge follows every fetch: a send's as well as a check's, back to 1
// when a token is had again, and to no value when there is no app.
func TestTokenOKFollowsEveryFetch(t *testing.T) {
	s := feishutest.New(t)
	c, _, m := clientAt(t, s.URL, feishutest.AppSecret)
	ctx := context.Background()

	require.NoError(t, c.CheckCredentials(ctx))
	ok, known := m.TokenOK()
	require.True(t, ok && known)

	s.FailTokens(&feishutest.TokenFault{Fault: feishutest.Fault{Status: http.StatusServiceUnavailable, Code: 2200, Msg: "Internal Error"}})
	s.ExpireTokens()
	sendCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := c.IMv1().Send(sendCtx, text("oc_1", "x"))
	cancel()
	require.Error(t, err)
	ok, known = m.TokenOK()
	require.True(t, known)
	require.False(t, ok, "a send's failed fetch shows")

	s.FailTokens(nil)
	_, err = c.IMv1().Send(ctx, text("oc_1", "x"))
	require.NoError(t, err)
	ok, _ = m.TokenOK()
	require.True(t, ok, "and so does its next fetch")

	m.ClearTokenOK()
	_, known = m.TokenOK()
	require.False(t, known)
}
