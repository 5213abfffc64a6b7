package core_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/core"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/state"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// newCore is a core on a fresh file store, delivering to the stand-in
// through the routing of upgradeRouting.
func newCore(t *testing.T) (*core.Core, *core.Pipeline, state.Store, *feishutest.Server) {
	t.Helper()
	fs := feishutest.New(t)
	fs.AddBot("tok", "")
	logger := promslog.NewNopLogger()
	store, err := state.OpenFile(filepath.Join(t.TempDir(), "state.db"), state.Options{ChainTTL: time.Hour, DedupeWindow: time.Hour}, logger)
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	cfg, err := config.Parse(fmt.Appendf(nil, upgradeRouting, fs.URL, fs.BotURL("tok")))
	require.NoError(t, err)
	pl, err := core.NewPipeline(cfg, core.PipelineOptions{Logger: logger})
	require.NoError(t, err)
	return core.New(store, pl, core.Options{Logger: logger, Registerer: prometheus.NewRegistry()}), pl, store, fs
}

func notification(t testing.TB, receiver, name string) core.Notification {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("..", "testdata", "alertmanager", name))
	require.NoError(t, err)
	p, err := webhook.DecodeBytes(body)
	require.NoError(t, err)
	return core.Notification{Payload: p, Key: webhook.NotificationKey(receiver, p), Body: body}
}

// The incident a chain's first message opens is stored whole: any replica
// can act on it later from the record alone.
func TestNotifyStoresTheIncident(t *testing.T) {
	c, pl, store, fs := newCore(t)
	n := notification(t, "infra", "firing-HighCPU-seq1-first-notification.json")
	out := c.Notify(context.Background(), pl.Receiver("infra"), n)
	require.Equal(t, core.Sent, out.Status, out.Err)

	loaded, err := store.Load(context.Background(), state.ChainKey("infra", "chat_id oc_infra", n.Payload.GroupKey), n.Key)
	require.NoError(t, err)
	require.True(t, loaded.Delivered)
	in := loaded.Incident
	require.NotNil(t, in)
	require.Equal(t, fs.Messages()[0].ID, in.Root)
	require.Equal(t, "infra", in.Receiver)
	require.Equal(t, "chat_id oc_infra", in.Target)
	require.Equal(t, n.Payload.GroupKey, in.GroupKey)
	require.Nil(t, in.GroupLabels, "a receiver nothing acts on keeps no labels")
	require.Nil(t, in.CommonLabels)
	require.Nil(t, in.Last, "a receiver without actions keeps no notification: nothing renders its card again")
	got, err := store.Get(context.Background(), in.ID)
	require.NoError(t, err)
	require.Equal(t, in.Root, got.Root, "the incident's id finds it")

	resolved := notification(t, "infra", "resolved-HighCPU-seq4-all-alerts-resolved.json")
	out = c.Notify(context.Background(), pl.Receiver("infra"), resolved)
	require.Equal(t, core.Sent, out.Status, out.Err)
	got, err = store.Get(context.Background(), in.ID)
	require.NoError(t, err)
	require.False(t, got.Open(), "the resolution closed it")
	require.Equal(t, webhook.ResolutionKey("infra", resolved.Payload), got.Resolution)
}

// A custom bot's incident keeps when its first message went, as a field of
// its own, and no root.
func TestNotifyBotIncident(t *testing.T) {
	c, pl, store, _ := newCore(t)
	n := notification(t, "bot", "firing-HighCPU-infra.json")
	before := time.Now()
	require.Equal(t, core.Sent, c.Notify(context.Background(), pl.Receiver("bot"), n).Status)
	loaded, err := store.Load(context.Background(), state.ChainKey("bot", "webhook bot", n.Payload.GroupKey), n.Key)
	require.NoError(t, err)
	require.Empty(t, loaded.Incident.Root)
	require.WithinRange(t, loaded.Incident.FirstSent, before, time.Now())
}

// The outcome says whether Alertmanager should retry soon: a store that
// cannot be used may pass, a message that cannot be rendered will not.
func TestNotifyOutcomeClasses(t *testing.T) {
	c, pl, store, fs := newCore(t)
	fs.RemoveBot("oc_infra")
	out := c.Notify(context.Background(), pl.Receiver("infra"), notification(t, "infra", "firing-DiskFull-default.json"))
	require.Equal(t, core.Failed, out.Status)
	require.True(t, out.Permanent, "the bot is not in the chat until someone adds it: %v", out.Err)

	require.NoError(t, store.Close())
	out = c.Notify(context.Background(), pl.Receiver("bot"), notification(t, "bot", "firing-DiskFull-default.json"))
	require.Equal(t, core.Failed, out.Status)
	require.False(t, out.Permanent, "a closed store is not the operator's configuration: %v", out.Err)
}
