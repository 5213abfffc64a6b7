package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketChains    = []byte("chains")
	bucketDelivered = []byte("delivered")
	bucketAttempts  = []byte("attempts")
	bucketClosed    = []byte("closed")
)

// sweepEvery is how often expired entries are deleted from the file.
const sweepEvery = time.Minute

// File is the embedded store: one bbolt file, used by one process.
type File struct {
	db     *bolt.DB
	opts   Options
	locks  *locks
	logger *slog.Logger
	now    func() time.Time

	stop chan struct{}
	done sync.WaitGroup
}

type chainValue struct {
	Root       string    `json:"root"`
	Resolution string    `json:"resolution,omitempty"` // closed chains only
	Updated    time.Time `json:"updated"`
}

// OpenFile opens (or creates) the store at path. bbolt holds an exclusive
// lock on the file, so a second process using the same path fails here
// rather than corrupting the first one's state.
func OpenFile(path string, opts Options, logger *slog.Logger) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("state file %s is locked by another process", path)
		}
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	// Commits of concurrent notifications share one fsync; a lone commit
	// waits at most this long for company.
	db.MaxBatchDelay = time.Millisecond
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketChains, bucketDelivered, bucketAttempts, bucketClosed} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	f := &File{db: db, opts: opts, locks: newLocks(), logger: logger, now: time.Now, stop: make(chan struct{})}
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
func (f *File) Load(_ context.Context, chain, notification string) (Record, error) {
	var r Record
	now := f.now()
	err := f.db.View(func(tx *bolt.Tx) error {
		open, ok, err := readChain(tx, bucketChains, chain, f.opts.ChainTTL, now)
		if err != nil {
			return err
		}
		if ok {
			r.Root = open.Root
		}
		closed, ok, err := readChain(tx, bucketClosed, chain, f.opts.DedupeWindow, now)
		if err != nil {
			return err
		}
		if ok && r.Root == "" {
			r.Closed = Closure{Root: closed.Root, Resolution: closed.Resolution}
		}
		if v := tx.Bucket(bucketDelivered).Get([]byte(notification)); len(v) == 8 {
			r.Delivered = now.Sub(decodeTime(v)) < f.opts.DedupeWindow
		}
		if v := tx.Bucket(bucketAttempts).Get([]byte(notification)); len(v) > 8 && now.Sub(decodeTime(v[:8])) < AttemptTTL {
			r.Attempt = string(v[8:])
		}
		return nil
	})
	if err != nil {
		return Record{}, fmt.Errorf("load state: %w", err)
	}
	return r, nil
}

// readChain decodes the value stored for chain in bucket; ok is false when
// there is none or it is older than ttl.
func readChain(tx *bolt.Tx, bucket []byte, chain string, ttl time.Duration, now time.Time) (c chainValue, ok bool, err error) {
	v := tx.Bucket(bucket).Get([]byte(chain))
	if v == nil {
		return c, false, nil
	}
	if err := json.Unmarshal(v, &c); err != nil {
		return c, false, fmt.Errorf("chain %s in bucket %s: %w", chain, bucket, err)
	}
	return c, now.Sub(c.Updated) < ttl, nil
}

// Begin implements Store.
func (f *File) Begin(_ context.Context, _, notification, attempt string, at time.Time) error {
	err := f.db.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAttempts).Put([]byte(notification), append(encodeTime(at), attempt...))
	})
	if err != nil {
		return fmt.Errorf("record attempt: %w", err)
	}
	return nil
}

// Commit implements Store.
func (f *File) Commit(_ context.Context, d Delivery) error {
	cv := chainValue{Root: d.Root, Updated: d.At}
	if d.Close {
		cv.Resolution = d.Resolution
	}
	chain, err := json.Marshal(cv)
	if err != nil {
		return err
	}
	err = f.db.Batch(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketDelivered).Put([]byte(d.Notification), encodeTime(d.At)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketAttempts).Delete([]byte(d.Notification)); err != nil {
			return err
		}
		// A chain is in one bucket or the other: open chains alone are
		// counted, and a firing after a closure starts afresh.
		into, from := tx.Bucket(bucketChains), tx.Bucket(bucketClosed)
		if d.Close {
			into, from = from, into
		}
		if err := from.Delete([]byte(d.Chain)); err != nil {
			return err
		}
		return into.Put([]byte(d.Chain), chain)
	})
	if err != nil {
		return fmt.Errorf("commit state: %w", err)
	}
	return nil
}

// Chains implements Store. Expired chains not yet swept are counted too.
func (f *File) Chains(context.Context) (int, error) {
	var n int
	err := f.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketChains).Stats().KeyN
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
	close(f.stop)
	f.done.Wait()
	return f.db.Close()
}

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

// sweep deletes chains, closures, dedupe keys and attempts past their
// retention.
func (f *File) sweep() error {
	now := f.now()
	return f.db.Update(func(tx *bolt.Tx) error {
		for _, b := range []struct {
			name    []byte
			expired func(v []byte) bool
		}{
			{bucketChains, chainOlder(f.opts.ChainTTL, now)},
			{bucketClosed, chainOlder(f.opts.DedupeWindow, now)},
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

// chainOlder reports whether a stored chain value is unreadable or older
// than ttl.
func chainOlder(ttl time.Duration, now time.Time) func(v []byte) bool {
	return func(v []byte) bool {
		var cv chainValue
		return json.Unmarshal(v, &cv) != nil || now.Sub(cv.Updated) >= ttl
	}
}

func encodeTime(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano()))
}

func decodeTime(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)))
}
