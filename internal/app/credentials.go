package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/alertmanager-feishu/alertmanager-feishu/core"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
)

// How the credential check paces itself: a failed attempt is tried again
// after a backoff doubling from checkRetryInitial to checkRetryMax; once a
// token is had, the check looks again every checkInterval, which costs
// nothing while the cached token is fresh and fetches a new one when it is
// not, so that alertmanager_feishu_token_ok follows Feishu without waiting
// for an alert to need a token.
const (
	checkRetryInitial = time.Second
	checkRetryMax     = time.Minute
	checkInterval     = time.Minute
	checkTimeout      = 10 * time.Second
)

// credentials checks, at start and after every reload, that the app of the
// configuration in force can obtain a tenant token, and says precisely why
// not (no name resolution, no connection, no answer in time, TLS, or
// Feishu's refusal with its code and message), trying again in the
// background until it can. Each attempt sets alertmanager_feishu_token_ok,
// as every token fetch of the senders does.
type credentials struct {
	metrics *feishu.Metrics
	logger  *slog.Logger

	mu     sync.Mutex
	cancel context.CancelFunc // the running check's
	wg     sync.WaitGroup
}

// check ends the check of the previous configuration, if any, and starts
// that of p's. It does not wait for the previous one to return: that may
// be waiting for a send's token fetch on the old client, and a reload must
// not wait for Feishu. Once cancelled, a check neither logs nor sets the
// gauge.
func (c *credentials) check(p *core.Pipeline) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	if p.Client == nil || p.Config.Feishu.AppID == "" {
		// Custom bots alone need no app, and have no token to show.
		c.metrics.ClearTokenOK()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Go(func() { c.run(ctx, p.Client, p.Config.Feishu.BaseURL, p.Config.Feishu.AppID) })
}

// stop ends the checks and waits for them: at shutdown, once the
// deliveries that could hold a client's token fetch have ended.
func (c *credentials) stop() {
	c.mu.Lock()
	if c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	c.mu.Unlock()
	c.wg.Wait()
}

func (c *credentials) run(ctx context.Context, client *feishu.Client, baseURL, appID string) {
	logger := c.logger.With("base_url", baseURL, "app_id", appID)
	verified, failures := false, 0
	for {
		attempt, cancel := context.WithTimeout(ctx, checkTimeout)
		err := client.CheckCredentials(attempt)
		cancel()
		if ctx.Err() != nil {
			return
		}
		wait := checkInterval
		if err == nil {
			if !verified {
				logger.Info("feishu app credentials verified", "attempts", failures+1)
			}
			verified, failures = true, 0
		} else {
			wait = min(checkRetryInitial<<min(failures, 10), checkRetryMax)
			reason, hint := feishu.TokenFailure(err)
			logger.Error("feishu tenant token not obtained, retrying", "reason", reason, "hint", hint, "err", err, "retry_in", wait)
			verified = false
			failures++
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
