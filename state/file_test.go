package state

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

var opts = Options{ChainTTL: time.Hour, DedupeWindow: 10 * time.Minute}

// clock is a settable time for a file store's Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func openFile(t *testing.T, path string, o Options) *File {
	t.Helper()
	f, err := OpenFile(path, o, promslog.NewNopLogger())
	require.NoError(t, err)
	return f
}

func TestFileRetention(t *testing.T) {
	start := now()
	c := &clock{t: start}
	o := opts
	o.Now = c.Now
	f := openFile(t, filepath.Join(t.TempDir(), "state.db"), o)
	defer f.Close()
	open := firing("c", "om_1", start)
	deliver(t, f, open, "n")
	deliver(t, f, resolved(firing("closed", "om_2", start), "res", start), "r")
	require.NoError(t, f.Begin(context.Background(), "c", "a", "uuid", start))

	c.Set(start.Add(opts.DedupeWindow))
	require.Equal(t, Loaded{Incident: open}, load(t, f, "c", "n"), "past the dedupe window the notification may be sent again")
	require.Equal(t, "uuid", load(t, f, "c", "a").Attempt, "an attempt lasts its hour")
	require.Nil(t, load(t, f, "closed", "r").Closed, "and the closed incident is forgotten")

	c.Set(start.Add(opts.ChainTTL))
	require.Equal(t, Loaded{}, load(t, f, "c", "n"), "past the chain TTL a new incident starts")
	_, err := f.Get(context.Background(), open.ID)
	require.ErrorIs(t, err, ErrNotFound)

	require.NoError(t, f.sweep())
	require.Equal(t, 0, chains(t, f), "the sweep deletes what expired")
	require.NoError(t, f.db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketOpen, bucketResolved, bucketDelivered, bucketAttempts} {
			require.Zero(t, tx.Bucket(b).Stats().KeyN, "bucket %s swept", b)
		}
		return nil
	}))
}

// The sweeper runs by itself every sweepEvery; virtual time lets a test
// wait the hour an incident lives.
func TestFileSweeperRuns(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		f := openFile(t, filepath.Join(dir, "state.db"), opts)
		defer f.Close()
		deliver(t, f, firing("c", "om_1", time.Now()), "n")
		time.Sleep(opts.ChainTTL - sweepEvery/2)
		synctest.Wait()
		require.Equal(t, 1, chains(t, f), "not expired: the sweeps kept it")
		time.Sleep(sweepEvery)
		synctest.Wait()
		require.Equal(t, 0, chains(t, f), "swept within a minute of expiring")
	})
}

func TestFileSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	f := openFile(t, path, opts)
	in := full("c", now())
	deliver(t, f, in, "n")
	require.NoError(t, f.Schedule(ctx, in.ID, in.Updated))
	require.NoError(t, f.Close())

	f = openFile(t, path, opts)
	defer f.Close()
	require.Equal(t, Loaded{Incident: in, Delivered: true}, load(t, f, "c", "n"))
	require.Equal(t, []string{in.ID}, due(t, f, in.Updated, 10))
}

func TestFileIsExclusive(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	f := openFile(t, path, opts)
	defer f.Close()
	_, err := OpenFile(path, opts, promslog.NewNopLogger())
	require.ErrorContains(t, err, "locked by another process")
}

// A file from a newer release is refused, not misread.
func TestFileRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	f := openFile(t, path, opts)
	require.NoError(t, f.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte("3"))
	}))
	require.NoError(t, f.Close())
	_, err := OpenFile(path, opts, promslog.NewNopLogger())
	require.ErrorContains(t, err, `schema version "3" is unknown`)
}

func TestLockEntriesDoNotOutliveTheirHolders(t *testing.T) {
	f := openFile(t, filepath.Join(t.TempDir(), "state.db"), opts)
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
	start := now()
	c := &clock{t: start}
	o := opts
	o.Now = c.Now
	f := openFile(t, path, o)
	require.NoError(t, f.Begin(ctx, "c", "n", "uuid-1", start))
	require.NoError(t, f.Close())

	f = openFile(t, path, o)
	defer f.Close()
	require.Equal(t, Loaded{Attempt: "uuid-1"}, load(t, f, "c", "n"))

	c.Set(start.Add(AttemptTTL))
	require.Empty(t, load(t, f, "c", "n").Attempt, "past Feishu's uuid window the key is no use")
	require.NoError(t, f.sweep())
	c.Set(start)
	require.Empty(t, load(t, f, "c", "n").Attempt, "the sweep deleted it")

	require.NoError(t, f.Begin(ctx, "c", "n", "uuid-2", start))
	in := firing("c", "om_1", start)
	deliver(t, f, in, "n")
	require.Equal(t, Loaded{Incident: in, Delivered: true}, load(t, f, "c", "n"), "a delivered notification has no attempt left")
}
