package oncall

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
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
	Email  string
	Reason string // not_found, lookup_failed, or no_app (nothing to look up with)
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

	var emails []string
	seenEmail := map[string]bool{}
	for _, person := range people {
		if e := strings.ToLower(person.Email); e != "" && !seenEmail[e] {
			seenEmail[e] = true
			emails = append(emails, person.Email)
		}
	}
	resolved := map[string]string{} // by lower-case email
	if len(emails) > 0 && p.directory == nil {
		for _, e := range emails {
			out.Unresolved = append(out.Unresolved, Unresolved{Email: e, Reason: "no_app"})
		}
		emails = nil
	}
	if len(emails) > 0 {
		lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		found, err := p.directory.Resolve(lctx, emails)
		cancel()
		for e, id := range found {
			resolved[strings.ToLower(e)] = id
		}
		if err != nil {
			logger.Warn("contacts lookup failed; people it could not resolve are named without a mention", "err", err)
		}
		for _, e := range emails {
			if _, ok := resolved[strings.ToLower(e)]; ok {
				continue
			}
			reason := "not_found"
			if err != nil {
				reason = "lookup_failed"
			}
			logger.Warn("cannot mention a person: no open_id for the email", "email", e, "reason", reason)
			out.Unresolved = append(out.Unresolved, Unresolved{Email: e, Reason: reason})
		}
	}

	seenID := map[string]bool{}
	for _, person := range people {
		id := person.OpenID
		if id == "" {
			id = person.UserID
		}
		if person.Email != "" {
			id = resolved[strings.ToLower(person.Email)]
		}
		if id != "" && !seenID[id] {
			seenID[id] = true
			out.IDs = append(out.IDs, id)
		}
	}
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
