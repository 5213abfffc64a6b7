package feishutest

import (
	"time"

	"golang.org/x/time/rate"
)

// Counting is how the stand-in counts a limit of n sends per period.
// Feishu does not document how it counts "5 per second" or "1000 per
// minute"; a sender has to keep the limits under each of these.
type Counting int

const (
	// SlidingWindow allows at most n sends in any period: a send is
	// refused while n others were accepted in the period before it. It is
	// the strictest of the three, and the default.
	SlidingWindow Counting = iota
	// TokenBucket refills n tokens evenly over each period and holds at
	// most n: a period's worth of burst.
	TokenBucket
	// FixedWindow allows at most n sends per calendar period (the second
	// from :00.000 to :00.999, the minute from :00 to :59).
	FixedWindow
)

// Countings are the three ways of counting, in the order of their names.
var Countings = []Counting{SlidingWindow, TokenBucket, FixedWindow}

func (c Counting) String() string {
	switch c {
	case TokenBucket:
		return "token_bucket"
	case FixedWindow:
		return "fixed_window"
	}
	return "sliding_window"
}

// ParseCounting reads a Counting's name, as String writes it.
func ParseCounting(name string) (Counting, bool) {
	for _, c := range Countings {
		if c.String() == name {
			return c, true
		}
	}
	return 0, false
}

// SetCounting sets how the limits count from now on, the chats', the
// app's and the custom bots' alike. Counts kept so far start again.
func (s *Server) SetCounting(c Counting) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counting = c
	clear(s.chatBuckets)
	s.appLimit = s.newCounter(s.appPerSecond, time.Second)
	s.appMinute = s.newCounter(s.appPerMinute, time.Minute)
	for _, b := range s.bots {
		b.second = s.newCounter(s.botPerSecond, time.Second)
		b.minute = s.newCounter(s.botPerMinute, time.Minute)
	}
}

// Counting reports how the limits count.
func (s *Server) Counting() Counting {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counting
}

// counter is one limit of n sends per period, counted as mode says. A nil
// counter allows everything.
type counter struct {
	mode   Counting
	n      int
	period time.Duration

	accepted []time.Time   // SlidingWindow: the accepted sends of the last period, oldest first
	bucket   *rate.Limiter // TokenBucket
	window   time.Time     // FixedWindow: the start of the current period
	count    int           // FixedWindow: sends accepted in it
}

// newCounter is a counter of n per period in the server's mode; nil when
// n is 0. It is called with s.mu held.
func (s *Server) newCounter(n int, period time.Duration) *counter {
	if n <= 0 {
		return nil
	}
	c := &counter{mode: s.counting, n: n, period: period}
	if c.mode == TokenBucket {
		c.bucket = rate.NewLimiter(rate.Limit(float64(n)/period.Seconds()), n)
	}
	return c
}

// allow counts a send at now if the limit allows it. Otherwise it returns
// how long until the limit would allow one, and counts nothing.
func (c *counter) allow(now time.Time) (bool, time.Duration) {
	if ok, d := c.peek(now); !ok {
		return false, d
	}
	c.record(now)
	return true, 0
}

// allowAll counts a send at now in every one of cs if each allows it, and
// in none otherwise; it returns how long until all would.
func allowAll(now time.Time, cs ...*counter) (bool, time.Duration) {
	var wait time.Duration
	for _, c := range cs {
		if ok, d := c.peek(now); !ok {
			wait = max(wait, d)
		}
	}
	if wait > 0 {
		return false, wait
	}
	for _, c := range cs {
		c.record(now)
	}
	return true, 0
}

// peek reports whether a send at now is within the limit and, if not, how
// long until one would be.
func (c *counter) peek(now time.Time) (bool, time.Duration) {
	if c == nil {
		return true, 0
	}
	switch c.mode {
	case TokenBucket:
		tokens := c.bucket.TokensAt(now)
		if tokens >= 1 {
			return true, 0
		}
		return false, time.Duration((1 - tokens) / float64(c.bucket.Limit()) * float64(time.Second))
	case FixedWindow:
		start := now.Truncate(c.period)
		if start.Equal(c.window) && c.count >= c.n {
			return false, start.Add(c.period).Sub(now)
		}
		return true, 0
	}
	c.forget(now)
	if len(c.accepted) >= c.n {
		return false, c.accepted[0].Add(c.period).Sub(now)
	}
	return true, 0
}

// record counts a send at now that peek allowed.
func (c *counter) record(now time.Time) {
	if c == nil {
		return
	}
	switch c.mode {
	case TokenBucket:
		c.bucket.AllowN(now, 1)
	case FixedWindow:
		if start := now.Truncate(c.period); !start.Equal(c.window) {
			c.window, c.count = start, 0
		}
		c.count++
	default:
		c.accepted = append(c.accepted, now)
	}
}

// forget drops the sends that are a period or more before now: a send at
// now shares its period with those after now-period only.
func (c *counter) forget(now time.Time) {
	from := now.Add(-c.period)
	drop := 0
	for drop < len(c.accepted) && !c.accepted[drop].After(from) {
		drop++
	}
	c.accepted = c.accepted[drop:]
}
