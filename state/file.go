package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
)

// Bucket layout of the file:
//
//	meta       "schema" -> layout version, so that the migration runs once
//	open       chain -> open incident (see encodeRecord), swept ChainTTL after its Updated
//	resolved   chain -> closed incident, swept DedupeWindow after its Updated
//	delivered  notification -> big-endian UnixNano of its delivery
//	attempts   notification -> big-endian UnixNano of the attempt, then its key
//	due        big-endian UnixNano of the due time, then the incident ID -> ""
//	due-ids    incident ID -> its key in due, to replace or cancel it
var (
	bucketMeta      = []byte("meta")
	bucketOpen      = []byte("open")
	bucketResolved  = []byte("resolved")
	bucketDelivered = []byte("delivered")
	bucketAttempts  = []byte("attempts")
	bucketDue       = []byte("due")
	bucketDueIDs    = []byte("due-ids")
)

// sweepEvery is how often expired entries are deleted from the file.
const sweepEvery = time.Minute

// File is the embedded store: one bbolt file, used by one process.
type File struct {
	db     *bolt.DB
	writes *group
	opts   Options
	locks  *locks
	logger *slog.Logger

	stop      chan struct{}
	done      sync.WaitGroup
	closeOnce sync.Once // a second Close does nothing, as Redis's
}

// OpenFile opens (or creates) the store at path, converting a file of the
// first release. bbolt holds an exclusive lock on the file, so a second
// process using the same path fails here rather than corrupting the first
// one's state.
func OpenFile(path string, opts Options, logger *slog.Logger) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("state file %s is locked by another process", path)
		}
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	// The due list's writes still go through bbolt's Batch: a lone one
	// waits at most this long for company.
	db.MaxBatchDelay = time.Millisecond
	if err := db.Update(func(tx *bolt.Tx) error { return migrate(tx, logger) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	f := &File{db: db, writes: &group{db: db}, opts: opts, locks: newLocks(), logger: logger, stop: make(chan struct{})}
	f.done.Add(1)
	go f.sweepLoop()
	return f, nil
}

// Lock takes chain's lock within this process, which is the only one that
// can use the file.
func (f *File) Lock(ctx context.Context, chain string) (func(), error) {
	return f.locks.lock(ctx, chain)
}

// Load implements Store.
func (f *File) Load(_ context.Context, chain, notification string) (Loaded, error) {
	var l Loaded
	now := f.opts.now()
	err := f.db.View(func(tx *bolt.Tx) error {
		var err error
		if l.Incident, err = f.read(tx, bucketOpen, chain, now); err != nil {
			return err
		}
		if l.Incident == nil {
			if l.Closed, err = f.read(tx, bucketResolved, chain, now); err != nil {
				return err
			}
		}
		if v := tx.Bucket(bucketDelivered).Get([]byte(notification)); len(v) == 8 {
			l.Delivered = now.Sub(decodeTime(v)) < f.opts.DedupeWindow
		}
		if v := tx.Bucket(bucketAttempts).Get([]byte(notification)); len(v) > 8 && now.Sub(decodeTime(v[:8])) < AttemptTTL {
			l.Attempt = string(v[8:])
		}
		return nil
	})
	if err != nil {
		return Loaded{}, fmt.Errorf("load state: %w", err)
	}
	return l, nil
}

// Get implements Store.
func (f *File) Get(_ context.Context, id string) (*incident.Incident, error) {
	chain := incident.ChainOf(id)
	if chain == "" {
		return nil, ErrNotFound
	}
	var found *incident.Incident
	now := f.opts.now()
	err := f.db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketOpen, bucketResolved} {
			in, err := f.read(tx, b, chain, now)
			if err != nil {
				return err
			}
			if in != nil && in.Is(id) {
				found = in
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get incident: %w", err)
	}
	if found == nil {
		return nil, ErrNotFound
	}
	return found, nil
}

// read decodes chain's incident in bucket; nil when there is none or it
// expired.
func (f *File) read(tx *bolt.Tx, bucket []byte, chain string, now time.Time) (*incident.Incident, error) {
	v := tx.Bucket(bucket).Get([]byte(chain))
	if v == nil {
		return nil, nil
	}
	in, err := decodeRecord(v)
	if err != nil {
		return nil, fmt.Errorf("incident of chain %s in bucket %s: %w", chain, bucket, err)
	}
	in.Last = bytes.Clone(in.Last) // v is the file's only while tx lasts
	if now.Sub(in.Updated) >= f.ttl(bucket) {
		return nil, nil
	}
	return in, nil
}

// ttl is how long an incident in bucket is kept after its last message.
func (f *File) ttl(bucket []byte) time.Duration {
	if bytes.Equal(bucket, bucketResolved) {
		return f.opts.DedupeWindow
	}
	return f.opts.ChainTTL
}

// Begin implements Store.
func (f *File) Begin(_ context.Context, _, notification, attempt string, at time.Time) error {
	err := f.writes.do(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAttempts).Put([]byte(notification), append(encodeTime(at), attempt...))
	})
	if err != nil {
		return fmt.Errorf("record attempt: %w", err)
	}
	return nil
}

// Commit implements Store. Only this process uses the file, so the fence is
// whether the chain's lock is taken here at all.
func (f *File) Commit(_ context.Context, w Write) error {
	if err := checkWrite(w); err != nil {
		return err
	}
	chain := []byte(w.Incident.Chain)
	if !f.locks.held(w.Incident.Chain) {
		return fmt.Errorf("commit state: %w", ErrLockLost)
	}
	record, err := encodeRecord(w.Incident)
	if err != nil {
		return fmt.Errorf("commit state: %w", err)
	}
	// Commits of concurrent notifications share one fsync.
	err = f.writes.do(func(tx *bolt.Tx) error {
		if w.Notification != "" {
			if err := tx.Bucket(bucketDelivered).Put([]byte(w.Notification), encodeTime(w.At)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketAttempts).Delete([]byte(w.Notification)); err != nil {
				return err
			}
		}
		// An incident is in one bucket or the other: open ones alone are
		// counted, and a firing after a closure starts afresh.
		into, from := tx.Bucket(bucketOpen), tx.Bucket(bucketResolved)
		if !w.Incident.Open() {
			into, from = from, into
		}
		if err := from.Delete(chain); err != nil {
			return err
		}
		return into.Put(chain, record)
	})
	if err != nil {
		return fmt.Errorf("commit state: %w", err)
	}
	return nil
}

// Chains implements Store. Expired incidents not yet swept are counted too.
func (f *File) Chains(context.Context) (int, error) {
	var n int
	err := f.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketOpen).Stats().KeyN
		return nil
	})
	return n, err
}

// Ping implements Store.
func (f *File) Ping(context.Context) error {
	return f.db.View(func(*bolt.Tx) error { return nil })
}

// Close stops the sweeper and closes the file.
func (f *File) Close() error {
	var err error
	f.closeOnce.Do(func() {
		close(f.stop)
		f.done.Wait()
		err = f.db.Close()
	})
	return err
}

func encodeTime(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano()))
}

func decodeTime(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)))
}
