package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
)

// Schedule implements Store.
func (f *File) Schedule(_ context.Context, id string, at time.Time) error {
	if incident.ChainOf(id) == "" {
		return errors.New("schedule: malformed incident id")
	}
	err := f.db.Batch(func(tx *bolt.Tx) error {
		return setDue(tx, id, at)
	})
	if err != nil {
		return fmt.Errorf("schedule: %w", err)
	}
	return nil
}

// Unschedule implements Store.
func (f *File) Unschedule(_ context.Context, id string) error {
	err := f.db.Batch(func(tx *bolt.Tx) error {
		ids := tx.Bucket(bucketDueIDs)
		if k := ids.Get([]byte(id)); k != nil {
			if err := tx.Bucket(bucketDue).Delete(bytes.Clone(k)); err != nil {
				return err
			}
		}
		return ids.Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("unschedule: %w", err)
	}
	return nil
}

// Due implements Store. One write transaction finds and moves the items, so
// two callers cannot claim one.
func (f *File) Due(_ context.Context, now time.Time, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, nil
	}
	// Every replica polls several times a second: a look first, so that
	// an idle poll neither writes (bbolt syncs every write transaction)
	// nor waits for the writer that notifications need.
	var any bool
	if err := f.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketDue).Cursor().First()
		any = k != nil && bytes.Compare(k[:8], dueKey(now, "")) <= 0
		return nil
	}); err != nil {
		return nil, fmt.Errorf("claim due incidents: %w", err)
	}
	if !any {
		return nil, nil
	}
	var claimed []string
	err := f.db.Update(func(tx *bolt.Tx) error {
		claimed = claimed[:0]
		end := dueKey(now, "")
		c := tx.Bucket(bucketDue).Cursor()
		for k, _ := c.First(); k != nil && len(claimed) < limit; k, _ = c.Next() {
			if bytes.Compare(k[:8], end) > 0 {
				break
			}
			claimed = append(claimed, string(k[8:]))
		}
		for _, id := range claimed {
			if err := setDue(tx, id, now.Add(ClaimTTL)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim due incidents: %w", err)
	}
	return claimed, nil
}

// setDue files id under at in due, replacing its earlier time.
func setDue(tx *bolt.Tx, id string, at time.Time) error {
	due, ids := tx.Bucket(bucketDue), tx.Bucket(bucketDueIDs)
	if old := ids.Get([]byte(id)); old != nil {
		if err := due.Delete(bytes.Clone(old)); err != nil {
			return err
		}
	}
	k := dueKey(at, id)
	if err := due.Put(k, []byte{}); err != nil {
		return err
	}
	return ids.Put([]byte(id), k)
}

// dueKey orders due items by time, then ID. Times before 1970 (a zero
// time: due at once) sort first.
func dueKey(at time.Time, id string) []byte {
	if at.Before(time.Unix(0, 0)) {
		at = time.Unix(0, 0)
	}
	return append(encodeTime(at), id...)
}
