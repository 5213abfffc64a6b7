package feishu

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
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

// CheckCredentials fetches a token, which proves the app ID and secret.
func (c *Client) CheckCredentials(ctx context.Context) error {
	_, err := c.tenantToken(ctx)
	return err
}
