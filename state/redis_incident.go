package state

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
)

// incidentKeys are where a chain's incidents may be, in this order: open,
// resolved, and the first release's root and closed.
func (r *Redis) incidentKeys(chain string) []string {
	return []string{r.key(chain, "open"), r.key(chain, "resolved"), r.key(chain, "root"), r.key(chain, "closed")}
}

// openIncident is the chain's open incident from the values of incidentKeys (and
// maybe more after them); nil for none.
func (r *Redis) openIncident(ctx context.Context, chain string, vals []any) (*incident.Incident, error) {
	if v, _ := vals[0].(string); v != "" {
		return decodeIncident(chain, v)
	}
	root, _ := vals[2].(string)
	if root == "" {
		return nil, nil
	}
	c := legacyChain{Root: root}
	return r.legacy(ctx, chain, "root", root, c, incident.Firing, r.opts.ChainTTL)
}

// closedIncident is the chain's closed incident from the values of incidentKeys;
// nil for none.
func (r *Redis) closedIncident(ctx context.Context, chain string, vals []any) (*incident.Incident, error) {
	if v, _ := vals[1].(string); v != "" {
		return decodeIncident(chain, v)
	}
	v, _ := vals[3].(string)
	if v == "" {
		return nil, nil
	}
	var c legacyChain
	c.Resolution, c.Root, _ = strings.Cut(v, " ")
	return r.legacy(ctx, chain, "closed", v, c, incident.Resolved, r.opts.DedupeWindow)
}

// legacy is the incident a first-release key of kind stands for. That
// release kept no time with the value; the key's expiry, set ttl after the
// chain's last message, tells it.
func (r *Redis) legacy(ctx context.Context, chain, kind, value string, c legacyChain, state incident.State, ttl time.Duration) (*incident.Incident, error) {
	left, err := r.client.PTTL(ctx, r.key(chain, kind)).Result()
	if err != nil {
		return nil, fmt.Errorf("expiry of chain %s's %s: %w", chain, kind, err)
	}
	switch left {
	case -2: // expired since it was read
		return nil, nil
	case -1: // no expiry, which the first release never left: take it as new
		left = ttl
	}
	c.Updated = r.opts.now().Add(left - ttl)
	return legacyIncident(legacyID(chain, value), chain, c, state), nil
}

func decodeIncident(chain, v string) (*incident.Incident, error) {
	in := new(incident.Incident)
	if err := json.Unmarshal([]byte(v), in); err != nil {
		return nil, fmt.Errorf("incident of chain %s: %w", chain, err)
	}
	return in, nil
}
