package state

import (
	"encoding/json"
	"fmt"
	"log/slog"

	bolt "go.etcd.io/bbolt"

	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
)

// schemaVersion is the file's layout: 1 (no meta bucket) is the first
// release's bare chains, 2 the incident records.
const schemaVersion = "2"

var keySchema = []byte("schema")

// The first release's buckets of chains. Its delivered and attempts buckets
// mean what they meant and are kept as they are.
var (
	bucketLegacyChains = []byte("chains")
	bucketLegacyClosed = []byte("closed")
)

// migrate brings the file to schemaVersion in tx, the caller's one
// transaction: a crash midway leaves the old file, converted on the next
// start. A file from a newer release is refused rather than misread.
//
// Unlike Redis, the file keeps nothing of the first release's shape after
// this: one process owns it (bbolt locks it), so no replica of the first
// release can be reading it while this one writes.
func migrate(tx *bolt.Tx, logger *slog.Logger) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	switch v := meta.Get(keySchema); {
	case v == nil:
	case string(v) == schemaVersion:
		return nil
	default:
		return fmt.Errorf("schema version %q is unknown to this release; was it written by a newer one?", v)
	}
	for _, b := range [][]byte{bucketOpen, bucketResolved, bucketDelivered, bucketAttempts, bucketDue, bucketDueIDs} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	var converted, unreadable int
	for _, old := range []struct {
		name, into []byte
		state      incident.State
	}{
		{bucketLegacyChains, bucketOpen, incident.Firing},
		{bucketLegacyClosed, bucketResolved, incident.Resolved},
	} {
		from := tx.Bucket(old.name)
		if from == nil {
			continue
		}
		records := map[string][]byte{}
		err := from.ForEach(func(k, v []byte) error {
			var c legacyChain
			if json.Unmarshal(v, &c) != nil {
				unreadable++ // the first release's sweep would have deleted it
				return nil
			}
			chain := string(k)
			in := legacyIncident(incident.NewID(chain), chain, c, old.state)
			b, err := encodeRecord(in)
			records[chain] = b
			return err
		})
		if err != nil {
			return fmt.Errorf("convert bucket %s: %w", old.name, err)
		}
		into := tx.Bucket(old.into)
		for chain, b := range records {
			if err := into.Put([]byte(chain), b); err != nil {
				return err
			}
		}
		converted += len(records)
		if err := tx.DeleteBucket(old.name); err != nil {
			return err
		}
	}
	if err := meta.Put(keySchema, []byte(schemaVersion)); err != nil {
		return err
	}
	if converted+unreadable > 0 {
		logger.Info("converted the state file's chains to incident records", "converted", converted, "unreadable", unreadable)
	}
	return nil
}
