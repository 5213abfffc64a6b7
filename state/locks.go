package state

import (
	"context"
	"sync"
)

// locks is a set of mutexes by key that a waiter can give up on when its
// context ends. A key's entry lives only while someone holds or waits for it.
type locks struct {
	mu sync.Mutex
	m  map[string]*lockEntry
}

type lockEntry struct {
	sem  chan struct{} // holds a token while the lock is taken
	refs int           // holders and waiters
}

func newLocks() *locks { return &locks{m: map[string]*lockEntry{}} }

func (l *locks) lock(ctx context.Context, key string) (func(), error) {
	l.mu.Lock()
	e := l.m[key]
	if e == nil {
		e = &lockEntry{sem: make(chan struct{}, 1)}
		l.m[key] = e
	}
	e.refs++
	l.mu.Unlock()

	select {
	case e.sem <- struct{}{}:
		var once sync.Once
		return func() {
			once.Do(func() {
				<-e.sem
				l.release(key, e)
			})
		}, nil
	case <-ctx.Done():
		l.release(key, e)
		return nil, ctx.Err()
	}
}

func (l *locks) release(key string, e *lockEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		delete(l.m, key)
	}
}

// held reports whether key's lock is taken. A file store's commit checks it:
// within one process the holder cannot have lost it, only never taken it.
func (l *locks) held(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.m[key]
	return e != nil && len(e.sem) == 1
}
