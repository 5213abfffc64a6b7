package feishu

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

// Pacer keeps the sends of the whole process inside Feishu's rate limits:
// a token bucket per target (chat or user) and two for the app (per second
// and per minute); a custom bot has two of its own and none of the app's.
// A send waits for its slot instead of being refused, but never past its
// context's deadline. When Feishu refuses a send all the
// same (other bots in the chat share its limit, other replicas share the
// app's), Slow pauses the bucket concerned and halves its rate, which then
// recovers step by step.
//
// The per-second buckets hold a single token, which spaces sends evenly:
// Feishu does not say how it counts "5 per second", and an even spacing is
// inside the limit whichever way it does.
//
// One Pacer serves every client of the process: a reload builds a new
// client but must not reset the buckets.
type Pacer struct {
	metrics *Metrics
	now     func() time.Time

	mu      sync.Mutex
	limits  config.RateLimit
	app     *bucket
	targets map[Target]*bucket
}

// How a bucket slowed by Feishu's refusals recovers: its rate doubles back
// every recoverEvery without a refusal, and it is never slowed below
// minFactor of its configured rate.
const (
	recoverEvery = 10 * time.Second
	minFactor    = 1.0 / 16
)

// bucket is one limit: its token buckets, the pause Feishu asked for, and
// how far its per-second rate is slowed.
type bucket struct {
	limiters  []*rate.Limiter // the first is the per-second one
	limit     rate.Limit      // the configured per-second rate
	until     time.Time       // no send before this
	factor    float64         // of limit, after Feishu's refusals
	slowedAt  time.Time
	recoverAt time.Time
}

func newBucket(limit rate.Limit, more ...*rate.Limiter) *bucket {
	return &bucket{limiters: append([]*rate.Limiter{rate.NewLimiter(limit, 1)}, more...), limit: limit, factor: 1}
}

// apply sets the per-second limiter to the configured rate times factor.
func (b *bucket) apply(now time.Time) {
	l := b.limit
	if l != rate.Inf {
		l *= rate.Limit(b.factor)
	}
	b.limiters[0].SetLimitAt(now, l)
}

// slow records a refusal: a pause of d and, once per round of refusals, a
// halved rate.
func (b *bucket) slow(now time.Time, d time.Duration) {
	if until := now.Add(d); until.After(b.until) {
		b.until = until
	}
	// The sends of one burst are refused together; they are one signal.
	if now.Sub(b.slowedAt) >= time.Second && b.factor > minFactor {
		b.factor /= 2
		b.slowedAt = now
		b.apply(now)
	}
	b.recoverAt = now.Add(recoverEvery)
}

// recover doubles a slowed rate back once recoverEvery has passed without
// a refusal.
func (b *bucket) recover(now time.Time) {
	if b.factor < 1 && !now.Before(b.recoverAt) {
		b.factor = min(1, b.factor*2)
		b.recoverAt = now.Add(recoverEvery)
		b.apply(now)
	}
}

// NewPacer returns a pacer with the given limits.
func NewPacer(limits config.RateLimit, m *Metrics) *Pacer {
	// The buckets start full: a limiter whose limit is changed later keeps
	// its tokens, and one made unlimited then limited would start empty.
	return &Pacer{
		metrics: m,
		now:     time.Now,
		limits:  limits,
		targets: map[Target]*bucket{},
		app: newBucket(perSecond(limits.PerApp),
			rate.NewLimiter(perSecond(limits.PerAppMinute/60), minuteBurst(limits))),
	}
}

// minuteBurst is the burst of the per-minute bucket. A token bucket lets
// through its burst plus its rate over any window; half a minute's worth
// of burst keeps a sudden flood from spending the whole minute's quota in
// its first seconds, and a flood of up to 500 sends at 50/s from being
// slowed by the per-minute limit.
func minuteBurst(l config.RateLimit) int { return max(1, int(l.PerAppMinute/2)) }

// perSecond turns a configured rate into a limiter's, 0 meaning unlimited.
func perSecond(r float64) rate.Limit {
	if r <= 0 {
		return rate.Inf
	}
	return rate.Limit(r)
}

// SetLimits applies new limits, as a reload does, keeping the buckets'
// state.
func (p *Pacer) SetLimits(l config.RateLimit) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.limits = l
	now := p.now()
	p.app.limit = perSecond(l.PerApp)
	p.app.apply(now)
	p.app.limiters[1].SetLimitAt(now, perSecond(l.PerAppMinute/60))
	p.app.limiters[1].SetBurstAt(now, minuteBurst(l))
	for target, b := range p.targets {
		if target.IsBot() {
			b.limit = perSecond(l.PerBot)
			b.limiters[1].SetLimitAt(now, perSecond(l.PerBotMinute/60))
			b.limiters[1].SetBurstAt(now, botMinuteBurst(l))
		} else {
			b.limit = perSecond(l.PerChat)
		}
		b.apply(now)
	}
}

// target returns the bucket of target, creating it. Targets come from the
// configuration, so the map stays small. It is called with p.mu held.
func (p *Pacer) target(target Target) *bucket {
	b, ok := p.targets[target]
	if !ok {
		if target.IsBot() {
			b = newBucket(perSecond(p.limits.PerBot), rate.NewLimiter(perSecond(p.limits.PerBotMinute/60), botMinuteBurst(p.limits)))
		} else {
			b = newBucket(perSecond(p.limits.PerChat))
		}
		p.targets[target] = b
	}
	return b
}

// botMinuteBurst is, like minuteBurst, half a minute's worth.
func botMinuteBurst(l config.RateLimit) int { return max(1, int(l.PerBotMinute/2)) }

// SlotError is a send that could not have its slot before its deadline.
type SlotError struct{ Target string }

func (e *SlotError) Error() string {
	if e.Target == "" {
		return "feishu rate limit: no send slot before the delivery deadline"
	}
	return "feishu rate limit: no send slot for " + e.Target + " before the delivery deadline"
}

// Wait blocks until a send to target may go, the zero Target meaning one
// bound by the app's limits only. It returns a *SlotError at once if the
// slot is past ctx's deadline, so that the caller can answer for a retry
// instead of waiting in vain; a refused slot is given back.
func (p *Pacer) Wait(ctx context.Context, target Target) error {
	start := p.now()
	defer func() { p.metrics.RateLimitWait.Observe(p.now().Sub(start).Seconds()) }()
	for {
		wait, err := p.reserve(ctx, target)
		if err != nil {
			return err
		}
		if err := sleep(ctx, wait); err != nil {
			return &SlotError{Target: target.String()}
		}
		// Feishu may have refused other sends while this one waited. Its
		// slot was reckoned before that: take a new one after the pause,
		// rather than have every waiting send go at once when it ends.
		if !p.paused(target) {
			return nil
		}
	}
}

// reserve takes a slot in every bucket of target, after any pause, and
// returns how long until it comes. The slots are taken together, under one
// lock, so that a send refused for one bucket takes nothing from the
// others.
func (p *Pacer) reserve(ctx context.Context, target Target) (time.Duration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	buckets := p.buckets(target)
	now := p.now()
	from := now
	for _, b := range buckets {
		b.recover(now)
		if b.until.After(from) {
			from = b.until
		}
	}
	var taken []*rate.Reservation
	wait := from.Sub(now)
	for _, b := range buckets {
		for _, l := range b.limiters {
			r := l.ReserveN(from, 1)
			taken = append(taken, r)
			wait = max(wait, r.DelayFrom(now))
		}
	}
	if deadline, ok := ctx.Deadline(); ok && now.Add(wait).After(deadline) {
		for _, r := range taken {
			r.CancelAt(now)
		}
		return 0, &SlotError{Target: target.String()}
	}
	return wait, nil
}

// paused reports whether a bucket of target is paused now.
func (p *Pacer) paused(target Target) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	for _, b := range p.buckets(target) {
		if b.until.After(now) {
			return true
		}
	}
	return false
}

// buckets are the app's bucket and target's, or a custom bot's alone. It
// is called with p.mu held.
func (p *Pacer) buckets(target Target) []*bucket {
	switch {
	case target == Target{}:
		return []*bucket{p.app}
	case target.IsBot():
		return []*bucket{p.target(target)}
	}
	return []*bucket{p.app, p.target(target)}
}

// Slow pauses sends to target (or, for the zero Target, every send) for d,
// and slows them down, because Feishu said its limit was reached. An
// unlimited bucket is only paused: there is no rate to halve.
func (p *Pacer) Slow(target Target, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.app
	if target != (Target{}) {
		b = p.target(target)
	}
	b.slow(p.now(), d)
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait %v: %w", d, ctx.Err())
	}
}
