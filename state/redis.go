package state

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Key layout, under the configured prefix P. Every key of one chain carries
// the chain key as a hash tag, so that on Redis Cluster they share a slot and
// Commit stays one atomic script:
//
//	P{chain}:root            root message ID, expires ChainTTL after the last message
//	P{chain}:closed          "<resolution> <root>" of the closed chain, DedupeWindow
//	P{chain}:lock            owner token of the replica handling the group
//	P{chain}:done:<key>      notification delivered, expires after DedupeWindow
//	P{chain}:attempt:<key>   idempotency key of an unrecorded attempt, AttemptTTL
//	Pchains                  sorted set of open chains scored by expiry, for counting
//
// The counting set lives in another slot and is kept beside the chain, not
// with it: a failure there costs the accuracy of a gauge, never a message.

// RedisOptions connect the Redis store.
type RedisOptions struct {
	Addresses  []string // one server, the sentinels (with MasterName), or cluster nodes
	MasterName string
	Username   string
	Password   string
	DB         int
	KeyPrefix  string
	TLS        *tls.Config

	// LockTTL bounds how long a replica that died holding a group's lock
	// keeps the group waiting. A live holder extends it every LockTTL/3.
	LockTTL time.Duration
}

// DefaultLockTTL is shorter than Alertmanager's shortest retry deadline
// (10 s), so a group whose replica died is taken over within one flush.
const DefaultLockTTL = 8 * time.Second

// Redis is the shared store: several replicas on one Redis see the same
// chains and dedupe keys, and take a group's lock in Redis.
type Redis struct {
	client redis.UniversalClient
	opts   Options
	prefix string
	ttl    time.Duration
	local  *locks // a process's own waiters queue here instead of polling Redis
	logger *slog.Logger

	mu     sync.Mutex
	held   map[string]*redisLock // chain -> this process's lock on it
	closed bool
}

type redisLock struct {
	token string
	stop  chan struct{}
	once  sync.Once
	done  chan struct{} // closed when the lock is no longer extended
}

// halt stops extending the lock and waits until that has stopped.
func (l *redisLock) halt() {
	l.once.Do(func() { close(l.stop) })
	<-l.done
}

var (
	// extendLock and releaseLock act only on a lock whose token is ours, so
	// a holder that was too slow never extends or frees its successor's.
	extendLock = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)
	releaseLock = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0`)

	// commit records a delivery if the caller still holds the group's lock:
	// a replica whose lock expired while it sent must not overwrite the
	// chain its successor may have rooted meanwhile.
	// KEYS: lock, root, done, attempt, closed. ARGV: token, root, close
	// (0/1), chain TTL ms, dedupe window ms, resolution.
	commit = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
  return redis.error_reply("LOST group lock expired before the delivery was recorded")
end
redis.call("SET", KEYS[3], "1", "PX", ARGV[5])
redis.call("DEL", KEYS[4])
if ARGV[3] == "1" then
  redis.call("DEL", KEYS[2])
  redis.call("SET", KEYS[5], ARGV[6] .. " " .. ARGV[2], "PX", ARGV[5])
else
  redis.call("SET", KEYS[2], ARGV[2], "PX", ARGV[4])
  redis.call("DEL", KEYS[5])
end
return 1`)
)

// OpenRedis sets up the connection to Redis. It does not wait for Redis to
// answer: a replica started while Redis is away runs, not ready, and
// connects once Redis is back.
func OpenRedis(ro RedisOptions, opts Options, logger *slog.Logger) (*Redis, error) {
	if len(ro.Addresses) == 0 {
		return nil, errors.New("redis: no address")
	}
	if ro.LockTTL <= 0 {
		ro.LockTTL = DefaultLockTTL
	}
	// The client's own messages (mostly failed dials, which the callers
	// report with context of their own) go to the service's log.
	redis.SetLogger(clientLog{logger})
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:      ro.Addresses,
		MasterName: ro.MasterName,
		Username:   ro.Username,
		Password:   ro.Password,
		DB:         ro.DB,
		TLSConfig:  ro.TLS,
		// An unreachable Redis must turn into a quick 503, so that
		// Alertmanager retries; it must not hold the webhook for long.
		DialTimeout:           2 * time.Second,
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
		MaxRetries:            1,
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
	})
	return &Redis{
		client: client,
		opts:   opts,
		prefix: ro.KeyPrefix,
		ttl:    ro.LockTTL,
		local:  newLocks(),
		logger: logger,
		held:   map[string]*redisLock{},
	}, nil
}

func (r *Redis) key(chain, kind string) string {
	return r.prefix + "{" + chain + "}:" + kind
}

// Lock takes chain's lock among this process's deliveries, then in Redis
// among the replicas. A Redis error ends the wait at once: the webhook is
// answered 503 rather than held while Redis is away.
func (r *Redis) Lock(ctx context.Context, chain string) (func(), error) {
	unlockLocal, err := r.local.lock(ctx, chain)
	if err != nil {
		return nil, err
	}
	token, err := r.acquire(ctx, chain)
	if err != nil {
		unlockLocal()
		return nil, err
	}
	l := &redisLock{token: token, stop: make(chan struct{}), done: make(chan struct{})}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.release(chain, token)
		unlockLocal()
		return nil, ErrClosed
	}
	r.held[chain] = l
	r.mu.Unlock()
	go r.extend(chain, l)

	var once sync.Once
	return func() {
		once.Do(func() {
			l.halt()
			r.mu.Lock()
			delete(r.held, chain)
			r.mu.Unlock()
			r.release(chain, token)
			unlockLocal()
		})
	}, nil
}

// acquire polls for the lock: contention across replicas is rare (an HA
// pair's twin notifications), and a poll needs no connection of its own.
func (r *Redis) acquire(ctx context.Context, chain string) (string, error) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	wait := 5 * time.Millisecond
	for {
		ok, err := r.client.SetNX(ctx, r.key(chain, "lock"), token, r.ttl).Result()
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			return "", fmt.Errorf("redis lock: %w", err)
		}
		if ok {
			return token, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, 100*time.Millisecond)
	}
}

// extend keeps a held lock alive until it is released. If Redis stays away
// longer than the lock's TTL the lock may pass to another replica; Commit
// then refuses to record, and the notification is answered 503.
func (r *Redis) extend(chain string, l *redisLock) {
	defer close(l.done)
	t := time.NewTicker(r.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), r.ttl/3)
			n, err := extendLock.Run(ctx, r.client, []string{r.key(chain, "lock")}, l.token, r.ttl.Milliseconds()).Int()
			cancel()
			switch {
			case err != nil:
				r.logger.Warn("extending a group lock failed", "chain", chain, "err", err)
			case n == 0:
				r.logger.Warn("group lock expired while held; another replica may take the group", "chain", chain)
				return
			}
		}
	}
}

func (r *Redis) release(chain, token string) {
	// The delivery's own context may be over; freeing the lock must not be.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := releaseLock.Run(ctx, r.client, []string{r.key(chain, "lock")}, token).Err(); err != nil {
		r.logger.Warn("releasing a group lock failed; it expires by itself", "chain", chain, "err", err)
	}
}

// Load implements Store.
func (r *Redis) Load(ctx context.Context, chain, notification string) (Record, error) {
	vals, err := r.client.MGet(ctx,
		r.key(chain, "root"),
		r.key(chain, "done:"+notification),
		r.key(chain, "attempt:"+notification),
		r.key(chain, "closed"),
	).Result()
	if err != nil {
		return Record{}, fmt.Errorf("load state from redis: %w", err)
	}
	var rec Record
	rec.Root, _ = vals[0].(string)
	rec.Delivered = vals[1] != nil
	rec.Attempt, _ = vals[2].(string)
	if closed, _ := vals[3].(string); closed != "" && rec.Root == "" {
		rec.Closed.Resolution, rec.Closed.Root, _ = strings.Cut(closed, " ")
	}
	return rec, nil
}

// Begin implements Store.
func (r *Redis) Begin(ctx context.Context, chain, notification, attempt string, at time.Time) error {
	ttl := AttemptTTL - time.Since(at)
	if ttl < time.Millisecond {
		return nil // Feishu's uuid window is over already: nothing to keep
	}
	if err := r.client.Set(ctx, r.key(chain, "attempt:"+notification), attempt, ttl).Err(); err != nil {
		return fmt.Errorf("record attempt in redis: %w", err)
	}
	return nil
}

// Commit implements Store. It fails if this process no longer holds the
// chain's lock.
func (r *Redis) Commit(ctx context.Context, d Delivery) error {
	r.mu.Lock()
	l := r.held[d.Chain]
	r.mu.Unlock()
	if l == nil {
		return fmt.Errorf("commit state: group lock not held")
	}
	closeChain := "0"
	if d.Close {
		closeChain = "1"
	}
	keys := []string{
		r.key(d.Chain, "lock"), r.key(d.Chain, "root"),
		r.key(d.Chain, "done:"+d.Notification), r.key(d.Chain, "attempt:"+d.Notification),
		r.key(d.Chain, "closed"),
	}
	err := commit.Run(ctx, r.client, keys, l.token, d.Root, closeChain,
		max(r.opts.ChainTTL.Milliseconds(), 1), max(r.opts.DedupeWindow.Milliseconds(), 1), d.Resolution).Err()
	if err != nil {
		return fmt.Errorf("commit state to redis: %w", err)
	}

	// The counting set also drops the chains whose time is up here, not
	// only when the gauge is read: nothing else would, if nobody scraped.
	index := r.prefix + "chains"
	_, err = r.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		if d.Close {
			pipe.ZRem(ctx, index, d.Chain)
		} else {
			pipe.ZAdd(ctx, index, redis.Z{Score: float64(d.At.Add(r.opts.ChainTTL).UnixMilli()), Member: d.Chain})
		}
		pipe.ZRemRangeByScore(ctx, index, "-inf", strconv.FormatInt(d.At.UnixMilli(), 10))
		return nil
	})
	if err != nil {
		r.logger.Warn("updating the count of open chains failed", "err", err)
	}
	return nil
}

// Chains implements Store, from the counting set after dropping the chains
// whose time is up.
func (r *Redis) Chains(ctx context.Context) (int, error) {
	index := r.prefix + "chains"
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	if err := r.client.ZRemRangeByScore(ctx, index, "-inf", now).Err(); err != nil {
		return 0, fmt.Errorf("count chains in redis: %w", err)
	}
	n, err := r.client.ZCard(ctx, index).Result()
	if err != nil {
		return 0, fmt.Errorf("count chains in redis: %w", err)
	}
	return int(n), nil
}

// Ping implements Store.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// Close stops extending locks and disconnects. Locks still held are left to
// expire, as a crashed replica's would: their deliveries were not recorded.
func (r *Redis) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	held := r.held
	r.held = map[string]*redisLock{}
	r.mu.Unlock()
	for _, l := range held {
		l.halt()
	}
	return r.client.Close()
}

// clientLog passes go-redis's messages to the service's logger; it has one
// logger for the whole process.
type clientLog struct{ logger *slog.Logger }

func (l clientLog) Printf(ctx context.Context, format string, v ...any) {
	l.logger.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}
