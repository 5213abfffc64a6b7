package oncall

import (
	"context"
	"strings"
	"sync"
	"time"
)

// Lookup resolves emails to open_ids; a missing email is not known.
// feishu.Client's LookupEmails is one.
type Lookup interface {
	LookupEmails(ctx context.Context, emails []string) (map[string]string, error)
}

// How long the Directory trusts what it learnt: a found open_id does not
// change while the person exists; a miss may be fixed by an administrator
// sooner.
const (
	foundTTL    = time.Hour
	notFoundTTL = 5 * time.Minute
)

// Directory resolves emails to open_ids through Feishu's contacts lookup,
// remembering answers so that a notification costs no lookup most of the
// time. When a lookup fails, what it knew before is still used.
type Directory struct {
	lookup Lookup
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]entry // by lower-case email
}

type entry struct {
	openID string // "" when Feishu knows no such user
	until  time.Time
}

// NewDirectory returns a directory asking lookup.
func NewDirectory(lookup Lookup) *Directory {
	return &Directory{lookup: lookup, now: time.Now, entries: map[string]entry{}}
}

// Resolve returns the open_ids of the emails it could resolve, and the
// error of the lookup, if one was needed and failed.
func (d *Directory) Resolve(ctx context.Context, emails []string) (map[string]string, error) {
	now := d.now()
	found := map[string]string{}
	var ask []string
	d.mu.Lock()
	for _, e := range emails {
		en, ok := d.entries[strings.ToLower(e)]
		if ok && en.openID != "" {
			found[e] = en.openID
		}
		if !ok || now.After(en.until) {
			ask = append(ask, e)
		}
	}
	d.mu.Unlock()
	if len(ask) == 0 {
		return found, nil
	}
	answer, err := d.lookup.LookupEmails(ctx, ask)
	if err != nil {
		// Stale answers beat none; the next notification asks again.
		return found, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range ask {
		id := answer[e]
		ttl := foundTTL
		if id == "" {
			ttl = notFoundTTL
			delete(found, e)
		} else {
			found[e] = id
		}
		d.entries[strings.ToLower(e)] = entry{openID: id, until: now.Add(ttl)}
	}
	return found, nil
}
