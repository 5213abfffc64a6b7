package state

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"

	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
)

// Census counts the open incidents by what is being done about them, each
// in one state: silenced (a silence from its card in force), else
// acknowledged, else firing.
type Census struct {
	Firing, Acknowledged, Silenced int
}

// censusOf is the state an open incident counts in at now.
func censusOf(in *incident.Incident, now time.Time) string {
	switch {
	case in.Silenced(now):
		return "silenced"
	case in.Ack != nil:
		return "acknowledged"
	}
	return "firing"
}

func (c *Census) add(state string) {
	switch state {
	case "silenced":
		c.Silenced++
	case "acknowledged":
		c.Acknowledged++
	default:
		c.Firing++
	}
}

// Census implements Store by reading every open record: the gauge is read
// at each scrape, and a file holds one process's incidents. Expired
// records not yet swept are left out.
func (f *File) Census(_ context.Context, now time.Time) (Census, error) {
	var c Census
	err := f.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOpen).ForEach(func(_, v []byte) error {
			doc, _ := splitRecord(v)
			var in incident.Incident
			if json.Unmarshal(doc, &in) != nil || now.Sub(in.Updated) >= f.opts.ChainTTL {
				return nil
			}
			c.add(censusOf(&in, now))
			return nil
		})
	})
	if err != nil {
		return Census{}, fmt.Errorf("count incidents: %w", err)
	}
	return c, nil
}

// The Redis store keeps the census in sorted sets of chains that share a
// hash tag of their own, so that one script reads them on a Cluster too:
// P{incidents}:firing and :acknowledged hold every open chain in one of the
// two, scored by its expiry; :silenced holds the silenced ones as well,
// scored by the silence's end, so that a silence that ran out stops
// counting by itself.
func (r *Redis) censusKeys() []string {
	return []string{r.prefix + "{incidents}:firing", r.prefix + "{incidents}:acknowledged", r.prefix + "{incidents}:silenced"}
}

// countIncidents drops what expired, then counts: the silenced ones, and
// the others in their base set.
var countIncidents = redis.NewScript(`
for _, k in ipairs(KEYS) do redis.call("ZREMRANGEBYSCORE", k, "-inf", ARGV[1]) end
local silenced = redis.call("ZRANGE", KEYS[3], 0, -1)
local ackedSilenced = 0
for _, m in ipairs(silenced) do
  if redis.call("ZSCORE", KEYS[2], m) then ackedSilenced = ackedSilenced + 1 end
end
local acked = redis.call("ZCARD", KEYS[2]) - ackedSilenced
local firing = redis.call("ZCARD", KEYS[1]) - (#silenced - ackedSilenced)
return {firing, acked, #silenced}`)

// census records in's state in the census sets, beside its commit: a
// failure costs the accuracy of a gauge, never a message.
func (r *Redis) census(ctx context.Context, pipe redis.Pipeliner, in *incident.Incident, now time.Time) {
	keys := r.censusKeys()
	if !in.Open() {
		for _, k := range keys {
			pipe.ZRem(ctx, k, in.Chain)
		}
		return
	}
	expiry := float64(in.Updated.Add(r.opts.ChainTTL).UnixMilli())
	base, other := keys[0], keys[1]
	if in.Ack != nil {
		base, other = other, base
	}
	pipe.ZAdd(ctx, base, redis.Z{Score: expiry, Member: in.Chain})
	pipe.ZRem(ctx, other, in.Chain)
	if in.Silenced(now) {
		pipe.ZAdd(ctx, keys[2], redis.Z{Score: float64(min(in.Silence.Until.UnixMilli(), int64(expiry))), Member: in.Chain})
	} else {
		pipe.ZRem(ctx, keys[2], in.Chain)
	}
}

// Census implements Store, from the census sets.
func (r *Redis) Census(ctx context.Context, now time.Time) (Census, error) {
	v, err := countIncidents.Run(ctx, r.client, r.censusKeys(), strconv.FormatInt(now.UnixMilli(), 10)).Int64Slice()
	if err != nil || len(v) != 3 {
		return Census{}, fmt.Errorf("count incidents in redis: %w", err)
	}
	return Census{Firing: int(v[0]), Acknowledged: int(v[1]), Silenced: int(v[2])}, nil
}
