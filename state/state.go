// Package state keeps what delivery must remember across requests and
// restarts: each group's reply chain, the notifications already delivered,
// and a lock per group so that one group is handled one notification at a
// time.
package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"
)

// Record is what is known about one notification of one group.
type Record struct {
	Root string // root message ID of the group's open chain; "" if none
	// Closed is the chain the group's last resolution closed, within the
	// dedupe window; zero while a chain is open.
	Closed    Closure
	Delivered bool // this notification was delivered inside the dedupe window
	// Attempt is the idempotency key of an earlier attempt at this
	// notification that was not recorded as delivered, within AttemptTTL.
	Attempt string
}

// Closure is how a group's chain ended: a late resolved notification still
// belongs to it, and an HA peer's copy of the same resolution is not news.
type Closure struct {
	Root       string // the closed chain's root message
	Resolution string // what resolved the group (webhook.ResolutionKey)
}

// AttemptTTL is how long an attempt's idempotency key is reused: Feishu
// accepts one send per uuid within an hour, so reusing a key any later would
// no longer prevent a duplicate.
const AttemptTTL = time.Hour

// Delivery is what becomes true once a notification was delivered.
type Delivery struct {
	Chain        string    // ChainKey of the receiver and group
	Notification string    // notification key
	Root         string    // the chain's root message after this delivery
	Close        bool      // the group resolved: the chain ends
	Resolution   string    // with Close: what resolved the group
	At           time.Time // when it was delivered
}

// Store is the state backend.
type Store interface {
	// Lock waits until no one else holds chain's lock, then takes it.
	Lock(ctx context.Context, chain string) (unlock func(), err error)
	// Load returns the chain's root, or how it was closed, and whether the
	// notification was delivered already.
	Load(ctx context.Context, chain, notification string) (Record, error)
	// Begin records that notification is about to be sent with the
	// idempotency key attempt, so that a retry after a crash or a timeout
	// sends with the same key.
	Begin(ctx context.Context, chain, notification, attempt string, at time.Time) error
	// Commit records a delivery atomically: the notification as delivered
	// (its attempt forgotten) and the chain as it now is. The caller holds
	// the chain's lock; a store shared by replicas refuses the commit if
	// that lock was lost meanwhile.
	Commit(ctx context.Context, d Delivery) error
	// Chains counts the open chains.
	Chains(ctx context.Context) (int, error)
	// Ping reports whether the store is usable.
	Ping(ctx context.Context) error
	Close() error
}

// Options are the store's retention settings.
type Options struct {
	ChainTTL     time.Duration // a chain is forgotten this long after its last message
	DedupeWindow time.Duration // a delivered notification is remembered this long
}

// ErrClosed is returned by a store that was closed.
var ErrClosed = errors.New("state store is closed")

// ChainKey identifies the reply chain of one group at one receiver and its
// target. The target is part of it because replies follow their root: after
// an operator points a receiver at another chat, a chain rooted in the old
// one would keep replying there.
func ChainKey(receiver, target, groupKey string) string {
	h := sha256.Sum256([]byte(receiver + "\x00" + target + "\x00" + groupKey))
	return hex.EncodeToString(h[:])
}
