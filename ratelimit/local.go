package ratelimit

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Local keeps the slots in the process.
type Local struct {
	now func() time.Time

	mu     sync.Mutex
	limits map[string]*schedule
}

// NewLocal returns empty schedules on the given clock (time.Now if nil).
func NewLocal(now func() time.Time) *Local {
	if now == nil {
		now = time.Now
	}
	return &Local{now: now, limits: map[string]*schedule{}}
}

// schedule is one limit's slots.
type schedule struct {
	slots []time.Time   // taken, in order; those that can no longer matter are dropped
	cells map[int64]int // slots per cell, for the per-window count
	used  time.Time     // the latest slot, to forget idle schedules
}

// maxRounds bounds the search for a time every limit allows: each round
// moves it later, and a handful are the most ever needed.
const maxRounds = 1000

// Take implements Slots.
func (l *Local) Take(_ context.Context, limits []Limit, after, within time.Duration) (Slot, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now().Round(0) // wall clock only: the tokens are wall clock times
	scheds := make([]*schedule, len(limits))
	for i, lim := range limits {
		scheds[i] = l.schedule(lim.Key)
		scheds[i].forget(lim, now)
	}
	t := now.Add(max(0, after))
	for range maxRounds {
		moved := false
		for i, lim := range limits {
			if next := scheds[i].earliest(lim, t); next.After(t) {
				t, moved = next, true
			}
		}
		if !moved {
			break
		}
	}
	if t.Sub(now) > within {
		return Slot{}, false, nil
	}
	for i, lim := range limits {
		scheds[i].take(lim, t)
	}
	if len(l.limits) > 1000 {
		l.sweep(now)
	}
	return Slot{In: t.Sub(now), Token: strconv.FormatInt(t.UnixNano(), 10)}, true, nil
}

// Give implements Slots.
func (l *Local) Give(_ context.Context, limits []Limit, s Slot) error {
	ns, err := strconv.ParseInt(s.Token, 10, 64)
	if err != nil {
		return fmt.Errorf("give back slot %q: %w", s.Token, err)
	}
	t := time.Unix(0, ns)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, lim := range limits {
		if sched, ok := l.limits[lim.Key]; ok {
			sched.give(lim, t)
		}
	}
	return nil
}

func (l *Local) schedule(key string) *schedule {
	s, ok := l.limits[key]
	if !ok {
		s = &schedule{cells: map[int64]int{}}
		l.limits[key] = s
	}
	return s
}

// sweep drops the schedules unused for a while: targets come from the
// configuration, but a reload can change them.
func (l *Local) sweep(now time.Time) {
	for k, s := range l.limits {
		if now.Sub(s.used) > 2*time.Minute {
			delete(l.limits, k)
		}
	}
}

// forget drops what can no longer constrain a slot at now or later.
func (s *schedule) forget(l Limit, now time.Time) {
	drop := 0
	for drop < len(s.slots) && now.Sub(s.slots[drop]) >= l.Spacing {
		drop++
	}
	s.slots = s.slots[drop:]
	if l.PerWindow > 0 {
		first := cellOf(l, now) - WindowCells(l)
		for c := range s.cells {
			if c < first {
				delete(s.cells, c)
			}
		}
	}
}

// earliest is the first time at or after t at which s has room.
func (s *schedule) earliest(l Limit, t time.Time) time.Time {
	for {
		if l.Spacing > 0 {
			t = s.spaced(l, t)
		}
		if l.PerWindow <= 0 {
			return t
		}
		c := s.counted(l, t)
		if c.Equal(t) {
			return t
		}
		t = c
	}
}

// spaced is the first time at or after t that is Spacing away from every
// slot.
func (s *schedule) spaced(l Limit, t time.Time) time.Time {
	i, _ := slices.BinarySearchFunc(s.slots, t.Add(-l.Spacing), func(a, b time.Time) int { return a.Compare(b) })
	for ; i < len(s.slots); i++ {
		e := s.slots[i]
		if !e.After(t.Add(-l.Spacing)) {
			continue
		}
		if !e.Before(t.Add(l.Spacing)) {
			break
		}
		t = e.Add(l.Spacing)
	}
	return t
}

// counted is the first time at or after t whose cell has room in every
// window of cells it belongs to.
func (s *schedule) counted(l Limit, t time.Time) time.Time {
	k := WindowCells(l)
	for c := cellOf(l, t); ; c++ {
		if s.roomIn(l, c, k) {
			if c == cellOf(l, t) {
				return t
			}
			return time.Unix(0, c*int64(CellSize(l)))
		}
	}
}

// roomIn reports whether every run of k cells that includes cell c holds
// fewer than PerWindow slots.
func (s *schedule) roomIn(l Limit, c, k int64) bool {
	sum := 0
	for j := c - k + 1; j <= c; j++ {
		sum += s.cells[j]
	}
	for j := c - k + 1; ; j++ { // the run from j to j+k-1
		if sum >= l.PerWindow {
			return false
		}
		if j == c {
			return true
		}
		sum += s.cells[j+k] - s.cells[j]
	}
}

// take records a slot at t.
func (s *schedule) take(l Limit, t time.Time) {
	if l.Spacing > 0 {
		i, _ := slices.BinarySearchFunc(s.slots, t, func(a, b time.Time) int { return a.Compare(b) })
		s.slots = slices.Insert(s.slots, i, t)
	}
	if l.PerWindow > 0 {
		s.cells[cellOf(l, t)]++
	}
	if t.After(s.used) {
		s.used = t
	}
}

// give forgets a slot at t.
func (s *schedule) give(l Limit, t time.Time) {
	if l.Spacing > 0 {
		if i, ok := slices.BinarySearchFunc(s.slots, t, func(a, b time.Time) int { return a.Compare(b) }); ok {
			s.slots = slices.Delete(s.slots, i, i+1)
		}
	}
	if l.PerWindow > 0 {
		if c := cellOf(l, t); s.cells[c] > 0 {
			s.cells[c]--
		}
	}
}

func cellOf(l Limit, t time.Time) int64 { return t.UnixNano() / int64(CellSize(l)) }
