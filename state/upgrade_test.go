package state

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/redistest"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// The state the first release left in testdata/upgrade is read by this
// one: open chains keep their roots, a recent resolution still dedupes,
// delivered notifications stay delivered and an unrecorded attempt keeps
// its uuid. The fixtures were written by that release's own code at commit
// baacf2f (`git show baacf2f:receiver/upgrade_fixture_test.go`, run with
// AMFEISHU_WRITE_UPGRADE_FIXTURES=1 in a worktree of that commit), and are
// never rewritten: only the old code writes the old shapes.

const upgradeDir = "../testdata/upgrade"

// upgradeOpts are the retention settings the fixtures were written with.
var upgradeOpts = Options{ChainTTL: 168 * time.Hour, DedupeWindow: 10 * time.Minute}

// fixture is what the first release was given and what it sent.
type fixture struct {
	written  time.Time
	messages []struct {
		ID   string    `json:"message_id"`
		API  string    `json:"api"`
		UUID string    `json:"uuid"`
		Time time.Time `json:"time"`
	}
	// The notifications it was posted, in order.
	seq1, disk, diskResolved, bot, critical *webhook.Payload
}

func readFixture(t *testing.T, backend string) *fixture {
	t.Helper()
	fx := &fixture{}
	var written struct {
		Written time.Time `json:"written"`
	}
	readJSON(t, filepath.Join(upgradeDir, backend+"-written.json"), &written)
	fx.written = written.Written
	readJSON(t, filepath.Join(upgradeDir, backend+"-messages.json"), &fx.messages)
	for p, name := range map[**webhook.Payload]string{
		&fx.seq1: "firing-HighCPU-seq1-first-notification.json", &fx.disk: "firing-DiskFull-default.json",
		&fx.diskResolved: "resolved-DiskFull-default.json", &fx.bot: "firing-HighCPU-infra.json",
		&fx.critical: "firing-HighCPU-critical-max_alerts1.json",
	} {
		f, err := os.Open(filepath.Join("..", "testdata", "alertmanager", name))
		require.NoError(t, err)
		*p, err = webhook.Decode(f)
		f.Close()
		require.NoError(t, err, name)
	}
	return fx
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v), path)
}

// The chains as the first release keyed them: its receivers "infra" (chat
// oc_infra) and "bot" (a custom bot), their targets as feishu.Target
// printed them.
func infraChain(p *webhook.Payload) string { return ChainKey("infra", "chat_id oc_infra", p.GroupKey) }
func botChain(p *webhook.Payload) string   { return ChainKey("bot", "webhook bot", p.GroupKey) }

// sent is the fixture's message for notification key: im/v1 uuids begin
// with the key.
func (fx *fixture) sent(t *testing.T, key string) (id string, at time.Time) {
	t.Helper()
	for _, m := range fx.messages {
		if m.UUID != "" && strings.HasPrefix(key, m.UUID[:32]) {
			return m.ID, m.Time
		}
	}
	t.Fatalf("no message for notification %s", key)
	return "", time.Time{}
}

// checkUpgraded checks what the first release's state means to s, then
// that s works on: commits replace the old shape, and the count is right.
func checkUpgraded(t *testing.T, s Store, fx *fixture) (seq1 *incident.Incident) {
	t.Helper()
	ctx := context.Background()
	sinceWrite := func(tm time.Time) {
		t.Helper()
		require.False(t, tm.After(fx.written), tm)
		require.True(t, tm.After(fx.written.Add(-time.Minute)), tm)
	}

	key := webhook.NotificationKey("infra", fx.seq1)
	l := load(t, s, infraChain(fx.seq1), key)
	require.NotNil(t, l.Incident, "seq1's chain is open")
	root, sentAt := fx.sent(t, key)
	require.Equal(t, root, l.Incident.Root)
	require.Equal(t, incident.Firing, l.Incident.State)
	require.Equal(t, infraChain(fx.seq1), incident.ChainOf(l.Incident.ID))
	// Redis kept no time: it is read from the key's expiry, which ran on
	// while the dump was taken.
	require.WithinRange(t, l.Incident.Updated, sentAt.Add(-time.Second), fx.written, "updated after its send")
	sinceWrite(l.Incident.Updated)
	require.True(t, l.Delivered)
	require.Equal(t, l.Incident.ID, load(t, s, infraChain(fx.seq1), "other").Incident.ID, "an incident keeps its ID")
	got, err := s.Get(ctx, l.Incident.ID)
	require.NoError(t, err)
	sameLegacy(t, l.Incident, got)
	seq1 = l.Incident

	diskKey, resolvedKey := webhook.NotificationKey("infra", fx.disk), webhook.NotificationKey("infra", fx.diskResolved)
	l = load(t, s, infraChain(fx.disk), resolvedKey)
	require.Nil(t, l.Incident)
	require.NotNil(t, l.Closed, "DiskFull's chain is closed")
	diskRoot, _ := fx.sent(t, diskKey)
	require.Equal(t, diskRoot, l.Closed.Root)
	require.Equal(t, incident.Resolved, l.Closed.State)
	require.Equal(t, webhook.ResolutionKey("infra", fx.diskResolved), l.Closed.Resolution,
		"an HA peer's copy of the resolution is deduped")
	sinceWrite(l.Closed.Updated)
	require.True(t, l.Delivered)
	require.True(t, load(t, s, infraChain(fx.disk), diskKey).Delivered)
	got, err = s.Get(ctx, l.Closed.ID)
	require.NoError(t, err)
	sameLegacy(t, l.Closed, got)

	l = load(t, s, botChain(fx.bot), webhook.NotificationKey("bot", fx.bot))
	require.NotNil(t, l.Incident, "the bot's chain is open")
	require.Empty(t, l.Incident.Root, "a custom bot has no root")
	var botSent time.Time
	for _, m := range fx.messages {
		if m.API == "bot" {
			botSent = m.Time
		}
	}
	require.False(t, l.Incident.FirstSent.Before(botSent), "first sent after the bot's message went")
	sinceWrite(l.Incident.FirstSent)
	require.True(t, l.Delivered)

	critKey := webhook.NotificationKey("infra", fx.critical)
	l = load(t, s, infraChain(fx.critical), critKey)
	require.Nil(t, l.Incident, "the critical group was never delivered")
	require.False(t, l.Delivered)
	require.True(t, strings.HasPrefix(l.Attempt, critKey[:32]+"-"), "its attempt's uuid is kept: %q", l.Attempt)
	require.Len(t, l.Attempt, 49)

	require.Equal(t, 2, chains(t, s), "seq1's and the bot's")

	// The receiver goes on: seq1's group gets its next notification, the
	// bot's resolves, DiskFull fires again.
	at := fx.written.Add(time.Minute)
	next := *seq1
	next.Updated, next.Last = at, []byte(`{"status":"firing"}`)
	commitLocked(t, s, Write{Incident: &next, Notification: "seq2", At: at})
	l = load(t, s, infraChain(fx.seq1), "seq2")
	require.Equal(t, Loaded{Incident: &next, Delivered: true}, l)
	got, err = s.Get(ctx, seq1.ID)
	require.NoError(t, err)
	require.Equal(t, &next, got)

	bot := load(t, s, botChain(fx.bot), "").Incident
	deliver(t, s, resolved(bot, "res", at), "bot-resolved")
	deliver(t, s, firing(infraChain(fx.disk), "om_again", at), "disk-again")
	require.Nil(t, load(t, s, infraChain(fx.disk), resolvedKey).Closed, "a firing ends the closed incident")
	require.Equal(t, 2, chains(t, s), "seq1's and DiskFull's")
	return seq1
}

// sameLegacy compares two reads of one first-release incident. On Redis its
// Updated is worked out from the key's expiry at each read, to about a
// millisecond.
func sameLegacy(t *testing.T, want, got *incident.Incident) {
	t.Helper()
	require.WithinDuration(t, want.Updated, got.Updated, 10*time.Millisecond)
	c := *got
	c.Updated = want.Updated
	require.Equal(t, want, &c)
}

func TestUpgradeFile(t *testing.T) {
	fx := readFixture(t, "file")
	path := filepath.Join(t.TempDir(), "state.db")
	b, err := os.ReadFile(filepath.Join(upgradeDir, "state.db"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	o := upgradeOpts
	c := &clock{t: fx.written.Add(time.Minute)}
	o.Now = c.Now

	f := openFile(t, path, o)
	first := load(t, f, infraChain(fx.seq1), "").Incident
	require.NoError(t, f.db.View(func(tx *bolt.Tx) error {
		require.Nil(t, tx.Bucket(bucketLegacyChains), "the old buckets are gone")
		require.Nil(t, tx.Bucket(bucketLegacyClosed))
		require.Equal(t, schemaVersion, string(tx.Bucket(bucketMeta).Get(keySchema)))
		return nil
	}))
	require.NoError(t, f.Close())

	f = openFile(t, path, o)
	defer f.Close()
	seq1 := checkUpgraded(t, f, fx)
	require.Equal(t, first, seq1, "the migration ran once")
}

func TestUpgradeRedis(t *testing.T) {
	fx := readFixture(t, "redis")
	var keys []struct {
		Key   string             `json:"key"`
		Type  string             `json:"type"`
		Value string             `json:"value"`
		ZSet  map[string]float64 `json:"zset"`
		PTTL  int64              `json:"pttl_ms"`
	}
	readJSON(t, filepath.Join(upgradeDir, "redis-keys.json"), &keys)
	srv := redistest.Start(t)
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer raw.Close()
	ctx := context.Background()
	for _, k := range keys {
		ttl := time.Duration(k.PTTL) * time.Millisecond // 0: none
		switch k.Type {
		case "string":
			require.NoError(t, raw.Set(ctx, k.Key, k.Value, ttl).Err())
		case "zset":
			for m, score := range k.ZSet {
				require.NoError(t, raw.ZAdd(ctx, k.Key, redis.Z{Member: m, Score: score}).Err())
			}
			if ttl > 0 {
				require.NoError(t, raw.PExpire(ctx, k.Key, ttl).Err())
			}
		default:
			t.Fatalf("key %s of type %s", k.Key, k.Type)
		}
	}
	// The keys count down from the moment they were written again, so the
	// store's clock starts at the time they were dumped.
	restored := time.Now()
	o := upgradeOpts
	o.Now = func() time.Time { return fx.written.Add(time.Since(restored)) }
	s, err := OpenRedis(RedisOptions{Addresses: []string{srv.Addr}, KeyPrefix: "amfeishu:"}, o, promslog.NewNopLogger())
	require.NoError(t, err)
	defer s.Close()

	seq1 := checkUpgraded(t, s, fx)
	// Commits keep the old shape too, for replicas of the first release
	// still running in a rolling update.
	bot := load(t, s, botChain(fx.bot), "").Closed
	require.NotNil(t, bot)
	for key, want := range map[string]string{
		s.key(seq1.Chain, "root"):            seq1.Root,
		s.key(seq1.Chain, "closed"):          "",
		s.key(infraChain(fx.disk), "root"):   "om_again",
		s.key(infraChain(fx.disk), "closed"): "",
		s.key(botChain(fx.bot), "root"):      "",
		s.key(botChain(fx.bot), "closed"):    "res " + legacyBotPrefix + bot.FirstSent.UTC().Format(time.RFC3339Nano),
	} {
		got, err := raw.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			err = nil
		}
		require.NoError(t, err)
		require.Equal(t, want, got, key)
	}
}
