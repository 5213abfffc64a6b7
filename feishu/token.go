package feishu

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// refreshMargin is how long before a token's expiry a new one is fetched.
// Feishu hands out a new token once the current one has under 30 minutes
// left, and keeps the old one valid until it expires, so refreshing inside
// that window never leaves a sender without a valid token.
const refreshMargin = 10 * time.Minute

type tokenAnswer struct {
	Token  string `json:"tenant_access_token"`
	Expire int    `json:"expire"` // seconds left
}

// tenantToken returns the cached tenant token, fetching a new one when there
// is none or it is close to expiry. Concurrent callers share one fetch.
func (c *Client) tenantToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.now().Before(c.fresh) {
		return c.token, nil
	}
	tok, err := c.fetchToken(ctx)
	if err != nil && ctx.Err() == context.Canceled {
		// The caller gave up, which says nothing of Feishu.
		return "", err
	}
	c.metrics.observeToken(err)
	return tok, err
}

// fetchToken asks Feishu for a tenant token and caches it. It is called
// with c.mu held.
func (c *Client) fetchToken(ctx context.Context) (string, error) {
	fetched := c.now()
	a, err := c.do(ctx, EndpointToken, http.MethodPost, "/open-apis/auth/v3/tenant_access_token/internal",
		"", map[string]string{"app_id": c.appID, "app_secret": c.secret})
	if err != nil {
		return "", &TokenError{Err: err}
	}
	// The token sits at the top level of the answer, beside code and msg.
	var t tokenAnswer
	if err := json.Unmarshal(a.body, &t); err != nil || t.Token == "" || t.Expire <= 0 {
		return "", &TokenError{Err: &Error{Endpoint: EndpointToken, HTTPStatus: a.status, Msg: "answer has no token"}}
	}
	life := time.Duration(t.Expire) * time.Second
	margin := min(refreshMargin, life/5)
	c.token, c.fresh = t.Token, fetched.Add(life-margin)
	c.metrics.TokenRefreshes.Inc()
	return c.token, nil
}

// forgetToken drops tok from the cache if it is still the cached one, so
// that the next send fetches a new token.
func (c *Client) forgetToken(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == tok {
		c.token = ""
	}
}

// CheckCredentials obtains a tenant token (the cached one if it is still
// fresh), which proves that Feishu can be reached and accepts the app's ID
// and secret. A failure is a *TokenError; TokenFailure says why.
func (c *Client) CheckCredentials(ctx context.Context) error {
	_, err := c.tenantToken(ctx)
	return err
}

// Reasons a tenant token could not be obtained, as TokenFailure names them
// and alertmanager_feishu_token_failures_total counts them.
const (
	TokenDNS         = "dns"         // the base URL's host does not resolve
	TokenConnect     = "connect"     // no connection: refused, unreachable
	TokenTimeout     = "timeout"     // no answer in time
	TokenNetwork     = "network"     // the connection broke otherwise
	TokenTLS         = "tls"         // the TLS handshake failed: certificate, CA, not TLS at all
	TokenCredentials = "credentials" // Feishu refused the app's ID or secret
	TokenRefused     = "refused"     // Feishu answered another code: rate limit, internal error
	TokenAnswer      = "answer"      // the answer was not Feishu's: a proxy's page, a wrong base URL
)

// Feishu's codes for an app ID or secret that is wrong, missing or
// malformed (the docs' labels and the messages seen differ; all mean the
// credentials).
var credentialCodes = map[int]bool{10003: true, 10012: true, 10013: true, 10014: true, 10015: true}

// TokenFailure says why err, from obtaining a tenant token, happened, and
// what to look at: the reason is one of the Token* constants.
func TokenFailure(err error) (reason, hint string) {
	reason = tokenReason(err)
	return reason, tokenHints[reason]
}

var tokenHints = map[string]string{
	TokenDNS:         "the host in feishu.base_url does not resolve: check the URL and the DNS",
	TokenConnect:     "feishu.base_url cannot be connected to: check the network, its egress policy and feishu.http_config.proxy_url",
	TokenTimeout:     "feishu.base_url did not answer in time: check the network, its egress policy and feishu.http_config.proxy_url",
	TokenNetwork:     "the connection to feishu.base_url broke: check the network and any proxy",
	TokenTLS:         "the TLS handshake with feishu.base_url failed: check feishu.http_config.tls_config (the CA) and any proxy that intercepts TLS",
	TokenCredentials: "feishu refused the app's credentials: check feishu.app_id and the app secret",
	TokenRefused:     "feishu did not issue a token: see its code and message",
	TokenAnswer:      "the answer was not feishu's: check feishu.base_url and any proxy",
}

func tokenReason(err error) string {
	var (
		dns    *net.DNSError
		verify *tls.CertificateVerificationError
		record tls.RecordHeaderError
		alert  tls.AlertError
		ualert x509.UnknownAuthorityError
		host   x509.HostnameError
		cert   x509.CertificateInvalidError
		netErr net.Error
		op     *net.OpError
		e      *Error
	)
	switch {
	case errors.As(err, &dns):
		return TokenDNS
	case errors.As(err, &verify), errors.As(err, &record), errors.As(err, &alert),
		errors.As(err, &ualert), errors.As(err, &host), errors.As(err, &cert),
		// net/http's own words for a base URL of https:// at a server
		// that speaks plain HTTP; it keeps no type to tell by.
		err != nil && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return TokenTLS
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return TokenTimeout
	case errors.As(err, &op) && op.Op == "dial":
		return TokenConnect
	case !errors.As(err, &e), e.Err != nil:
		return TokenNetwork
	case credentialCodes[e.Code]:
		return TokenCredentials
	case e.Code != 0:
		return TokenRefused
	}
	return TokenAnswer
}

// tokenHealth is alertmanager_feishu_token_ok: 1 while the last attempt
// to obtain a tenant token succeeded, 0 while it failed, and no value
// before the first attempt or without an app (custom bots alone), so that
// an alert on 0 does not fire for a service that needs no token.
type tokenHealth struct {
	desc *prometheus.Desc

	mu    sync.Mutex
	known bool
	ok    bool
}

func newTokenHealth() *tokenHealth {
	return &tokenHealth{desc: prometheus.NewDesc("alertmanager_feishu_token_ok",
		"1 while the last attempt to obtain a tenant access token from Feishu succeeded, 0 while it failed; absent before the first attempt and without an app.",
		nil, nil)}
}

func (h *tokenHealth) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

func (h *tokenHealth) Collect(ch chan<- prometheus.Metric) {
	h.mu.Lock()
	known, ok := h.known, h.ok
	h.mu.Unlock()
	if !known {
		return
	}
	v := 0.0
	if ok {
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(h.desc, prometheus.GaugeValue, v)
}

func (h *tokenHealth) set(ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.known, h.ok = true, ok
}

// observeToken records how an attempt to obtain a token went.
func (m *Metrics) observeToken(err error) {
	m.token.set(err == nil)
	if err != nil {
		m.TokenFailures.WithLabelValues(tokenReason(err)).Inc()
	}
}

// ClearTokenOK takes alertmanager_feishu_token_ok back to no value: the
// configuration has no app any more, so there is no token to obtain.
func (m *Metrics) ClearTokenOK() {
	m.token.mu.Lock()
	defer m.token.mu.Unlock()
	m.token.known = false
}

// TokenOK reports the state alertmanager_feishu_token_ok shows: known is
// false before the first attempt.
func (m *Metrics) TokenOK() (ok, known bool) {
	m.token.mu.Lock()
	defer m.token.mu.Unlock()
	return m.token.ok, m.token.known
}
