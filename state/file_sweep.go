package state

import (
	"bytes"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"
)

func (f *File) sweepLoop() {
	defer f.done.Done()
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			if err := f.sweep(); err != nil {
				f.logger.Warn("sweeping expired state failed", "err", err)
			}
		}
	}
}

// sweep deletes incidents, dedupe keys and attempts past their retention.
// Due items are left to their claimers, which find the incident gone.
func (f *File) sweep() error {
	now := f.opts.now()
	return f.db.Update(func(tx *bolt.Tx) error {
		for _, b := range []struct {
			name    []byte
			expired func(v []byte) bool
		}{
			{bucketOpen, updatedBefore(now.Add(-f.opts.ChainTTL))},
			{bucketResolved, updatedBefore(now.Add(-f.opts.DedupeWindow))},
			{bucketDelivered, func(v []byte) bool {
				return len(v) != 8 || now.Sub(decodeTime(v)) >= f.opts.DedupeWindow
			}},
			{bucketAttempts, func(v []byte) bool {
				return len(v) < 8 || now.Sub(decodeTime(v[:8])) >= AttemptTTL
			}},
		} {
			bucket := tx.Bucket(b.name)
			var stale [][]byte
			c := bucket.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if b.expired(v) {
					stale = append(stale, bytes.Clone(k))
				}
			}
			for _, k := range stale {
				if err := bucket.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// updatedBefore reports whether a stored incident is unreadable or last
// updated before t. It decodes Updated alone.
func updatedBefore(t time.Time) func(v []byte) bool {
	return func(v []byte) bool {
		var in struct {
			Updated time.Time `json:"updated"`
		}
		doc, _ := splitRecord(v)
		return json.Unmarshal(doc, &in) != nil || !in.Updated.After(t)
	}
}
