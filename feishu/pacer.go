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
// and per minute). A send waits for its slot instead of being refused, but
// never past its context's deadline. When Feishu refuses a send all the
// same (other bots in the chat share its limit, other replicas share the
// app's), Slow pauses the bucket concerned.
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
	targets map[string]*bucket
}

// bucket is one limit: its token buckets and the pause Feishu asked for.
type bucket struct {
	limiters []*rate.Limiter
	until    time.Time // no send before this
}

// NewPacer returns a pacer with the given limits.
func NewPacer(limits config.RateLimit, m *Metrics) *Pacer {
	// The buckets start full: a limiter whose limit is changed later keeps
	// its tokens, and one made unlimited then limited would start empty.
	return &Pacer{
		metrics: m,
		now:     time.Now,
		limits:  limits,
		targets: map[string]*bucket{},
		app: &bucket{limiters: []*rate.Limiter{
			rate.NewLimiter(perSecond(limits.PerApp), 1),
			rate.NewLimiter(perSecond(limits.PerAppMinute/60), minuteBurst(limits)),
		}},
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
	p.app.limiters[0].SetLimit(perSecond(l.PerApp))
	p.app.limiters[1].SetLimit(perSecond(l.PerAppMinute / 60))
	p.app.limiters[1].SetBurst(minuteBurst(l))
	for _, b := range p.targets {
		b.limiters[0].SetLimit(perSecond(l.PerChat))
	}
}

// target returns the bucket of target, creating it. Targets come from the
// configuration, so the map stays small. It is called with p.mu held.
func (p *Pacer) target(target string) *bucket {
	b, ok := p.targets[target]
	if !ok {
		b = &bucket{limiters: []*rate.Limiter{rate.NewLimiter(perSecond(p.limits.PerChat), 1)}}
		p.targets[target] = b
	}
	return b
}

// SlotError is a send that could not have its slot before its deadline.
type SlotError struct{ Target string }

func (e *SlotError) Error() string {
	if e.Target == "" {
		return "feishu rate limit: no send slot before the delivery deadline"
	}
	return "feishu rate limit: no send slot for " + e.Target + " before the delivery deadline"
}

// Wait blocks until a send to target may go, target "" meaning one bound
// by the app's limits only. It returns a *SlotError at once if the slot is
// past ctx's deadline, so that the caller can answer for a retry instead of
// waiting in vain; a refused slot is given back.
func (p *Pacer) Wait(ctx context.Context, target string) error {
	start := p.now()
	defer func() { p.metrics.RateLimitWait.Observe(p.now().Sub(start).Seconds()) }()
	deadline, bounded := ctx.Deadline()

	// The slots of every bucket are taken together, under one lock, so that
	// a send refused for one bucket takes nothing from the others.
	p.mu.Lock()
	buckets := []*bucket{p.app}
	if target != "" {
		buckets = append(buckets, p.target(target))
	}
	now := p.now()
	from := now
	for _, b := range buckets {
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
	if bounded && now.Add(wait).After(deadline) {
		for _, r := range taken {
			r.CancelAt(now)
		}
		p.mu.Unlock()
		return &SlotError{Target: target}
	}
	p.mu.Unlock()
	if err := sleep(ctx, wait); err != nil {
		return &SlotError{Target: target}
	}

	// Feishu may have refused other sends while this one waited: honour
	// the pause it asked for too.
	for {
		p.mu.Lock()
		var until time.Time
		for _, b := range buckets {
			if b.until.After(until) {
				until = b.until
			}
		}
		p.mu.Unlock()
		pause := until.Sub(p.now())
		if pause <= 0 {
			return nil
		}
		if bounded && until.After(deadline) {
			return &SlotError{Target: target}
		}
		if err := sleep(ctx, pause); err != nil {
			return &SlotError{Target: target}
		}
	}
}

// Slow pauses sends to target (or, for "", every send) for d, because
// Feishu said its limit was reached.
func (p *Pacer) Slow(target string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.app
	if target != "" {
		b = p.target(target)
	}
	if until := p.now().Add(d); until.After(b.until) {
		b.until = until
	}
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
