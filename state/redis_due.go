package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
)

// claim moves up to ARGV[2] items due by ARGV[1] to ARGV[3] and returns
// them, in one script: two replicas never claim one item. KEYS: the due set.
var claim = redis.NewScript(`
local ids = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "LIMIT", 0, ARGV[2])
for _, id in ipairs(ids) do
  redis.call("ZADD", KEYS[1], "XX", ARGV[3], id)
end
return ids`)

func (r *Redis) dueKey() string { return r.prefix + "due" }

// Schedule implements Store. Due times are kept to the millisecond, rounded
// up so that an item never comes due early.
func (r *Redis) Schedule(ctx context.Context, id string, at time.Time) error {
	if incident.ChainOf(id) == "" {
		return errors.New("schedule: malformed incident id")
	}
	if err := r.client.ZAdd(ctx, r.dueKey(), redis.Z{Score: float64(ceilMilli(at)), Member: id}).Err(); err != nil {
		return fmt.Errorf("schedule in redis: %w", err)
	}
	return nil
}

// Unschedule implements Store.
func (r *Redis) Unschedule(ctx context.Context, id string) error {
	if err := r.client.ZRem(ctx, r.dueKey(), id).Err(); err != nil {
		return fmt.Errorf("unschedule in redis: %w", err)
	}
	return nil
}

// Due implements Store.
func (r *Redis) Due(ctx context.Context, now time.Time, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, nil
	}
	ids, err := claim.Run(ctx, r.client, []string{r.dueKey()},
		now.UnixMilli(), limit, ceilMilli(now.Add(ClaimTTL))).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("claim due incidents in redis: %w", err)
	}
	return ids, nil
}

// ceilMilli is t in Unix milliseconds, rounded up.
func ceilMilli(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.After(time.UnixMilli(ms)) {
		ms++
	}
	return ms
}
