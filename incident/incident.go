// Package incident is the record of one incident: a group's reply chain at
// one receiver and target, from its first message until it resolves, and
// then remembered as closed for the dedupe window. It is the one truth the
// service keeps about an incident, in the shape the state store persists;
// any replica can act on it later from the record alone, without the
// webhook that opened it.
package incident

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// State is where an incident is in its life.
type State string

// The states. Acknowledged and silenced are shown by Ack and Silence being
// set on a firing incident: each can be undone without the other.
const (
	Firing   State = "firing"
	Resolved State = "resolved"
)

// Incident is one incident's record.
type Incident struct {
	// ID names the incident to the outside (card buttons carry it): the
	// chain key and a random part, so that it finds the record in the
	// chain's own slot of a shared store and cannot be guessed from the
	// group.
	ID string `json:"id"`
	// Chain is state.ChainKey of the receiver, target and group key. It is
	// the ID's first part, and not kept twice: a store sets it on reading.
	Chain    string `json:"-"`
	Receiver string `json:"receiver,omitempty"`
	Target   string `json:"target,omitempty"` // kind and ID, as feishu.Target prints it
	GroupKey string `json:"group_key,omitempty"`
	// GroupLabels and CommonLabels are the last notification's: what a
	// silence selects and escalation policies match.
	GroupLabels  map[string]string `json:"group_labels,omitempty"`
	CommonLabels map[string]string `json:"common_labels,omitempty"`

	// Root is the chain's root message, which later messages reply to; ""
	// for a custom bot, which cannot reply.
	Root string `json:"root,omitempty"`
	// FirstSent is when the incident's first message went; a custom bot's
	// later messages name it instead of replying.
	FirstSent time.Time `json:"first_sent"`
	// Updated is when its last message went: the chain is forgotten
	// chain_ttl after it while open, dedupe_window after it once closed.
	Updated time.Time `json:"updated"`

	State State `json:"state"`
	// Resolution is what resolved a closed incident (webhook.ResolutionKey):
	// an HA peer's copy of the same resolution is not news.
	Resolution string `json:"resolution,omitempty"`
	// Last is the last notification delivered, as Alertmanager posted it,
	// from which the root card is rendered again.
	Last []byte `json:"last,omitempty"`

	Ack        *Ack       `json:"ack,omitempty"`
	Silence    *Silence   `json:"silence,omitempty"`
	Escalation Escalation `json:"escalation,omitzero"`
	// Events are the last card callbacks acted on: Feishu may deliver a
	// click twice, and the repeat is answered as the first was.
	Events []Event `json:"events,omitempty"`
}

// Event is a card callback acted on, and what its clicker was told.
type Event struct {
	ID     string          `json:"id"`
	At     time.Time       `json:"at"`
	Answer json.RawMessage `json:"answer"`
}

// maxEvents is how many callbacks an incident remembers: Feishu repeats a
// click within seconds, not after a score of others.
const maxEvents = 16

// Ack is who acknowledged an incident, and when.
type Ack struct {
	By Person    `json:"by"`
	At time.Time `json:"at"`
}

// Silence is the Alertmanager silence made from an incident's card.
type Silence struct {
	ID    string    `json:"id"`
	Until time.Time `json:"until"`
	By    Person    `json:"by"`
}

// Person is someone who acted on an incident, as Feishu names them.
type Person struct {
	OpenID string `json:"open_id"`
	Name   string `json:"name,omitempty"`
}

// Escalation is how far an incident has escalated: the steps fired so
// far, whom the last one reached, and when the next one is due (zero: none
// pending).
type Escalation struct {
	Step    int       `json:"step,omitempty"`
	Reached []string  `json:"reached,omitempty"`
	Due     time.Time `json:"due,omitzero"`
}

// New opens an incident on chain with its first message sent at now.
func New(chain string, now time.Time) *Incident {
	return &Incident{ID: NewID(chain), Chain: chain, FirstSent: now, Updated: now, State: Firing}
}

// NewID is a fresh ID for an incident of chain.
func NewID(chain string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return chain + "." + hex.EncodeToString(b)
}

// ChainOf is the chain an ID names, or "" when id has not an ID's shape.
func ChainOf(id string) string {
	chain, random, ok := strings.Cut(id, ".")
	if !ok || chain == "" || len(random) != 32 {
		return ""
	}
	return chain
}

// Is reports whether id names this incident, in constant time: a button's
// value comes from outside.
func (in *Incident) Is(id string) bool {
	return subtle.ConstantTimeCompare([]byte(in.ID), []byte(id)) == 1
}

// Open reports whether the incident's chain is still open.
func (in *Incident) Open() bool { return in.State != Resolved }

// Silenced reports whether the incident's silence is in force at now.
func (in *Incident) Silenced(now time.Time) bool {
	return in.Silence != nil && in.Silence.Until.After(now)
}

// Answered returns what the clicker of callback event was told, if the
// incident acted on it.
func (in *Incident) Answered(event string) (json.RawMessage, bool) {
	for _, e := range in.Events {
		if e.ID == event {
			return e.Answer, true
		}
	}
	return nil, false
}

// Remember records that the incident acted on callback event and what its
// clicker was told, forgetting the oldest beyond maxEvents.
func (in *Incident) Remember(event string, at time.Time, answer json.RawMessage) {
	in.Events = append(in.Events, Event{ID: event, At: at, Answer: answer})
	if n := len(in.Events); n > maxEvents {
		in.Events = append([]Event(nil), in.Events[n-maxEvents:]...)
	}
}
