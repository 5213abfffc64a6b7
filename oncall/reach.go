package oncall

import (
	"context"
	"log/slog"
	"strings"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

// Reach returns whom an escalation step reaches now: the current member of
// each of its rotations, then its users, resolved as For resolves them, so
// that a step names the people a notification would. A rotation with
// nobody on call (before its start) adds no one.
func (p *Policy) Reach(ctx context.Context, m config.StepMention) Mentions {
	people := scheduled(p.rotations, &config.Mentions{OnCall: m.OnCall, Users: m.Users}, p.now())
	var out Mentions
	out.IDs, out.Unresolved = p.resolve(ctx, people, p.logger.With("escalation", true))
	return out
}

// resolve turns people into the IDs to mention, each once, in their order:
// open_ids and user_ids as given, emails through the directory. Those it
// cannot resolve, and why, are logged and returned: a message names them
// in plain text instead. A failed lookup never blocks; what the directory
// knew is still used.
func (p *Policy) resolve(ctx context.Context, people []config.Person, logger *slog.Logger) (ids []string, unresolved []Unresolved) {
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
			unresolved = append(unresolved, Unresolved{Email: e, Reason: "no_app"})
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
			unresolved = append(unresolved, Unresolved{Email: e, Reason: reason})
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
			ids = append(ids, id)
		}
	}
	return ids, unresolved
}
