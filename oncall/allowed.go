package oncall

import (
	"context"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

// Allows reports whether the person who clicked a card (Feishu names them
// by open_id, and by user_id when the app may read it) is one allowed may
// act: one of its users, or the current member of one of its rotations.
// Empty allows anyone. People named by email are looked up as mentions
// are; a failed lookup is returned with the answer for those it could
// tell, so that the caller can say why.
func (p *Policy) Allows(ctx context.Context, allowed config.Allowed, openID, userID string) (bool, error) {
	if allowed.Empty() {
		return true, nil
	}
	people := scheduled(p.rotations, &config.Mentions{OnCall: allowed.OnCall, Users: allowed.Users}, p.now())
	var emails []string
	for _, person := range people {
		switch {
		case person.OpenID != "" && person.OpenID == openID:
			return true, nil
		case person.UserID != "" && person.UserID == userID:
			return true, nil
		case person.Email != "":
			emails = append(emails, person.Email)
		}
	}
	if len(emails) == 0 || p.directory == nil || openID == "" {
		return false, nil
	}
	lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	found, err := p.directory.Resolve(lctx, emails)
	for _, id := range found {
		if id == openID {
			return true, nil
		}
	}
	return false, err
}
