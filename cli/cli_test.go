package cli

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/core"
	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/state"
)

const escalating = `
feishu: {app_id: cli_x, app_secret: s}
oncall:
  - {name: infra-secondary, timezone: UTC, start: "2026-01-01T00:00:00", shift: 24h, members: [{open_id: ou_sec}]}
receivers:
  - name: infra
    chat_id: oc_infra
    escalation:
      when: ['severity=~"critical|page"']
      steps:
        - after: 10m
          mention: {oncall: [infra-secondary], users: [{email: lead@example.com}]}
          urgent: app
        - after: 30m
          mention: {users: [{user_id: u_head}]}
          urgent: phone
  - name: warn
    chat_id: oc_warn
    escalation:
      when: ['severity="warning"']
      steps: [{after: 5m, mention: {users: [{open_id: ou_x}]}}]
  - {name: quiet, chat_id: oc_quiet}
route: {receiver: infra}
`

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "routing.yaml")
	require.NoError(t, os.WriteFile(file, []byte(yaml), 0o600))
	return file
}

func payload(name string) string { return filepath.Join("..", "testdata", "alertmanager", name) }

func render(t *testing.T, file, payloadFile, receiver string, escalation bool) string {
	t.Helper()
	var b strings.Builder
	require.NoError(t, Render(&b, file, payloadFile, receiver, escalation))
	return b.String()
}

// With --escalation the first message is followed by each step's reply,
// as sent: to the first message, its people mentioned now, emails named
// (offline, nobody is looked up).
func TestRenderEscalation(t *testing.T) {
	file := writeConfig(t, strings.TrimSpace(escalating))
	firing := payload("firing-HighCPU-seq1-first-notification.json")

	out := render(t, file, firing, "", true)
	first, steps, ok := strings.Cut(out, "\n\n# receiver infra: escalation step 1 after 10m (urgent app), a reply to the first message\n")
	require.True(t, ok, out)
	require.True(t, strings.HasPrefix(first, "# receiver infra: chat_id oc_infra, interactive\n"), "the first message comes first")
	require.Contains(t, steps, "POST https://open.feishu.cn/open-apis/im/v1/messages/<message_id of the first message>/reply\n{\n  \"msg_type\": \"text\",\n")
	require.Contains(t, steps, `nobody acknowledged this for 10m. <at user_id=\"ou_sec\"></at> (buzzed in Feishu) (could not mention: lead@example.com)`)
	require.Contains(t, steps, "}\n\n# receiver infra: escalation step 2 after 30m (urgent phone), a reply to the first message\n")
	require.Contains(t, steps, `u_head`)
	require.Contains(t, steps, `"uuid": "<uuid of the attempt>"`)
	require.NotContains(t, steps, "receive_id", "a reply names its root, not the chat")

	require.NotContains(t, render(t, file, firing, "", false), "escalation", "only when asked")
	require.Equal(t, render(t, file, firing, "", false), first+"\n", "the first message is as before")

	require.Contains(t, render(t, file, firing, "warn", true),
		"}\n\n# receiver warn: no escalation: the group does not match when severity=\"warning\"\n")
	require.Contains(t, render(t, file, firing, "quiet", true), "}\n\n# receiver quiet: no escalation\n")
	require.Contains(t, render(t, file, payload("resolved-HighCPU-seq4-all-alerts-resolved.json"), "infra", true),
		"}\n\n# receiver infra: no escalation of a resolved group\n")
}

// Through v4 a reply is a send with the first message as its root.
func TestRenderEscalationV4(t *testing.T) {
	file := writeConfig(t, strings.NewReplacer("app_secret: s}", "app_secret: s, api: v4}", "urgent: app", "", "urgent: phone", "").Replace(escalating))
	out := render(t, file, payload("firing-HighCPU-seq1-first-notification.json"), "infra", true)
	require.Contains(t, out, "# receiver infra: escalation step 1 after 10m (urgent none), a reply to the first message\n"+
		"POST https://open.feishu.cn/open-apis/message/v4/send/\n{\n  \"chat_id\": \"oc_infra\",\n  \"root_id\": \"<message_id of the first message>\",\n")
}

// render shows the message content as indented JSON in its place, not as
// the escaped string im/v1 carries; the request's other fields stay in
// their order.
func TestRenderContentAsJSON(t *testing.T) {
	file := writeConfig(t, `
feishu: {app_id: cli_x, app_secret: s}
receivers:
  - {name: card, chat_id: oc_card}
  - {name: text, chat_id: oc_text, msg_type: text}
route: {receiver: card}
`)
	firing := payload("firing-HighCPU-seq1-first-notification.json")
	out := render(t, file, firing, "card", false)
	require.Contains(t, out, "POST https://open.feishu.cn/open-apis/im/v1/messages?receive_id_type=chat_id\n{\n"+
		"  \"receive_id\": \"oc_card\",\n  \"msg_type\": \"interactive\",\n  \"content\": {\n    \"config\": {\n", out)
	require.Contains(t, out, `"content": "[FIRING:2] HighCPU`, "the card's title is a string in the card")
	require.NotContains(t, out, `\"`, "no escaped JSON")

	out = render(t, file, firing, "text", false)
	require.Contains(t, out, "  \"content\": {\n    \"text\": \"[FIRING:2] HighCPU", out)
}

// Every configuration the repository ships passes check-config as cloned,
// but for the secret files a fresh clone cannot have: the quick start's
// passes whole (its stand-in secret is inline), and each other one's only
// problems are its secret files, missing.
func TestShippedConfigurationsCheck(t *testing.T) {
	quickstart := filepath.Join("..", "examples", "quickstart", "routing.yaml")
	files := []string{filepath.Join("..", "routing.yaml")}
	examples, err := filepath.Glob(filepath.Join("..", "examples", "*.yaml"))
	require.NoError(t, err)
	nested, err := filepath.Glob(filepath.Join("..", "examples", "*", "*.yaml"))
	require.NoError(t, err)
	files = append(append(files, examples...), nested...)
	require.Contains(t, files, quickstart)
	require.Contains(t, files, filepath.Join("..", "examples", "routing.reference.yaml"))
	for _, f := range files {
		if f == quickstart {
			var b strings.Builder
			require.NoError(t, CheckConfig(&b, f), f)
			require.Contains(t, b.String(), "SUCCESS", f)
			continue
		}
		cfg, err := config.Load(f)
		require.NoError(t, err, f)
		_, err = core.NewPipeline(cfg, core.PipelineOptions{Logger: promslog.NewNopLogger(), Offline: true})
		require.NoError(t, err, f)
		var problems config.Errors
		require.ErrorAs(t, cfg.CheckSecretFiles(), &problems, "%s names secret files a clone does not have", f)
		for _, p := range problems {
			require.ErrorIs(t, p, fs.ErrNotExist, "%s: %v", f, p)
		}
	}
}

// render shows the first message as serve sends it when the incident
// opens: with actions, the root card carries the buttons and the ID of an
// incident of that group, of the shape and size of the one sent.
func TestRenderShowsTheButtonsServeSends(t *testing.T) {
	file := writeConfig(t, `
feishu: {app_id: cli_x, app_secret: s}
actions:
  alertmanager: {urls: ["http://127.0.0.1:9093"]}
  silence_durations: [1h, 4h]
receivers:
  - {name: card, chat_id: oc_card}
  - {name: text, chat_id: oc_text, msg_type: text}
route: {receiver: card}
`)
	firing := payload("firing-HighCPU-seq1-first-notification.json")
	out := render(t, file, firing, "card", false)
	require.Contains(t, out, `"action": "ack"`)
	require.Contains(t, out, `"action": "silence"`)
	require.Contains(t, out, `"duration": "4h"`)

	p, err := os.ReadFile(firing)
	require.NoError(t, err)
	var groupKey struct{ GroupKey string }
	require.NoError(t, json.Unmarshal(p, &groupKey))
	chain := state.ChainKey("card", "chat_id oc_card", groupKey.GroupKey)
	ids := regexp.MustCompile(`"incident": "([^"]+)"`).FindAllStringSubmatch(out, -1)
	require.Len(t, ids, 3, "acknowledge and two silences")
	for _, id := range ids {
		require.Equal(t, chain, incident.ChainOf(id[1]), "the buttons name an incident of the group's chain")
	}

	require.NotContains(t, render(t, file, firing, "text", false), `"action"`, "text has no buttons")
}
