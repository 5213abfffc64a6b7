package feishu

import (
	"context"
	"sync"
)

// Attempts keeps the error of the last failed call made with a context
// that carries it (WithAttempts): a delivery still retrying can tell why
// while it goes on.
type Attempts struct {
	mu   sync.Mutex
	last error
}

type attemptsKey struct{}

// WithAttempts returns ctx carrying a, which every call to Feishu made with
// it tells of its failures.
func WithAttempts(ctx context.Context, a *Attempts) context.Context {
	return context.WithValue(ctx, attemptsKey{}, a)
}

// Last is the error of the last failed attempt; nil if none failed yet.
func (a *Attempts) Last() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// failed records err as the last failure of ctx's calls, if ctx carries
// Attempts.
func failed(ctx context.Context, err error) {
	if a, ok := ctx.Value(attemptsKey{}).(*Attempts); ok && err != nil {
		a.mu.Lock()
		a.last = err
		a.mu.Unlock()
	}
}
