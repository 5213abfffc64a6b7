package feishu

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Backoff between attempts: exponential with jitter, like Alertmanager's
// own retrier, but tighter: Alertmanager waits for the delivery, and
// retries it itself once this one gives up.
const (
	// A rate limit's refusal waits for the pause the pacer sets instead
	// (Pacer.Slow): Feishu's reset header, or the limit's window.
	retryInitial = 250 * time.Millisecond
	retryMax     = 4 * time.Second
	// maxAttempts bounds one delivery's calls, whatever its deadline:
	// during an outage, Alertmanager's retries start a fresh delivery
	// rather than one call spinning for minutes.
	maxAttempts = 10
)

// retry makes call, with the tenant token, once target's slot under the
// rate limits has come, until it succeeds, fails for good, or the next
// attempt could not start before ctx's deadline; then it returns the last
// error. A rejected token is replaced and the call made again at once, but
// only once: a second rejection is not the token's fault.
func (c *Client) retry(ctx context.Context, endpoint string, target Target, call func(tok string) error) error {
	var last error
	tokenRetried := false
	for n := 0; ; n++ {
		var tok string
		var err error
		var sent time.Time
		if !target.IsBot() { // a custom bot's URL is its credential
			tok, err = c.tenantToken(ctx)
		}
		if err == nil {
			if sent, err = c.pacer.wait(ctx, target); err != nil {
				if last != nil {
					return last
				}
				return err
			}
			err = call(tok)
		}
		last = err
		failed(ctx, err)
		switch Classify(err) {
		case OK:
			return nil
		case TokenRejected:
			if tokenRetried {
				return err
			}
			tokenRetried = true
			c.forgetToken(tok)
			c.metrics.Retries.WithLabelValues(endpoint, "token").Inc()
			c.logger.Warn("feishu rejected the tenant token, fetching a new one", "endpoint", endpoint, "err", err)
			continue
		case Transient:
		default:
			return err
		}

		reason, delay := "transient", backoff(retryInitial, n)
		scope := rateLimited(err)
		if scope != notLimited && target.IsBot() {
			scope = targetLimited // a custom bot's limits are its own
		}
		switch scope {
		case appLimited, targetLimited:
			reason = "rate_limited"
			var reset time.Duration
			if e := (*Error)(nil); errors.As(err, &e) {
				reset = e.RetryAfter
			}
			// Every send to the same limit would be refused too: pause
			// them all rather than let each find out for itself, and
			// retry once the pause is over, in the slot the pacer gives.
			if scope == appLimited {
				delay = c.pacer.Slow(Target{}, sent, reset)
			} else {
				delay = c.pacer.Slow(target, sent, reset)
			}
		}
		if deadline, ok := ctx.Deadline(); n+1 >= maxAttempts || ok && c.now().Add(delay).After(deadline) {
			return err
		}
		c.metrics.Retries.WithLabelValues(endpoint, reason).Inc()
		c.logger.Debug("feishu call failed, retrying", "endpoint", endpoint, "target", target.String(), "in", delay, "err", err)
		if sleep(ctx, delay) != nil {
			return err
		}
	}
}

// backoff is the wait before retry n+1: initial doubled n times, at most
// retryMax, then spread by ±50% so that a burst's retries do not arrive
// together.
func backoff(initial time.Duration, n int) time.Duration {
	d := initial << min(n, 10)
	if d > retryMax || d <= 0 {
		d = retryMax
	}
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}
