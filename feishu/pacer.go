package feishu

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/ratelimit"
)

// Pacer keeps the sends of the whole process inside Feishu's rate limits:
// a limit per target (chat or user) and the app's (per second and per
// minute); a custom bot has two of its own and none of the app's. A send
// waits for its slot instead of being refused, but never past its
// context's deadline. Its slots in all its limits are taken at once, at
// the earliest time all of them allow.
//
// Feishu does not say how it counts "5 per second": a token bucket, a
// sliding one-second window, or calendar seconds. The pacer keeps the
// limits under each. It spaces the sends of a per-second limit evenly
// over a second and a guard, so that a send that is a few milliseconds
// late does not land in the same second as the fifth after it, and holds
// back the sends after one that went late (depart). After a quiet spell,
// the sends of a limit's first second count for startSlack longer (a
// slow start): a burst's first sends are the latest on their way. It
// counts a per-minute limit over a minute and a margin (ratelimit.Cells).
//
// When Feishu refuses a send all the same (other bots in the chat share
// its limit, a tenant has lower ones, a send was later than the guard),
// Slow pauses the limit until its window has room, widens its guard for a
// while, and the sends waiting whose slots fall in the pause take new
// ones. A refusal soon after such a pause means the limit is lower than
// configured: only then is the rate halved, and it doubles back every
// recoverEvery once the refusals stop.
//
// One Pacer serves every client of the process: a reload builds a new
// client but must not reset the limits. With Share, the slots are counted
// for all replicas together.
type Pacer struct {
	metrics *Metrics
	now     func() time.Time

	mu      sync.Mutex
	limits  config.RateLimit
	app     *bucket
	targets map[Target]*bucket
	local   *ratelimit.Local
	shared  ratelimit.Shared // nil: the process's own limits only
	logger  *slog.Logger
	// fallback is when the shared slots last failed; while it is recent,
	// the local ones stand in for them at this replica's share.
	fallback time.Time
	share    int           // replicas sharing the limits, as last seen
	retry    time.Duration // fallbackFor, but for tests
	changed  chan struct{}
}

const (
	// guard is how much longer than a second a per-second limit's sends
	// are spread over: at 5 per second they go 210 ms apart rather than
	// 200, which tolerates a send 50 ms late for 5 % of the rate.
	guard = 50 * time.Millisecond
	// maxGuard is as far as refusals widen a limit's guard: a send's way
	// to Feishu that is often more than guard late (a loaded machine, a
	// jittery network) costs a little rate rather than refusals. The
	// guard halves back every guardEvery without a refusal.
	maxGuard   = 400 * time.Millisecond
	guardEvery = 5 * time.Second
	// window is what a refusal without Feishu's reset header waits out:
	// the per-second limit's window.
	window = time.Second
	// persistFor is how soon after a pause a refusal means the limit is
	// lower than configured, rather than a send that was late.
	persistFor = time.Second
	// recoverEvery is how often a slowed rate doubles back once the
	// refusals stop: from half in one step, from the floor in four.
	recoverEvery = 500 * time.Millisecond
	minFactor    = 1.0 / 16
	// maxPause bounds the pause of a limit with no rate to slow, which
	// grows instead while the refusals persist.
	maxPause = 8 * time.Second
	// fallbackFor is how long the local slots stand in for shared ones
	// that failed before the shared ones are tried again.
	fallbackFor = 5 * time.Second
	// sharedTimeout bounds one call to the shared slots.
	sharedTimeout = time.Second
	// startSlack is how late on its way a slow start allows a send to
	// be: when a limit's sends begin after idleFor without one, those of
	// its first window count for startSlack longer than a second. A
	// burst's first sends are the latest and the most bunched on their
	// way, as the machine is busy taking the burst in and the
	// connections to Feishu are still being opened. It costs a burst
	// about startSlack once: at 50 per second the first window goes at
	// 80 % of the rate.
	startSlack = 250 * time.Millisecond
	// idleFor is how long without a send makes a limit idle: two
	// windows, so that a stream at one per second starts none.
	idleFor = 2 * window
)

// bucket is one limit: its configured rates, the pause Feishu asked for,
// and how far its per-second rate is slowed.
type bucket struct {
	key       string
	perSecond float64 // 0: unlimited
	perMinute float64 // 0: unlimited
	until     time.Time
	factor    float64 // of perSecond, after Feishu's refusals
	round     time.Time
	strikes   int
	recoverAt time.Time
	gone      []departure // the sends of the last second, oldest first
	// last is when the last send went; started is when the sends began
	// again after idleFor without one: those of the first window count
	// longer (startSlack).
	last, started time.Time
	// guard is how much longer than a second the per-second limit's
	// sends are spread over (see guard); narrowAt is when it next halves
	// back.
	guard    time.Duration
	narrowAt time.Time
}

// departure is a send that went at at; slow if in a slow start's first
// window.
type departure struct {
	at   time.Time
	slow bool
}

// limit is b as a schedule, for a replica with share of the limits.
func (b *bucket) limit(share int) ratelimit.Limit {
	l := ratelimit.Limit{Key: b.key, Window: time.Minute}
	if b.perSecond > 0 {
		perSecond := b.perSecond * b.factor / float64(share)
		l.Spacing = time.Duration(float64(time.Second+b.guard) / perSecond)
	}
	if b.perMinute > 0 {
		l.PerWindow = max(1, int(b.perMinute)/share)
	}
	return l
}

// slow records a refusal of a send that went at sent, by a limit that
// asked for a pause of d (0: its window), and returns the pause.
func (b *bucket) slow(now, sent time.Time, d time.Duration) time.Duration {
	b.recover(now)
	if d <= 0 {
		d = b.clearing(now)
	}
	if !sent.After(b.round) {
		// Sent before this round of refusals began: part of it.
		b.until = later(b.until, now.Add(d))
		return b.until.Sub(now)
	}
	if !b.round.IsZero() && sent.Sub(b.until) <= persistFor {
		b.strikes++
		switch {
		case b.perSecond > 0:
			b.factor = max(minFactor, b.factor/2)
		default:
			d = min(maxPause, d<<min(b.strikes, 4))
		}
	} else {
		b.strikes = 0
		// A refusal of its own: the sends are later on their way than
		// the guard allows for, or other senders share the limit.
		b.guard = min(maxGuard, 2*b.guard)
	}
	b.narrowAt = now.Add(guardEvery)
	b.round = now
	b.until = later(b.until, now.Add(d))
	b.recoverAt = b.until.Add(recoverEvery)
	return b.until.Sub(now)
}

// clearing is how long until a refused per-second limit has room again
// however Feishu counts, as far as this process's sends tell: a second
// and guard after the oldest of the last limit's worth of them went. A
// sliding window then holds one fewer, a calendar second has begun, a
// token bucket has refilled. When they do not fill the limit, the refusal
// came from sends this process does not know of (other bots in the chat,
// other replicas): then it is the whole window.
func (b *bucket) clearing(now time.Time) time.Duration {
	n := int(b.perSecond)
	if n < 1 || len(b.gone) < n {
		return window
	}
	if d := b.gone[len(b.gone)-n].at.Add(window + b.guard).Sub(now); d > 0 {
		return d
	}
	return window
}

// recover doubles a slowed rate back every recoverEvery without a
// refusal.
func (b *bucket) recover(now time.Time) {
	if b.factor < 1 && !now.Before(b.recoverAt) {
		b.factor = min(1, b.factor*2)
		b.recoverAt = now.Add(recoverEvery)
	}
	if b.guard > guard && !now.Before(b.narrowAt) {
		b.guard = max(guard, b.guard/2)
		b.narrowAt = now.Add(guardEvery)
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// NewPacer returns a pacer with the given limits, counted in the process.
func NewPacer(limits config.RateLimit, m *Metrics) *Pacer {
	p := &Pacer{
		metrics: m,
		now:     time.Now,
		limits:  limits,
		targets: map[Target]*bucket{},
		share:   1,
		retry:   fallbackFor,
		logger:  slog.New(slog.DiscardHandler),
		changed: make(chan struct{}),
	}
	p.local = ratelimit.NewLocal(func() time.Time { return p.now() })
	p.app = &bucket{key: "app", perSecond: limits.PerApp, perMinute: limits.PerAppMinute, factor: 1, guard: guard}
	return p
}

// Share counts the app's and the targets' slots in s, for every replica
// using it; a custom bot's stay in the process. When s fails, the pacer
// falls back to its own slots at its share of the limits, says so in the
// log and in the rate_limit_shared metric, and tries s again a few
// seconds later.
func (p *Pacer) Share(s ratelimit.Shared, logger *slog.Logger) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shared, p.logger = s, logger
	p.metrics.RateLimitShared.Set(1)
}

// SetLimits applies new limits, as a reload does, keeping the schedules
// and what Feishu's refusals taught.
func (p *Pacer) SetLimits(l config.RateLimit) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.limits = l
	p.app.perSecond, p.app.perMinute = l.PerApp, l.PerAppMinute
	for target, b := range p.targets {
		b.perSecond, b.perMinute = p.rates(target)
	}
	p.changedLocked()
}

// rates are target's configured limits. It is called with p.mu held.
func (p *Pacer) rates(target Target) (perSecond, perMinute float64) {
	if target.IsBot() {
		return p.limits.PerBot, p.limits.PerBotMinute
	}
	return p.limits.PerChat, 0
}

// target returns the bucket of target, creating it. Targets come from the
// configuration, so the map stays small. It is called with p.mu held.
func (p *Pacer) target(target Target) *bucket {
	b, ok := p.targets[target]
	if !ok {
		b = &bucket{key: target.String(), factor: 1, guard: guard}
		b.perSecond, b.perMinute = p.rates(target)
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

// Wait blocks until a send to target may go, the zero Target meaning one
// bound by the app's limits only. It returns a *SlotError at once if the
// slot is past ctx's deadline, so that the caller can answer for a retry
// instead of waiting in vain; a refused slot is not taken.
//
// A send waiting for its slot takes a new one when a limit of its target
// is paused (if its slot is in the pause) or slowed meanwhile, or when a
// slowed rate recovers (if its slot is far), and gives its old one back:
// the slots it took were reckoned before. A single refusal wakes no
// sends: hundreds may be waiting, and they would all take new slots at
// once.
func (p *Pacer) Wait(ctx context.Context, target Target) error {
	_, err := p.wait(ctx, target)
	return err
}

// wait is Wait, and returns when the send was let go: a refusal of it is
// of the round of refusals that began after that (Slow).
func (p *Pacer) wait(ctx context.Context, target Target) (time.Time, error) {
	start := p.now()
	defer func() { p.metrics.RateLimitWait.Observe(p.now().Sub(start).Seconds()) }()
	for {
		r, err := p.reserve(ctx, target)
		if err != nil {
			return time.Time{}, err
		}
		wake, early := r.at, false
		if !r.recoverAt.IsZero() && r.at.Sub(r.recoverAt) > recoverEvery {
			// A slot reckoned at a slowed rate, far enough away that the
			// recovered one brings it nearer.
			wake, early = r.recoverAt, true
		}
		d := wake.Sub(p.now())
		if d <= 0 && !early {
			return p.depart(ctx, target)
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
			if !early && !p.paused(target) {
				t.Stop()
				return p.depart(ctx, target)
			}
		case <-r.changed:
		case <-ctx.Done():
		}
		t.Stop()
		p.give(r)
		if ctx.Err() != nil {
			return time.Time{}, &SlotError{Target: target.String()}
		}
	}
}

// depart waits, if need be, until the send's departure keeps every
// per-second limit of target within its count over the sends that
// actually went, then records it. A send whose goroutine woke late goes
// closer to the ones after it than their slots were spaced for; this
// holds those back instead, by as much as it was late beyond half the
// guard.
func (p *Pacer) depart(ctx context.Context, target Target) (time.Time, error) {
	for {
		p.mu.Lock()
		now := p.now()
		wait := time.Duration(0)
		buckets := p.buckets(target)
		for _, b := range buckets {
			wait = max(wait, b.departWait(now, p.shareFor(target)))
		}
		if wait <= 0 {
			for _, b := range buckets {
				b.departed(now)
			}
			p.mu.Unlock()
			return now, nil
		}
		p.mu.Unlock()
		if sleep(ctx, wait) != nil {
			return time.Time{}, &SlotError{Target: target.String()}
		}
	}
}

// shareFor is the share of the limits target's sends keep to. It is
// called with p.mu held.
func (p *Pacer) shareFor(target Target) int {
	if p.shared != nil && !target.IsBot() && !p.fallback.IsZero() {
		return p.share
	}
	return 1
}

// departWait is how long a send at now must wait for the per-second count
// over the sends that went: at most the limit's rate's worth of them in
// any second and half the guard, in a second and startSlack more for a
// slow start's.
func (b *bucket) departWait(now time.Time, share int) time.Duration {
	if b.perSecond <= 0 {
		return 0
	}
	perSecond := b.perSecond * b.factor / float64(share)
	n := max(1, int(perSecond))
	span := time.Duration(float64(n)/perSecond*float64(time.Second)) + b.guard/2
	until := func(d departure) time.Time {
		if d.slow {
			return d.at.Add(span + startSlack)
		}
		return d.at.Add(span)
	}
	b.gone = slices.DeleteFunc(b.gone, func(d departure) bool { return !until(d).After(now) })
	if len(b.gone) < n {
		return 0
	}
	// Room comes when all but n-1 of them have stopped counting.
	ends := make([]time.Time, len(b.gone))
	for i, d := range b.gone {
		ends[i] = until(d)
	}
	slices.SortFunc(ends, time.Time.Compare)
	return ends[len(ends)-n].Sub(now)
}

// departed records a send that went at now. After idleFor without one,
// it begins a slow start: the sends of its first window at the configured
// rate count for startSlack longer.
func (b *bucket) departed(now time.Time) {
	if b.perSecond <= 0 {
		return
	}
	if b.last.IsZero() || now.Sub(b.last) >= idleFor {
		b.started = now
	}
	b.last = now
	// A slowed rate leaves the first sends room enough.
	slow := b.factor == 1 && now.Sub(b.started) < window
	b.gone = append(b.gone, departure{at: now, slow: slow})
}

// reservation is a slot taken for a send.
type reservation struct {
	slot      ratelimit.Slot
	in        ratelimit.Slots // where it was taken
	limits    []ratelimit.Limit
	at        time.Time
	recoverAt time.Time // when a slowed limit of the send speeds up; zero if none is slowed
	changed   <-chan struct{}
}

// give gives r's slot back.
func (p *Pacer) give(r reservation) {
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	if err := r.in.Give(ctx, r.limits, r.slot); err != nil {
		p.logger.Debug("could not give back a rate limit slot", "err", err)
	}
}

// reserve takes a slot in every limit of target, after any pause.
func (p *Pacer) reserve(ctx context.Context, target Target) (reservation, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	buckets := p.buckets(target)
	now := p.now()
	from := now
	r := reservation{changed: p.changed}
	for _, b := range buckets {
		b.recover(now)
		from = later(from, b.until)
		if b.factor < 1 && (r.recoverAt.IsZero() || b.recoverAt.Before(r.recoverAt)) {
			r.recoverAt = b.recoverAt
		}
	}
	within := time.Duration(1<<63 - 1)
	if deadline, ok := ctx.Deadline(); ok {
		within = deadline.Sub(now)
	}
	ok := p.take(ctx, target, buckets, from.Sub(now), within, &r)
	if !ok {
		return reservation{}, &SlotError{Target: target.String()}
	}
	r.at = now.Add(r.slot.In)
	return r, nil
}

// take takes the slots of buckets in the shared schedules, or in the
// process's own when there are none or they failed, into r. It is called
// with p.mu held.
func (p *Pacer) take(ctx context.Context, target Target, buckets []*bucket, after, within time.Duration, r *reservation) bool {
	now := p.now()
	if p.shared != nil && !target.IsBot() && now.Sub(p.fallback) >= p.retry {
		r.limits = make([]ratelimit.Limit, len(buckets))
		for i, b := range buckets {
			r.limits[i] = b.limit(1)
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedTimeout)
		slot, ok, err := p.shared.Take(sctx, r.limits, after, within)
		cancel()
		if err == nil {
			if !p.fallback.IsZero() {
				p.fallback = time.Time{}
				p.metrics.RateLimitShared.Set(1)
				p.logger.Info("rate limits are counted in redis again, for all replicas")
			}
			p.share = max(1, p.shared.Replicas())
			r.slot, r.in = slot, p.shared
			return ok
		}
		if p.fallback.IsZero() {
			p.logger.Warn("rate limits cannot be counted in redis; this replica keeps to its share of them",
				"replicas", p.share, "err", err)
		}
		p.fallback = now
		p.metrics.RateLimitShared.Set(0)
	}
	share := 1
	if p.shared != nil && !target.IsBot() {
		share = p.share
	}
	r.limits = make([]ratelimit.Limit, len(buckets))
	for i, b := range buckets {
		r.limits[i] = b.limit(share)
	}
	slot, ok, _ := p.local.Take(ctx, r.limits, after, within) // never fails
	r.slot, r.in = slot, p.local
	return ok
}

// changedLocked tells the sends waiting that a pause or a rate changed.
// It is called with p.mu held.
func (p *Pacer) changedLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
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

// Slow records that Feishu refused a send to target (or, for the zero
// Target, one refused by the app's limits) that went at sent, asking for a
// pause of d (0 when it did not say), and returns how long sends to the
// limit concerned now wait. One refusal pauses the limit for d, or for its
// one-second window; refusals that persist after such pauses halve its
// rate too, or, for a limit with no rate, lengthen its pauses.
func (p *Pacer) Slow(target Target, sent time.Time, d time.Duration) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.app
	if target != (Target{}) {
		b = p.target(target)
	}
	factor := b.factor
	pause := b.slow(p.now(), sent, d)
	if b.factor != factor {
		// The sends waiting hold slots spaced for the old rate. Those in
		// the pause take new ones anyway, when their slot comes.
		p.changedLocked()
	}
	return pause
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
