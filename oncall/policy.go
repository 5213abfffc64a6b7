package oncall

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// Mentions is whom one notification mentions. Only these become mention
// markup: nothing in the payload can add to them.
type Mentions struct {
	IDs []string // open_ids and user_ids, each once, in policy order
	All bool     // @all
	// Unresolved are people given by email whom Feishu could not name an
	// open_id for: the message names them in plain text instead.
	Unresolved []Unresolved
}

// Unresolved is a person who could not be mentioned, and why.
type Unresolved struct {
	// Email names the person: their email, or the ID of a mention Feishu
	// refused, the only name the message had for them.
	Email string
	// Reason is not_found, lookup_failed, no_app (nothing to look up
	// with), or refused (Feishu refused the message for the mention).
	Reason string
}

// Unmentioned is m for a message Feishu refused for its mentions: everyone
// it mentions is named in plain text instead, with reason, and @all is
// dropped, so that the alert still goes out.
func (m Mentions) Unmentioned(reason string) Mentions {
	out := Mentions{Unresolved: slices.Clone(m.Unresolved)}
	for _, id := range m.IDs {
		out.Unresolved = append(out.Unresolved, Unresolved{Email: id, Reason: reason})
	}
	return out
}

// Policy applies receivers' mention policies.
type Policy struct {
	rotations map[string]*Rotation
	directory *Directory
	logger    *slog.Logger
	now       func() time.Time
}

// NewPolicy reads the rotations of a validated configuration; emails are
// resolved through lookup. With no lookup (custom bots without an app,
// which cannot look anyone up) people named by email are named, not
// mentioned.
func NewPolicy(rotations []*config.Rotation, lookup Lookup, logger *slog.Logger) (*Policy, error) {
	rots, err := newRotations(rotations)
	if err != nil {
		return nil, err
	}
	p := &Policy{rotations: rots, logger: logger, now: time.Now}
	if lookup != nil {
		p.directory = NewDirectory(lookup)
	}
	return p, nil
}

// newRotations reads rotations, by name.
func newRotations(rotations []*config.Rotation) (map[string]*Rotation, error) {
	out := map[string]*Rotation{}
	for _, r := range rotations {
		rot, err := NewRotation(r)
		if err != nil {
			return nil, err
		}
		out[r.Name] = rot
	}
	return out, nil
}

// scheduled are the people m names whatever the group: the current member
// of each of its rotations at t, then its users.
func scheduled(rotations map[string]*Rotation, m *config.Mentions, t time.Time) []config.Person {
	var people []config.Person
	for _, name := range m.OnCall {
		if person, ok := rotations[name].At(t); ok {
			people = append(people, person)
		}
	}
	return append(people, m.Users...)
}

// lookupTimeout bounds the contacts lookup of one notification: a slow
// lookup must not hold the alert back.
const lookupTimeout = 2 * time.Second

var (
	emailRe  = regexp.MustCompile(`^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$`)
	openIDRe = regexp.MustCompile(`^ou_[0-9A-Za-z]+$`)
)

// For returns whom p's notification to rc mentions.
func (p *Policy) For(ctx context.Context, rc *config.Receiver, pl *webhook.Payload) Mentions {
	var out Mentions
	m := rc.Mentions
	if m == nil || (pl.Resolved() && !m.OnResolved) {
		return out
	}
	logger := p.logger.With("receiver", rc.Name, "group_key", pl.GroupKey)

	people := scheduled(p.rotations, m, p.now())
	if m.FromLabel != "" {
		people = append(people, p.fromLabel(pl.CommonLabels[m.FromLabel], m.FromLabel, logger)...)
	}
	if len(m.AllWhenMatchers) > 0 && m.AllWhenMatchers.Matches(pl.CommonLabelSet()) {
		out.All = true
	}

	out.IDs, out.Unresolved = p.resolve(ctx, people, logger)
	return out
}

// fromLabel reads the people a label's value names: comma-separated emails
// or open_ids. Anything else, and "all", is ignored: a label must not be
// able to reach everyone or inject markup.
// maxFromLabel is the most people a mention label may name.
const maxFromLabel = 20

func (p *Policy) fromLabel(value, label string, logger *slog.Logger) []config.Person {
	var people []config.Person
	for _, v := range strings.Split(value, ",") {
		v = strings.TrimSpace(v)
		switch {
		case v == "":
		case len(people) == maxFromLabel:
			// A label is alert content: it must not page a whole
			// department, nor make a lookup of thousands of emails.
			logger.Warn("mention label names too many people; the rest are not mentioned", "label", label, "max", maxFromLabel)
			return people
		case emailRe.MatchString(v):
			people = append(people, config.Person{Email: v})
		case openIDRe.MatchString(v):
			people = append(people, config.Person{OpenID: v})
		default:
			logger.Warn("ignoring a value of the mention label: not an email or open_id", "label", label, "value", fmt.Sprintf("%.64q", v))
		}
	}
	return people
}
