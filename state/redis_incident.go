package state

import (
	"cmp"
	"context"
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

// incidents are the chain's open and closed incidents (one of them at most)
// from the values of incidentKeys (and maybe more after them).
//
// A record is the truth while the first release's keys say what its commit
// wrote there, or nothing: they expired with it, or a later release wrote
// it without them. When they say otherwise, a replica of the first release
// wrote after the record, in a rolling update: they win for what they
// carry, the root, open or closed, resolution and time, and the record
// keeps the rest.
func (r *Redis) incidents(ctx context.Context, chain string, vals []any) (open, closed *incident.Incident, err error) {
	var rec *incident.Incident
	for _, v := range []string{str(vals[0]), str(vals[1])} {
		if v != "" {
			if rec, err = decodeIncident(chain, []byte(v)); err != nil {
				return nil, nil, err
			}
			break
		}
	}
	root, closedV := str(vals[2]), str(vals[3])
	if rec != nil && agrees(rec, root, closedV) {
		return split(rec)
	}

	var old *incident.Incident
	switch {
	case root != "":
		old, err = r.legacy(ctx, chain, "root", root, legacyChain{Root: root}, incident.Firing, r.opts.ChainTTL)
	case closedV != "":
		var c legacyChain
		c.Resolution, c.Root, _ = strings.Cut(closedV, " ")
		old, err = r.legacy(ctx, chain, "closed", closedV, c, incident.Resolved, r.opts.DedupeWindow)
	}
	if err != nil {
		return nil, nil, err
	}
	if old == nil || rec == nil { // no old key (it expired since it was read), or no record
		return split(cmp.Or(old, rec))
	}
	in := overlay(rec, old)
	if err := r.repair(ctx, chain, vals, in); err != nil {
		r.logger.Warn("storing what an old replica wrote to a chain failed", "chain", chain, "err", err)
	}
	return split(in)
}

// agrees reports whether the first release's keys, root and closed, say
// what a commit of in wrote there, or nothing.
func agrees(in *incident.Incident, root, closed string) bool {
	if in.Open() {
		if root != "" {
			return root == legacyValue(in)
		}
		return closed == ""
	}
	return root == "" && (closed == "" || closed == legacyValue(in))
}

// overlay is the incident that an old replica's write, read as old, made of
// record rec. While rec is open the write re-rooted it (Feishu lost the
// root) or closed it; rec keeps its ID, labels, body, acknowledgement,
// silence and escalation. A closed chain an old replica can only reopen,
// with an incident of its own, which has of rec its group alone.
func overlay(rec, old *incident.Incident) *incident.Incident {
	if !rec.Open() {
		old.Receiver, old.Target, old.GroupKey = rec.Receiver, rec.Target, rec.GroupKey
		old.GroupLabels, old.CommonLabels = rec.GroupLabels, rec.CommonLabels
		return old
	}
	in := *rec
	in.Root, in.State, in.Resolution, in.Updated = old.Root, old.State, old.Resolution, old.Updated
	if old.Root == "" { // a custom bot's, where its first send is kept instead
		in.FirstSent = old.FirstSent
	}
	return &in
}

// repair stores in, what an old replica's write made of the record in
// vals, in place of the record.
func (r *Redis) repair(ctx context.Context, chain string, vals []any, in *incident.Incident) error {
	record, err := encodeRecord(in)
	if err != nil {
		return err
	}
	resolved := "0"
	if !in.Open() {
		resolved = "1"
	}
	return repair.Run(ctx, r.client, r.incidentKeys(chain),
		str(vals[0]), str(vals[1]), str(vals[2]), str(vals[3]), record, resolved).Err()
}

// str is a value MGET read: "" for a key that is not there.
func str(v any) string {
	s, _ := v.(string)
	return s
}

// split files in as the open or the closed incident.
func split(in *incident.Incident) (open, closed *incident.Incident, err error) {
	if in == nil || in.Open() {
		return in, nil, nil
	}
	return nil, in, nil
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
	c.Updated = r.opts.now().Add(left - ttl).UTC() // as a record gives it back
	return legacyIncident(legacyID(chain, value), chain, c, state), nil
}
