package core_test

import (
	"context"
	"encoding/json"
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

// The routing the first release wrote testdata/upgrade with.
const upgradeRouting = `
feishu:
  base_url: %s
  app_id: cli_feishutest
  app_secret: feishutest-secret
  api: im_v1
receivers:
  - {name: infra, chat_id: oc_infra}
  - {name: bot, webhook_url: '%s'}
route:
  receiver: infra
`

// After an upgrade the service goes on where the first release left its
// state file: a repeat still dedupes, the next notification of an open
// chain replies to its root, a late copy of a resolution is not news, a
// custom bot's chain still names its first message, and an attempt cut
// short is retried with its uuid.
func TestUpgradeFromTheFirstRelease(t *testing.T) {
	dir := filepath.Join("..", "testdata", "upgrade")
	var written struct{ Written time.Time }
	readJSON(t, filepath.Join(dir, "file-written.json"), &written)
	var sent []feishutest.Message
	readJSON(t, filepath.Join(dir, "file-messages.json"), &sent)
	path := filepath.Join(t.TempDir(), "state.db")
	b, err := os.ReadFile(filepath.Join(dir, "state.db"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))

	fs := feishutest.New(t)
	fs.AddBot("tok", "")
	fs.Seed(sent...)
	now := func() time.Time { return written.Written.Add(time.Minute) }
	logger := promslog.NewNopLogger()
	store, err := state.OpenFile(path, state.Options{ChainTTL: 168 * time.Hour, DedupeWindow: 10 * time.Minute, Now: now}, logger)
	require.NoError(t, err)
	defer store.Close()
	cfg, err := config.Parse(fmt.Appendf(nil, upgradeRouting, fs.URL, fs.BotURL("tok")))
	require.NoError(t, err)
	pl, err := core.NewPipeline(cfg, core.PipelineOptions{Logger: logger})
	require.NoError(t, err)
	c := core.New(store, pl, core.Options{Logger: logger, Registerer: prometheus.NewRegistry(), Now: now})

	notify := func(receiver, name string) core.Outcome {
		t.Helper()
		body, err := os.ReadFile(filepath.Join("..", "testdata", "alertmanager", name))
		require.NoError(t, err)
		p, err := webhook.DecodeBytes(body)
		require.NoError(t, err)
		return c.Notify(context.Background(), pl.Receiver(receiver), core.Notification{
			Payload: p, Key: webhook.NotificationKey(receiver, p), Body: body,
		})
	}
	newMessages := func() []feishutest.Message { return fs.Messages()[len(sent):] }

	require.Equal(t, core.Deduped, notify("infra", "firing-HighCPU-seq1-first-notification.json").Status)
	require.Equal(t, core.Deduped, notify("infra", "resolved-DiskFull-default.json").Status)
	require.Equal(t, core.Deduped, notify("bot", "firing-HighCPU-infra.json").Status)
	require.Empty(t, newMessages(), "nothing the first release delivered is sent again")

	out := notify("infra", "firing-HighCPU-seq2-new-alerts-added.json")
	require.Equal(t, core.Sent, out.Status, out.Err)
	require.Len(t, newMessages(), 1)
	require.Equal(t, sent[0].ID, newMessages()[0].ParentID, "the open chain goes on under its root")

	out = notify("bot", "resolved-HighCPU-infra.json")
	require.Equal(t, core.Sent, out.Status, out.Err)
	bot := newMessages()[1]
	first := sent[len(sent)-1] // the bot's message was the last one sent
	require.Equal(t, "webhook", first.Target)
	require.Contains(t, bot.Text, "Follow-up to the message of "+first.Time.UTC().Format("2006-01-02 15:04:05 MST"))

	critical, err := os.ReadFile(filepath.Join("..", "testdata", "alertmanager", "firing-HighCPU-critical-max_alerts1.json"))
	require.NoError(t, err)
	p, err := webhook.DecodeBytes(critical)
	require.NoError(t, err)
	key := webhook.NotificationKey("infra", p)
	loaded, err := store.Load(context.Background(), state.ChainKey("infra", "chat_id oc_infra", p.GroupKey), key)
	require.NoError(t, err)
	require.NotEmpty(t, loaded.Attempt, "the first release began this attempt")
	out = notify("infra", "firing-HighCPU-critical-max_alerts1.json")
	require.Equal(t, core.Sent, out.Status, out.Err)
	require.Equal(t, loaded.Attempt, newMessages()[2].UUID, "the retry sends with the attempt's uuid")
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v), path)
}
