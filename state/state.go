// Package state keeps what delivery must remember across requests and
// restarts: each chain's incident record, the notifications already
// delivered, the due times of incidents' next steps, and a lock per chain
// so that one chain is handled one notification at a time.
package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
)

// Loaded is what Load finds for one notification of one chain.
type Loaded struct {
	// Incident is the chain's open incident; nil if none.
	Incident *incident.Incident
	// Closed is the incident the chain's last resolution closed, within
	// the dedupe window, while none is open; nil otherwise. A late
	// resolved notification still belongs to it, and an HA peer's copy of
	// the same resolution is not news.
	Closed *incident.Incident
	// Delivered is whether this notification was delivered inside the
	// dedupe window.
	Delivered bool
	// Attempt is the idempotency key of an earlier attempt at this
	// notification that was not recorded as delivered, within AttemptTTL.
	Attempt string
}

// Write is what becomes true at once: an incident as it now is and, for a
// delivery, the notification delivered.
type Write struct {
	// Incident is stored as its chain's open incident, or as its closed
	// one when State is incident.Resolved, which deletes the open one. A
	// firing write deletes the closed one: the next firing starts afresh.
	Incident *incident.Incident
	// Notification, when not "", is recorded as delivered and its attempt
	// forgotten. An acknowledgement or a silence writes none.
	Notification string
	// At is when the notification was delivered: it stays delivered for
	// the dedupe window from then.
	At time.Time
}

// Store is the state backend.
type Store interface {
	// Lock waits until no one else holds chain's lock, then takes it.
	Lock(ctx context.Context, chain string) (unlock func(), err error)
	// Load returns the chain's open or closed incident and what is known
	// of the notification.
	Load(ctx context.Context, chain, notification string) (Loaded, error)
	// Get returns the open or closed incident named by id. It returns
	// ErrNotFound for none, for a malformed id, and for a chain whose
	// incident has another ID: a card's button may outlive its incident.
	Get(ctx context.Context, id string) (*incident.Incident, error)
	// Begin records that notification is about to be sent with the
	// idempotency key attempt, so that a retry after a crash or a timeout
	// sends with the same key.
	Begin(ctx context.Context, chain, notification, attempt string, at time.Time) error
	// Commit records w atomically. It is fenced: the caller holds the
	// chain's lock, and a commit without it (lost to expiry or to another
	// replica on Redis, not taken in this process for the file) is refused
	// with an error wrapping ErrLockLost, so that it cannot overwrite what
	// the lock's next holder wrote.
	Commit(ctx context.Context, w Write) error
	// Schedule sets the one due time of incident id, replacing any.
	Schedule(ctx context.Context, id string, at time.Time) error
	// Unschedule removes incident id's due time, if any.
	Unschedule(ctx context.Context, id string) error
	// Due claims up to limit ids whose due time is not after now, earliest
	// first. Each due item goes to one caller only: a claim moves it to
	// now+ClaimTTL, so that it comes due again if the claimer dies; the
	// claimer Schedules the next time or Unschedules it.
	Due(ctx context.Context, now time.Time, limit int) ([]string, error)
	// Census counts the open incidents at now by state.
	Census(ctx context.Context, now time.Time) (Census, error)
	// OpenIncidents returns the open incidents of the receivers named, as
	// their records say, without their Last, and unlocked: a snapshot to
	// look at, each to be read again under its chain's lock before it is
	// acted on. It reads every open record, for the rare caller (a
	// reload) that must find incidents no index leads to.
	OpenIncidents(ctx context.Context, receivers ...string) ([]*incident.Incident, error)
	// Chains counts the open chains.
	Chains(ctx context.Context) (int, error)
	// Ping reports whether the store is usable.
	Ping(ctx context.Context) error
	Close() error
}

// AttemptTTL is how long an attempt's idempotency key is reused: Feishu
// accepts one send per uuid within an hour, so reusing a key any later would
// no longer prevent a duplicate.
const AttemptTTL = time.Hour

// ClaimTTL is how long a claimed due item stays with its claimer. It is
// well over the time to handle one (a lock and a send with its retries,
// about ten seconds), so that a slow claimer is rarely overtaken, and short
// beside the minutes between escalation steps, so that a replica that died
// holding claims delays them by little. A claim that is overtaken costs a
// second look under the chain's lock, not a second message.
const ClaimTTL = 30 * time.Second

// Options are the store's retention settings.
type Options struct {
	ChainTTL     time.Duration // an open incident is forgotten this long after its last message
	DedupeWindow time.Duration // a delivered notification and a closed incident are remembered this long
	// Now is the store's clock, for tests; nil is time.Now. Redis expires
	// keys on its own clock, which this does not move.
	Now func() time.Time
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

var (
	// ErrClosed is returned by a store that was closed.
	ErrClosed = errors.New("state store is closed")
	// ErrNotFound is returned by Get for an ID that names no incident.
	ErrNotFound = errors.New("incident not found")
	// ErrLockLost is wrapped by Commit's error when the caller does not
	// hold the chain's lock.
	ErrLockLost = errors.New("chain lock not held")
)

// ChainKey identifies the reply chain of one group at one receiver and its
// target. The target is part of it because replies follow their root: after
// an operator points a receiver at another chat, a chain rooted in the old
// one would keep replying there.
func ChainKey(receiver, target, groupKey string) string {
	h := sha256.Sum256([]byte(receiver + "\x00" + target + "\x00" + groupKey))
	return hex.EncodeToString(h[:])
}

// checkWrite refuses a write that no store could file under its chain.
func checkWrite(w Write) error {
	switch {
	case w.Incident == nil:
		return errors.New("commit state: no incident")
	case w.Incident.Chain == "" || incident.ChainOf(w.Incident.ID) != w.Incident.Chain:
		return errors.New("commit state: incident id does not name its chain")
	}
	return nil
}
