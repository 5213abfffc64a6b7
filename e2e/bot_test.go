package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/app"
)

// A team without a Feishu app: the service runs with custom bots alone,
// their URL and secret in files, and never asks for a tenant token.
func TestCustomBotsWithoutAnApp(t *testing.T) {
	fs := feishutest.New(t)
	fs.AddBot("team-hook", "team-secret")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hook"), []byte(fs.BotURL("team-hook")+"\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hook-secret"), []byte("team-secret\n"), 0o600))
	writeConfig(t, dir, `
state: {path: state.db}
receivers:
  - {name: team, webhook_url_file: hook, secret_file: hook-secret, msg_type: post}
route: {receiver: team}
`)
	cfg := filepath.Join(dir, "routing.yaml")
	out, code := run(t, "check-config", "--config.file="+cfg)
	require.Equal(t, 0, code, out)
	out, code = run(t, "render", "--config.file="+cfg, "--payload="+filepath.Join("..", "testdata", "alertmanager", "firing-DiskFull-default.json"))
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "# receiver team: webhook team, post\nPOST <webhook_url>\n")
	require.Contains(t, out, `"sign": "`)
	require.NotContains(t, out, "team-hook")
	require.NotContains(t, out, "team-secret")

	s := serve(t, app.Options{ConfigFile: cfg})
	for _, name := range []string{"firing-DiskFull-default.json", "resolved-DiskFull-default.json"} {
		status, body := post(t, s.URL+"/webhook", payload(t, name))
		require.Equal(t, http.StatusOK, status, body)
	}
	msgs := fs.Messages()
	require.Len(t, msgs, 2)
	require.Equal(t, "post", msgs[0].Type)
	require.Contains(t, msgs[1].Text, "Follow-up to the message of")
	require.Zero(t, fs.TokenRequests())
	require.NotContains(t, s.Logs(), "team-hook", "the webhook URL is never logged")
}
