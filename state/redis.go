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

	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
)

// Key layout, under the configured prefix P. Every key of one chain carries
// the chain key as a hash tag, so that on Redis Cluster they share a slot and
// Commit stays one atomic script:
//
//	P{chain}:open            the open incident's record (see encodeRecord), expires ChainTTL after its Updated
//	P{chain}:resolved        the closed incident's record, expires DedupeWindow after its Updated
//	P{chain}:lock            owner token of the replica handling the chain
//	P{chain}:done:<key>      notification delivered, expires DedupeWindow after its delivery
//	P{chain}:attempt:<key>   idempotency key of an unrecorded attempt, AttemptTTL
//	P{chain}:root            first release: the open chain's root (a custom bot's: legacyBotPrefix
//	                         and its first send), expires with :open
//	P{chain}:closed          first release: "<resolution> <root>" of the closed chain, expires with :resolved
//	Pchains                  sorted set of open chains scored by expiry (Unix ms), for counting
//	Pdue                     sorted set of incident IDs scored by due time (Unix ms)
//
// A commit writes the first release's keys as that release did, beside the
// record, for one release's rolling update: replicas of both releases share
// Redis for a while, and an old one must neither start a second chain nor
// miss a closure. Reads take the old keys' word over a record they
// contradict, as an old replica wrote after the record (see
// Redis.incidents). The release after this one can drop them: by then no
// replica writes them but this release's, whose records say the same.
//
// The counting set lives in another slot and is kept beside the chain, not
// with it: a failure there costs the accuracy of a gauge, never a message.
// The due set is one key in a slot of its own too: Schedule is a call of
// its own, and a claim is one script on that key alone.

// RedisOptions connect the Redis store.
type RedisOptions struct {
	Addresses  []string // one server, the sentinels (with MasterName), or cluster nodes
	MasterName string
	Username   string
	Password   string
	DB         int
	KeyPrefix  string
	TLS        *tls.Config

	// LockTTL bounds how long a replica that died holding a chain's lock
	// keeps the chain waiting. A live holder extends it every LockTTL/3.
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

	// commit records a write if the caller still holds the chain's lock:
	// a replica whose lock expired while it sent must not overwrite the
	// incident its successor may have opened meanwhile. The first
	// release's keys get what that release would have written, with the
	// record's expiry, which for a delivery is its: ChainTTL or
	// DedupeWindow after the chain's last message.
	// KEYS: lock, open, resolved, legacy root, legacy closed, and for a
	// delivery done and attempt. ARGV: token, record, resolved (0/1),
	// record TTL ms, done TTL ms, legacy value.
	commit = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
  return redis.error_reply("LOST chain lock expired or taken by another replica")
end
if #KEYS == 7 then
  redis.call("SET", KEYS[6], "1", "PX", ARGV[5])
  redis.call("DEL", KEYS[7])
end
if ARGV[3] == "1" then
  redis.call("DEL", KEYS[2], KEYS[4])
  redis.call("SET", KEYS[3], ARGV[2], "PX", ARGV[4])
  redis.call("SET", KEYS[5], ARGV[6], "PX", ARGV[4])
else
  redis.call("SET", KEYS[2], ARGV[2], "PX", ARGV[4])
  redis.call("SET", KEYS[4], ARGV[6], "PX", ARGV[4])
  redis.call("DEL", KEYS[3], KEYS[5])
end
return 1`)

	// repair stores the incident an old replica's write made of a record,
	// if none of the keys changed since they were read, with the expiry of
	// the old key it came from. Otherwise the record would outlive that
	// key and come back: a closure's :closed goes after DedupeWindow, the
	// open record it contradicts lasts ChainTTL. It needs no lock: any
	// replica makes the same of the same keys, and a commit since the
	// read wins.
	// KEYS: incidentKeys. ARGV: their values as read ("" for none), the
	// record, resolved (0/1).
	repair = redis.NewScript(`
for i = 1, 4 do
  if (redis.call("GET", KEYS[i]) or "") ~= ARGV[i] then
    return 0
  end
end
local into, from, legacy = KEYS[1], KEYS[2], KEYS[3]
if ARGV[6] == "1" then
  into, from, legacy = KEYS[2], KEYS[1], KEYS[4]
end
local ttl = redis.call("PTTL", legacy)
if ttl <= 0 then
  return 0
end
redis.call("SET", into, ARGV[5], "PX", ttl)
redis.call("DEL", from)
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
func (r *Redis) Load(ctx context.Context, chain, notification string) (Loaded, error) {
	vals, err := r.client.MGet(ctx, append(r.incidentKeys(chain),
		r.key(chain, "done:"+notification),
		r.key(chain, "attempt:"+notification),
	)...).Result()
	if err != nil {
		return Loaded{}, fmt.Errorf("load state from redis: %w", err)
	}
	var l Loaded
	if l.Incident, l.Closed, err = r.incidents(ctx, chain, vals); err != nil {
		return Loaded{}, fmt.Errorf("load state from redis: %w", err)
	}
	l.Delivered = vals[4] != nil
	l.Attempt, _ = vals[5].(string)
	return l, nil
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, id string) (*incident.Incident, error) {
	chain := incident.ChainOf(id)
	if chain == "" {
		return nil, ErrNotFound
	}
	vals, err := r.client.MGet(ctx, r.incidentKeys(chain)...).Result()
	if err != nil {
		return nil, fmt.Errorf("get incident from redis: %w", err)
	}
	open, closed, err := r.incidents(ctx, chain, vals)
	if err != nil {
		return nil, fmt.Errorf("get incident from redis: %w", err)
	}
	for _, in := range []*incident.Incident{open, closed} {
		if in != nil && in.Is(id) {
			return in, nil
		}
	}
	return nil, ErrNotFound
}

// Begin implements Store.
func (r *Redis) Begin(ctx context.Context, chain, notification, attempt string, at time.Time) error {
	ttl := AttemptTTL - r.opts.now().Sub(at)
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
func (r *Redis) Commit(ctx context.Context, w Write) error {
	if err := checkWrite(w); err != nil {
		return err
	}
	in := w.Incident
	r.mu.Lock()
	l := r.held[in.Chain]
	r.mu.Unlock()
	if l == nil {
		return fmt.Errorf("commit state: %w", ErrLockLost)
	}
	record, err := encodeRecord(in)
	if err != nil {
		return fmt.Errorf("commit state: %w", err)
	}
	now := r.opts.now()
	resolved, ttl := "0", r.opts.ChainTTL
	if !in.Open() {
		resolved, ttl = "1", r.opts.DedupeWindow
	}
	keys := append([]string{r.key(in.Chain, "lock")}, r.incidentKeys(in.Chain)...)
	if w.Notification != "" {
		keys = append(keys, r.key(in.Chain, "done:"+w.Notification), r.key(in.Chain, "attempt:"+w.Notification))
	}
	err = commit.Run(ctx, r.client, keys, l.token, record, resolved,
		msUntil(in.Updated.Add(ttl), now), msUntil(w.At.Add(r.opts.DedupeWindow), now), legacyValue(in)).Err()
	if err != nil {
		if strings.HasPrefix(err.Error(), "LOST ") {
			return fmt.Errorf("commit state to redis: %w: expired or taken by another replica", ErrLockLost)
		}
		return fmt.Errorf("commit state to redis: %w", err)
	}

	// The counting set also drops the chains whose time is up here, not
	// only when the gauge is read: nothing else would, if nobody scraped.
	index := r.prefix + "chains"
	_, err = r.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		if in.Open() {
			pipe.ZAdd(ctx, index, redis.Z{Score: float64(in.Updated.Add(r.opts.ChainTTL).UnixMilli()), Member: in.Chain})
		} else {
			pipe.ZRem(ctx, index, in.Chain)
		}
		pipe.ZRemRangeByScore(ctx, index, "-inf", strconv.FormatInt(now.UnixMilli(), 10))
		r.census(ctx, pipe, in, now)
		return nil
	})
	if err != nil {
		r.logger.Warn("updating the count of open chains failed", "err", err)
	}
	return nil
}

// msUntil is the TTL in milliseconds that makes a key expire at t: at least
// 1, as SET wants, for a time already past.
func msUntil(t, now time.Time) int64 {
	return max(t.Sub(now).Milliseconds(), 1)
}

// Chains implements Store, from the counting set after dropping the chains
// whose time is up.
func (r *Redis) Chains(ctx context.Context) (int, error) {
	index := r.prefix + "chains"
	now := strconv.FormatInt(r.opts.now().UnixMilli(), 10)
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
