package state

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/redistest"
)

// In a rolling update replicas of the first release and of this one share
// Redis. Each must see the chains as the other left them: an old replica
// neither starts a second chain nor misses a closure, and this release
// follows an old replica's re-root and closure.

// oldCommit is the first release's commit script, as it ran (git show
// baacf2f:state/redis.go).
// KEYS: lock, root, done, attempt, closed. ARGV: token, root, close (0/1),
// chain TTL ms, dedupe window ms, resolution.
var oldCommit = redis.NewScript(`
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

// oldReplica does what a first-release replica did with a chain's keys.
type oldReplica struct {
	t      *testing.T
	client *redis.Client
	s      *Redis // for its key names
	opts   Options
}

// load is the first release's Load: the root, else the closed chain.
func (o *oldReplica) load(chain string) (root, closed string) {
	vals, err := o.client.MGet(context.Background(), o.s.key(chain, "root"), o.s.key(chain, "closed")).Result()
	require.NoError(o.t, err)
	root, _ = vals[0].(string)
	if root == "" {
		closed, _ = vals[1].(string)
	}
	return root, closed
}

// commit records a delivery under the chain's lock, as the first release
// did.
func (o *oldReplica) commit(chain, notification, root string, close bool, resolution string) {
	ctx := context.Background()
	lock := o.s.key(chain, "lock")
	ok, err := o.client.SetNX(ctx, lock, "old", time.Second).Result()
	require.NoError(o.t, err)
	require.True(o.t, ok, "the chain's lock is free")
	defer o.client.Del(ctx, lock)
	closeChain := "0"
	if close {
		closeChain = "1"
	}
	keys := []string{lock, o.s.key(chain, "root"), o.s.key(chain, "done:"+notification), o.s.key(chain, "attempt:"+notification), o.s.key(chain, "closed")}
	require.NoError(o.t, oldCommit.Run(ctx, o.client, keys, "old", root, closeChain,
		o.opts.ChainTTL.Milliseconds(), o.opts.DedupeWindow.Milliseconds(), resolution).Err())
}

func rollingUpdate(t *testing.T, o Options) (*Redis, *oldReplica) {
	srv := redistest.Start(t)
	s := openRedis(t, srv.Addr, opts)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { client.Close() })
	return s, &oldReplica{t: t, client: client, s: s, opts: o}
}

// pttl is the key's time to live.
func pttl(t *testing.T, c *redis.Client, key string) time.Duration {
	t.Helper()
	d, err := c.PTTL(context.Background(), key).Result()
	require.NoError(t, err)
	return d
}

func TestRollingUpdateOldReplicaFollowsCommits(t *testing.T) {
	t.Parallel()
	s, old := rollingUpdate(t, opts)
	at := now()

	in := full("chain", at)
	deliver(t, s, in, "n1")
	root, closed := old.load("chain")
	require.Equal(t, "om_root", root, "an old replica replies to the chain")
	require.Empty(t, closed)
	require.InDelta(t, pttl(t, old.client, s.key("chain", "open")), pttl(t, old.client, s.key("chain", "root")), float64(10*time.Millisecond),
		"the root expires with the record")

	shut := resolved(in, "res", at)
	deliver(t, s, shut, "n2")
	root, closed = old.load("chain")
	require.Empty(t, root)
	require.Equal(t, "res om_root", closed, "an old replica dedupes the resolution")
	require.InDelta(t, pttl(t, old.client, s.key("chain", "resolved")), pttl(t, old.client, s.key("chain", "closed")), float64(10*time.Millisecond))

	// A custom bot's chain: the first release kept its first send.
	bot := incident.New("bot", at.Add(-time.Minute))
	deliver(t, s, bot, "b1")
	root, _ = old.load("bot")
	first, ok := strings.CutPrefix(root, legacyBotPrefix)
	require.True(t, ok, root)
	sent, err := time.Parse(time.RFC3339Nano, first)
	require.NoError(t, err)
	require.True(t, sent.Equal(bot.FirstSent), "%v, not %v", sent, bot.FirstSent)
	require.Equal(t, Loaded{Incident: bot}, load(t, s, "bot", ""), "the record agrees with what it wrote")
}

func TestRollingUpdateOldReplicaReroots(t *testing.T) {
	t.Parallel()
	s, old := rollingUpdate(t, opts)
	ctx := context.Background()
	in := full("chain", now())
	deliver(t, s, in, "n1")

	// Feishu lost the root: the old replica sent a new one.
	old.commit("chain", "n2", "om_new", false, "")
	l := load(t, s, "chain", "n2")
	require.True(t, l.Delivered)
	require.NotNil(t, l.Incident)
	require.Equal(t, "om_new", l.Incident.Root, "the old replica's root")
	require.WithinDuration(t, time.Now(), l.Incident.Updated, time.Second, "updated when the old replica wrote")
	want := *in
	want.Root, want.Updated = "om_new", l.Incident.Updated
	require.Equal(t, &want, l.Incident, "the record keeps its ID, labels, body, ack, silence and escalation")
	got, err := s.Get(ctx, in.ID)
	require.NoError(t, err)
	require.Equal(t, &want, got)

	// The read stored what it found, so the record now agrees.
	open, err := old.client.Get(ctx, s.key("chain", "open")).Result()
	require.NoError(t, err)
	require.Contains(t, open, `"root":"om_new"`)

	// This release's next commit goes on from there.
	next := want
	next.Updated = now()
	deliver(t, s, &next, "n3")
	root, _ := old.load("chain")
	require.Equal(t, "om_new", root)
	require.Equal(t, Loaded{Incident: &next, Delivered: true}, load(t, s, "chain", "n3"))
}

func TestRollingUpdateOldReplicaCloses(t *testing.T) {
	t.Parallel()
	s, old := rollingUpdate(t, opts)
	ctx := context.Background()
	in := full("chain", now())
	deliver(t, s, in, "n1")

	old.commit("chain", "n2", in.Root, true, "res-old")
	l := load(t, s, "chain", "n2")
	require.Nil(t, l.Incident, "the chain is closed")
	require.NotNil(t, l.Closed)
	want := *in
	want.State, want.Resolution, want.Updated = incident.Resolved, "res-old", l.Closed.Updated
	require.Equal(t, &want, l.Closed, "closed by the old replica's resolution, under the record's ID")
	require.WithinDuration(t, time.Now(), l.Closed.Updated, time.Second)
	got, err := s.Get(ctx, in.ID)
	require.NoError(t, err)
	require.Equal(t, &want, got)

	// An HA peer's copy of the resolution comes to this release: deduped
	// on the closed incident. Then the group fires again.
	require.Equal(t, "res-old", load(t, s, "chain", "n2-peer").Closed.Resolution)
	again := firing("chain", "om_again", now())
	deliver(t, s, again, "n3")
	root, closed := old.load("chain")
	require.Equal(t, "om_again", root)
	require.Empty(t, closed)
	require.Equal(t, Loaded{Incident: again, Delivered: true}, load(t, s, "chain", "n3"))
	require.Zero(t, old.client.Exists(ctx, s.key("chain", "resolved")).Val())
}

// The open record does not outlive the old replica's closure: the
// dedupe window's closed key goes long before the chain TTL's record
// would, and then nothing would say the chain had closed.
func TestRollingUpdateClosureOutlivesItsKey(t *testing.T) {
	t.Parallel()
	o := opts
	o.DedupeWindow = 300 * time.Millisecond
	s, old := rollingUpdate(t, o)
	in := full("chain", now())
	deliver(t, s, in, "n1")

	old.commit("chain", "n2", in.Root, true, "res-old")
	require.NotNil(t, load(t, s, "chain", "").Closed)
	eventually(t, 5*time.Second, func() bool {
		return old.client.Exists(context.Background(), s.key("chain", "closed")).Val() == 0
	}, "the closed key expires")
	require.Equal(t, Loaded{}, load(t, s, "chain", ""), "the chain is forgotten, as the old replica forgets it")
}

// An old replica can change a closed chain only by opening a new incident
// on it: it has none of the closed one's acknowledgement, silence or body.
func TestRollingUpdateOldReplicaReopens(t *testing.T) {
	t.Parallel()
	s, old := rollingUpdate(t, opts)
	ctx := context.Background()
	in := full("chain", now())
	shut := resolved(in, "res", now())
	deliver(t, s, shut, "n1")

	old.commit("chain", "n2", "om_other", false, "")
	l := load(t, s, "chain", "n2")
	require.Nil(t, l.Closed)
	require.NotNil(t, l.Incident)
	got := l.Incident
	require.NotEqual(t, in.ID, got.ID, "a new incident")
	require.Equal(t, "chain", incident.ChainOf(got.ID))
	require.Equal(t, "om_other", got.Root)
	require.Equal(t, incident.Firing, got.State)
	require.Equal(t, in.GroupKey, got.GroupKey, "of the same group")
	require.Equal(t, in.CommonLabels, got.CommonLabels)
	require.Nil(t, got.Ack)
	require.Nil(t, got.Silence)
	require.Zero(t, got.Escalation)
	require.Nil(t, got.Last)
	_, err := s.Get(ctx, in.ID)
	require.ErrorIs(t, err, ErrNotFound, "the closed incident is over")
	byID, err := s.Get(ctx, got.ID)
	require.NoError(t, err)
	sameLegacy(t, got, byID)
	require.Equal(t, got.ID, load(t, s, "chain", "").Incident.ID, "it keeps its ID")
}
