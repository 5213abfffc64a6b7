// Package ratelimit keeps the schedules of send slots under rate limits:
// for each limit, the slots taken, so that a send can take its slot in
// every limit that binds it at once, at the earliest time all of them
// allow. Local keeps them in the process; the state package keeps them in
// Redis, for replicas to share.
//
// A limit is a schedule, not a token bucket: a slot can be taken anywhere
// there is room, before slots already taken for later. A send bound by a
// busy chat takes the app's slot at the time it actually goes, and leaves
// the app's earlier slots to sends to other chats.
package ratelimit

import (
	"context"
	"time"
)

// Limit is one limit as a schedule: no two slots closer than Spacing, and
// at most PerWindow slots in any Window. A zero Spacing or PerWindow is no
// such constraint.
type Limit struct {
	// Key names the limit among all others ("app", "chat_id oc_1").
	Key       string
	Spacing   time.Duration
	PerWindow int
	Window    time.Duration
}

// Slots is where the slots are counted.
type Slots interface {
	// Take takes a slot in each of limits at the earliest time, no sooner
	// than after from now, at which each has room. If that is later than
	// within from now it takes none and returns ok false.
	Take(ctx context.Context, limits []Limit, after, within time.Duration) (s Slot, ok bool, err error)
	// Give gives back a slot that Take took in limits and that will not
	// be used, for another send to take.
	Give(ctx context.Context, limits []Limit, s Slot) error
}

// Slot is a slot taken in some limits.
type Slot struct {
	In    time.Duration // how long from when it was taken until it comes
	Token string        // which slot it is, for Give
}

// Shared slots are counted for several replicas.
type Shared interface {
	Slots
	// Replicas is how many replicas have taken slots lately, as last
	// seen: a replica that cannot reach the shared slots keeps to its
	// share of the limits.
	Replicas() int
}

// Cells is how many parts of a Window a per-window count is kept in:
// slots are counted per cell, and a window is checked as every run of
// cells it can touch, the Window and Guard rounded up and one more, as
// Feishu's window and the cells need not be aligned: 62 cells of a second
// for a minute. The extra cells are the margin, a thirtieth.
const Cells = 60

// Guard is how much longer than a Window a per-window count reckons it:
// a send that arrives a little late must not land in the window of the
// sends that went after it.
const Guard = 50 * time.Millisecond

// CellSize is the size of the cells of l's per-window count.
func CellSize(l Limit) time.Duration { return max(time.Millisecond, l.Window/Cells) }

// WindowCells is how many consecutive cells a window of l can touch.
func WindowCells(l Limit) int64 {
	c := CellSize(l)
	return int64((l.Window+Guard+c-1)/c) + 1
}
