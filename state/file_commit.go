package state

import (
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// group commits writes to the file in shared transactions: the writes that
// come while one transaction is being written and synced all go into the
// next, so that one fsync serves them all, and a write that comes to an
// idle file is committed at once. bbolt's own Batch waits MaxBatchDelay
// for company instead, and under load makes one small transaction per
// delay; commits of the same notifications took a quarter of the service's
// CPU that way. A write returns once the transaction holding it is synced,
// as before.
type group struct {
	db *bolt.DB

	mu      sync.Mutex
	queue   []*groupWrite
	running bool // a goroutine is draining the queue
}

type groupWrite struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// do runs fn in a write transaction, perhaps shared with other writes; fn
// may run more than once, as with bolt.DB.Batch. A failing fn fails alone:
// the others are committed without it.
func (g *group) do(fn func(*bolt.Tx) error) error {
	w := &groupWrite{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, w)
	start := !g.running
	g.running = true
	g.mu.Unlock()
	if start {
		go g.drain()
	}
	return <-w.done
}

// drain commits what is queued, one transaction at a time, until nothing
// is.
func (g *group) drain() {
	for {
		g.mu.Lock()
		batch := g.queue
		g.queue = nil
		if len(batch) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		g.commit(batch)
	}
}

// commit commits batch in one transaction and answers each write. A write
// whose fn fails is answered with its error and the rest tried again.
func (g *group) commit(batch []*groupWrite) {
	for len(batch) > 0 {
		failed := -1
		err := g.db.Update(func(tx *bolt.Tx) error {
			for i, w := range batch {
				if err := safely(w.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, w := range batch {
				w.done <- err
			}
			return
		}
		batch[failed].done <- err
		batch = append(batch[:failed:failed], batch[failed+1:]...)
	}
}

// safely is fn(tx), a panic being its error, as bbolt's Batch has it.
func safely(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("state write panicked: %v", p)
		}
	}()
	return fn(tx)
}
