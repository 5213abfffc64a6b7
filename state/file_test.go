package state

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

var opts = Options{ChainTTL: time.Hour, DedupeWindow: 10 * time.Minute}

func openFile(t *testing.T, path string) *File {
	t.Helper()
	f, err := OpenFile(path, opts, promslog.NewNopLogger())
	require.NoError(t, err)
	return f
}

func TestFileRetention(t *testing.T) {
	ctx := context.Background()
	f := openFile(t, filepath.Join(t.TempDir(), "state.db"))
	defer f.Close()
	start := time.Now()
	require.NoError(t, f.Commit(ctx, Delivery{Chain: "c", Notification: "n", Root: "om_1", At: start}))
	require.NoError(t, f.Commit(ctx, Delivery{Chain: "closed", Notification: "r", Root: "om_2", Close: true, Resolution: "res", At: start}))

	f.now = func() time.Time { return start.Add(opts.DedupeWindow + time.Second) }
	rec, err := f.Load(ctx, "c", "n")
	require.NoError(t, err)
	require.Equal(t, Record{Root: "om_1"}, rec, "past the dedupe window the notification may be sent again")

	f.now = func() time.Time { return start.Add(opts.ChainTTL + time.Second) }
	rec, err = f.Load(ctx, "c", "n")
	require.NoError(t, err)
	require.Equal(t, Record{}, rec, "past the chain TTL a new chain starts")

	require.NoError(t, f.sweep())
	n, err := f.Chains(ctx)
	require.NoError(t, err)
	require.Equal(t, 0, n, "the sweep deletes what expired")
	require.NoError(t, f.db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketChains, bucketClosed, bucketDelivered, bucketAttempts} {
			require.Zero(t, tx.Bucket(b).Stats().KeyN, "bucket %s swept", b)
		}
		return nil
	}))
}

func TestFileSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	f := openFile(t, path)
	require.NoError(t, f.Commit(ctx, Delivery{Chain: "c", Notification: "n", Root: "om_1", At: time.Now()}))
	require.NoError(t, f.Close())

	f = openFile(t, path)
	defer f.Close()
	rec, err := f.Load(ctx, "c", "n")
	require.NoError(t, err)
	require.Equal(t, Record{Root: "om_1", Delivered: true}, rec)
}

func TestFileIsExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	f := openFile(t, path)
	defer f.Close()
	_, err := OpenFile(path, opts, promslog.NewNopLogger())
	require.ErrorContains(t, err, "locked by another process")
}

func TestLockEntriesDoNotOutliveTheirHolders(t *testing.T) {
	f := openFile(t, filepath.Join(t.TempDir(), "state.db"))
	defer f.Close()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			unlock, err := f.Lock(context.Background(), "group")
			if assertNoError(t, err) {
				unlock()
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	unlock, err := f.Lock(context.Background(), "held")
	require.NoError(t, err)
	_, err = f.Lock(ctx, "held")
	require.Error(t, err)
	unlock()
	require.Empty(t, f.locks.m, "no entry outlives its holders or a waiter that gave up")
}

// An attempt's key survives a restart until the notification is committed,
// and is forgotten an hour on, when Feishu's uuid window has passed.
func TestFileAttempts(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	f := openFile(t, path)
	start := time.Now()
	require.NoError(t, f.Begin(ctx, "c", "n", "uuid-1", start))
	require.NoError(t, f.Close())

	f = openFile(t, path)
	defer f.Close()
	rec, err := f.Load(ctx, "c", "n")
	require.NoError(t, err)
	require.Equal(t, Record{Attempt: "uuid-1"}, rec)

	f.now = func() time.Time { return start.Add(AttemptTTL) }
	rec, err = f.Load(ctx, "c", "n")
	require.NoError(t, err)
	require.Empty(t, rec.Attempt, "past Feishu's uuid window the key is no use")
	require.NoError(t, f.sweep())
	f.now = time.Now
	rec, err = f.Load(ctx, "c", "n")
	require.NoError(t, err)
	require.Empty(t, rec.Attempt, "the sweep deleted it")

	require.NoError(t, f.Begin(ctx, "c", "n", "uuid-2", start))
	require.NoError(t, f.Commit(ctx, Delivery{Chain: "c", Notification: "n", Root: "om_1", At: start}))
	rec, err = f.Load(ctx, "c", "n")
	require.NoError(t, err)
	require.Equal(t, Record{Root: "om_1", Delivered: true}, rec, "a delivered notification has no attempt left")
}
