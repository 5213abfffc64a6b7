package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"

	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
)

// headOf decodes a kept record's JSON alone, as an incident without its
// Last; nil when it is not of one of receivers, or cannot be read (Load
// reports that, to whoever acts on the chain).
func headOf(doc []byte, receivers []string) *incident.Incident {
	in := new(incident.Incident)
	if json.Unmarshal(doc, in) != nil || !slices.Contains(receivers, in.Receiver) || !in.Open() {
		return nil
	}
	in.Chain = incident.ChainOf(in.ID)
	return in
}

// OpenIncidents implements Store by reading every open record's JSON.
// Expired records not yet swept are left out.
func (f *File) OpenIncidents(_ context.Context, receivers ...string) ([]*incident.Incident, error) {
	now := f.opts.now()
	var out []*incident.Incident
	err := f.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOpen).ForEach(func(_, v []byte) error {
			doc, _ := splitRecord(v)
			if in := headOf(doc, receivers); in != nil && now.Sub(in.Updated) < f.opts.ChainTTL {
				out = append(out, in)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list open incidents: %w", err)
	}
	return out, nil
}

// recordHead is a chain's open record up to its Last: the webhook body is
// most of a record, and listing the incidents needs none of it. KEYS: the
// open record.
var recordHead = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
if not v then return false end
local i = string.find(v, "\n", 1, true)
if i then return string.sub(v, 1, i - 1) end
return v`)

// headsPerTrip is how many records one round trip to Redis reads.
const headsPerTrip = 256

// OpenIncidents implements Store: the open chains are those of the counting
// set, and each record's head is read in its chain's slot, a round trip
// for many at a time.
func (r *Redis) OpenIncidents(ctx context.Context, receivers ...string) ([]*incident.Incident, error) {
	chains, err := r.client.ZRangeByScore(ctx, r.prefix+"chains", &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(r.opts.now().UnixMilli(), 10), Max: "+inf",
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("list open incidents in redis: %w", err)
	}
	var out []*incident.Incident
	for batch := range slices.Chunk(chains, headsPerTrip) {
		cmds := make([]*redis.Cmd, len(batch))
		// Each command's error is its own: the pipeline's is the first.
		_, _ = r.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, chain := range batch {
				// The script's source each time: a pipeline cannot load
				// it on a NOSCRIPT answer, and it is short.
				cmds[i] = recordHead.Eval(ctx, pipe, []string{r.key(chain, "open")})
			}
			return nil
		})
		for _, cmd := range cmds {
			doc, err := cmd.Text()
			switch {
			case errors.Is(err, redis.Nil):
				continue // expired or resolved since the chain was listed
			case err != nil:
				return nil, fmt.Errorf("list open incidents in redis: %w", err)
			}
			if in := headOf([]byte(doc), receivers); in != nil {
				out = append(out, in)
			}
		}
	}
	return out, nil
}
