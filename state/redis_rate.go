package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertmanager-feishu/alertmanager-feishu/ratelimit"
)

// Rate limit keys, under the configured prefix P, all in the slot of the
// hash tag {rate} so that one script takes a send's slots in all its
// limits at once, on Redis Cluster too:
//
//	P{rate}:s:<limit>   sorted set of the slots taken (members are tokens, scores Redis time in µs)
//	P{rate}:c:<limit>   hash of slots per cell (field: the cell's number), for a per-window count
//	P{rate}:replicas    sorted set of the replicas that took slots, scored by when they last did
//
// Times are Redis's own (TIME), so that the replicas' clocks need not
// agree; a replica is told how long from now its slot is.

// takeSlots finds the earliest time, after ARGV[2] µs from now, at which
// every limit has room, as ratelimit.Local does, and takes a slot there
// unless it is more than ARGV[3] µs away. KEYS: per limit its schedule and
// its cells, then the replicas. ARGV: the replica's ID, after, within,
// member, the number of limits, then per limit: spacing µs, per window,
// cell µs, cells per window.
var takeSlots = redis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[5])
local rkey = KEYS[2 * n + 1]
redis.call("ZADD", rkey, string.format("%d", now), ARGV[1])
redis.call("ZREMRANGEBYSCORE", rkey, "-inf", string.format("%d", now - 30000000))
redis.call("PEXPIRE", rkey, 60000)
local replicas = redis.call("ZCARD", rkey)
local lims = {}
for i = 1, n do
  local a = 5 + (i - 1) * 4
  lims[i] = {s = KEYS[2 * i - 1], c = KEYS[2 * i], sp = tonumber(ARGV[a + 1]), per = tonumber(ARGV[a + 2]),
             cell = tonumber(ARGV[a + 3]), k = tonumber(ARGV[a + 4])}
  redis.call("ZREMRANGEBYSCORE", lims[i].s, "-inf", string.format("%d", now - math.max(lims[i].sp, 10000000)))
end
local function spaced(l, at)
  local es = redis.call("ZRANGEBYSCORE", l.s, string.format("(%d", at - l.sp), "+inf", "WITHSCORES")
  for j = 2, #es, 2 do
    local e = tonumber(es[j])
    if e >= at + l.sp then break end
    if e > at - l.sp then at = e + l.sp end
  end
  return at
end
local function counted(l, at)
  local c0 = math.floor(at / l.cell)
  local c = c0
  while true do
    local fields = {}
    for x = c - l.k + 1, c + l.k - 1 do fields[#fields + 1] = string.format("%d", x) end
    local vals = redis.call("HMGET", l.c, unpack(fields))
    local function v(x) return tonumber(vals[x - (c - l.k + 1) + 1]) or 0 end
    local sum = 0
    for x = c - l.k + 1, c do sum = sum + v(x) end
    local ok = true
    for j = c - l.k + 1, c do
      if sum >= l.per then ok = false break end
      if j < c then sum = sum + v(j + l.k) - v(j) end
    end
    if ok then
      if c == c0 then return at end
      return c * l.cell
    end
    c = c + 1
  end
end
local at = now + math.max(0, tonumber(ARGV[2]))
for round = 1, 1000 do
  local moved = false
  for i = 1, n do
    local l = lims[i]
    local next = at
    while true do
      if l.sp > 0 then next = spaced(l, next) end
      if l.per <= 0 then break end
      local c = counted(l, next)
      if c == next then break end
      next = c
    end
    if next > at then at = next moved = true end
  end
  if not moved then break end
end
if at - now > tonumber(ARGV[3]) then
  return {-1, replicas}
end
local ttl = math.floor((at - now) / 1000) + 180000
-- A key lives 3 min past its furthest slot: a take nearer now must not
-- shorten the life of a key that holds a later one.
local function keep(k)
  if redis.call("PTTL", k) < ttl then redis.call("PEXPIRE", k, ttl) end
end
for i = 1, n do
  local l = lims[i]
  -- Every slot is in the schedule, spaced or not, for giveSlots to find.
  redis.call("ZADD", l.s, string.format("%d", at), ARGV[4])
  keep(l.s)
  if l.per > 0 then
    redis.call("HINCRBY", l.c, string.format("%d", math.floor(at / l.cell)), 1)
    local first = math.floor(now / l.cell) - l.k
    for _, f in ipairs(redis.call("HKEYS", l.c)) do
      if tonumber(f) < first then redis.call("HDEL", l.c, f) end
    end
    keep(l.c)
  end
end
return {at - now, replicas}`)

// giveSlots gives back a slot: KEYS per limit its schedule and its cells;
// ARGV the member, the number of limits, then per limit its cell µs (0:
// no per-window count). The slot's time is its score in a schedule.
var giveSlots = redis.NewScript(`
local n = tonumber(ARGV[2])
local at = nil
for i = 1, n do
  local score = redis.call("ZSCORE", KEYS[2 * i - 1], ARGV[1])
  if score then
    at = tonumber(score)
    redis.call("ZREM", KEYS[2 * i - 1], ARGV[1])
  end
end
if not at then return 0 end
for i = 1, n do
  local cell = tonumber(ARGV[2 + i])
  if cell > 0 then
    local f = string.format("%d", math.floor(at / cell))
    if (tonumber(redis.call("HGET", KEYS[2 * i], f)) or 0) > 0 then
      redis.call("HINCRBY", KEYS[2 * i], f, -1)
    end
  end
end
return 1`)

// RedisSlots counts the rate limits' slots in Redis for every replica that
// uses the same Redis and key prefix.
type RedisSlots struct {
	r        *Redis
	id       string
	replicas atomic.Int64
}

var _ ratelimit.Shared = (*RedisSlots)(nil)

// RateLimits returns the rate limits' slots in this store's Redis, for
// the pacer to share with the other replicas.
func (r *Redis) RateLimits() ratelimit.Shared {
	s := &RedisSlots{r: r, id: randomHex(8)}
	s.replicas.Store(1)
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *RedisSlots) keys(limits []ratelimit.Limit) []string {
	keys := make([]string, 0, 2*len(limits)+1)
	for _, l := range limits {
		keys = append(keys, s.r.prefix+"{rate}:s:"+l.Key, s.r.prefix+"{rate}:c:"+l.Key)
	}
	return keys
}

// constrained are the limits that constrain anything: an unlimited one
// (0 in the configuration) costs Redis nothing.
func constrained(limits []ratelimit.Limit) []ratelimit.Limit {
	var out []ratelimit.Limit
	for _, l := range limits {
		if l.Spacing > 0 || l.PerWindow > 0 {
			out = append(out, l)
		}
	}
	return out
}

func micros(d time.Duration) int64 { return d.Microseconds() }

// Take implements ratelimit.Slots.
func (s *RedisSlots) Take(ctx context.Context, limits []ratelimit.Limit, after, within time.Duration) (ratelimit.Slot, bool, error) {
	if limits = constrained(limits); len(limits) == 0 {
		return ratelimit.Slot{In: max(0, after)}, after <= within, nil
	}
	member := s.id + ":" + randomHex(8)
	args := []any{s.id, micros(after), micros(min(within, 24*time.Hour)), member, len(limits)}
	for _, l := range limits {
		per, cell, k := 0, int64(0), int64(0)
		if l.PerWindow > 0 {
			per, cell, k = l.PerWindow, micros(ratelimit.CellSize(l)), ratelimit.WindowCells(l)
		}
		args = append(args, micros(l.Spacing), per, cell, k)
	}
	res, err := takeSlots.Run(ctx, s.r.client, append(s.keys(limits), s.r.prefix+"{rate}:replicas"), args...).Int64Slice()
	if err != nil {
		return ratelimit.Slot{}, false, fmt.Errorf("redis rate limits: %w", err)
	}
	if len(res) != 2 {
		return ratelimit.Slot{}, false, errors.New("redis rate limits: unexpected answer")
	}
	s.replicas.Store(max(1, res[1]))
	if res[0] < 0 {
		return ratelimit.Slot{}, false, nil
	}
	at := time.Duration(res[0]) * time.Microsecond
	return ratelimit.Slot{In: at, Token: member}, true, nil
}

// Give implements ratelimit.Slots.
func (s *RedisSlots) Give(ctx context.Context, limits []ratelimit.Limit, slot ratelimit.Slot) error {
	if limits = constrained(limits); len(limits) == 0 {
		return nil
	}
	args := []any{slot.Token, len(limits)}
	for _, l := range limits {
		cell := int64(0)
		if l.PerWindow > 0 {
			cell = micros(ratelimit.CellSize(l))
		}
		args = append(args, cell)
	}
	if err := giveSlots.Run(ctx, s.r.client, s.keys(limits), args...).Err(); err != nil {
		return fmt.Errorf("redis rate limits: %w", err)
	}
	return nil
}

// Replicas implements ratelimit.Shared.
func (s *RedisSlots) Replicas() int { return int(s.replicas.Load()) }
