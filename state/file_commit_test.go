package state

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

func openGroup(t *testing.T) (*group, *bolt.DB) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "g.db"), 0o600, nil)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }))
	return &group{db: db}, db
}

func put(key string) func(*bolt.Tx) error {
	return func(tx *bolt.Tx) error { return tx.Bucket([]byte("b")).Put([]byte(key), []byte("v")) }
}

func keys(t *testing.T, db *bolt.DB) []string {
	t.Helper()
	var out []string
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("b")).ForEach(func(k, _ []byte) error { out = append(out, string(k)); return nil })
	}))
	return out
}

// Concurrent writes are all committed, each returning once it is.
func TestGroupCommitsConcurrentWrites(t *testing.T) {
	g, db := openGroup(t)
	var wg sync.WaitGroup
	want := make([]string, 64)
	for i := range want {
		want[i] = fmt.Sprintf("k%02d", i)
		wg.Go(func() { assert.NoError(t, g.do(put(want[i]))) })
	}
	wg.Wait()
	require.Equal(t, want, keys(t, db))
	require.Eventually(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return !g.running
	}, 10*time.Second, time.Millisecond, "the drainer stops when nothing is queued")
	require.NoError(t, g.do(put("later")), "and starts again")
	require.Contains(t, keys(t, db), "later")
}

// The writes that come while a transaction is being committed share the
// next one, and none returns before the transaction holding it committed.
func TestGroupSharesTheNextTransaction(t *testing.T) {
	g, db := openGroup(t)
	release := make(chan struct{})
	var mu sync.Mutex
	txOf := map[string]int{} // key -> the transaction that wrote it
	record := func(key string, tx *bolt.Tx) {
		mu.Lock()
		defer mu.Unlock()
		txOf[key] = int(tx.ID())
	}
	firstDone := make(chan error, 1)
	go func() {
		firstDone <- g.do(func(tx *bolt.Tx) error {
			<-release
			record("first", tx)
			return put("first")(tx)
		})
	}()
	require.Eventually(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.running && len(g.queue) == 0
	}, 10*time.Second, time.Millisecond, "the first write is being committed")

	const n = 16
	done := make(chan error, n)
	for i := range n {
		key := fmt.Sprintf("k%02d", i)
		go func() {
			done <- g.do(func(tx *bolt.Tx) error { record(key, tx); return put(key)(tx) })
		}()
	}
	require.Eventually(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.queue) == n
	}, 10*time.Second, time.Millisecond, "the others queue behind it")
	select {
	case err := <-done:
		t.Fatalf("a write returned before its transaction ran: %v", err)
	default:
	}

	close(release)
	require.NoError(t, <-firstDone)
	for range n {
		require.NoError(t, <-done)
	}
	require.Len(t, keys(t, db), n+1)
	mu.Lock()
	defer mu.Unlock()
	shared := txOf["k00"]
	require.NotEqual(t, txOf["first"], shared)
	for i := range n {
		require.Equal(t, shared, txOf[fmt.Sprintf("k%02d", i)], "k%02d in the shared transaction", i)
	}
}

// A write that fails, or panics, fails alone: the others of its
// transaction are committed without it.
func TestGroupFailingWriteFailsAlone(t *testing.T) {
	g, db := openGroup(t)
	refused := errors.New("refused")
	ran := 0
	batch := []*groupWrite{
		{fn: func(tx *bolt.Tx) error { ran++; return put("a")(tx) }},
		{fn: func(tx *bolt.Tx) error { _ = put("x")(tx); return refused }},
		{fn: func(*bolt.Tx) error { panic("boom") }},
		{fn: put("c")},
	}
	for _, w := range batch {
		w.done = make(chan error, 1)
	}
	g.commit(batch)
	require.NoError(t, <-batch[0].done)
	require.ErrorIs(t, <-batch[1].done, refused)
	require.ErrorContains(t, <-batch[2].done, "state write panicked: boom")
	require.NoError(t, <-batch[3].done)
	require.Equal(t, []string{"a", "c"}, keys(t, db), "the failed write left nothing")
	require.Equal(t, 3, ran, "the others ran again without it")
}

// A transaction that cannot commit fails every write in it.
func TestGroupCommitFailureFailsEveryWrite(t *testing.T) {
	g, db := openGroup(t)
	require.NoError(t, db.Close())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { assert.ErrorIs(t, g.do(put(fmt.Sprint(i))), bolterrors.ErrDatabaseNotOpen) })
	}
	wg.Wait()
}
