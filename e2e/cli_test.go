package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// run runs the binary with args and returns its output and exit code.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	require.NoError(t, err)
	return string(out), 0
}

// The operator's commands, as a process: check-config passes a good file
// and lists every problem of a bad one without printing its secret; route
// test answers as amtool does; render prints the request without sending
// or needing credentials.
func TestCommands(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, []byte(`
feishu: {app_id: cli_x, app_secret: s3cr3t-value-0042}
oncall:
  - {name: primary, timezone: UTC, start: "2026-01-01T00:00:00", shift: 24h, members: [{email: alice@example.com}]}
receivers:
  - {name: infra, chat_id: oc_infra, mentions: {oncall: [primary]}}
  - {name: catchall, open_id: ou_catchall, msg_type: text}
route:
  receiver: catchall
  routes:
    - {matchers: ['team="infra"'], receiver: infra}
`), 0o600))
	out, code := run(t, "check-config", "--config.file="+good)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "SUCCESS")
	require.Contains(t, out, "2 receivers")
	require.NotContains(t, out, "s3cr3t")

	// Problems of decoding and of validation are listed together, one a
	// line, each with its line and key.
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(`
feishu: {app_id: cli_x, app_secret: s3cr3t-value-0042}
receivers:
  - {name: infra, chat_id: oc_infra}
  - {name: infra, chatid: oc_other}
state: {dedupe_window: 10 minutes}
route:
  receiver: nobody
  routes:
    - {matchers: ['team=~"("'], receiver: infra}
    - {match: {team: db}, receiver: infra}
`), 0o600))
	out, code = run(t, "check-config", "--config.file="+bad)
	require.Equal(t, 1, code, out)
	require.Equal(t, "Checking '"+bad+"'  FAILED:\n"+
		`  line 5: receivers[1].chatid: unknown key; did you mean chat_id?`+"\n"+
		`  line 5: receivers[1].name: duplicate receiver name "infra"`+"\n"+
		`  line 5: receivers[1]: exactly one of chat_id, open_id, user_id, email or webhook_url is required`+"\n"+
		`  line 6: state.dedupe_window: want a duration like 30s, 10m or 24h, not "10 minutes"`+"\n"+
		`  line 8: route.receiver: receiver "nobody" is not defined`+"\n"+
		`  line 10: route.routes[0].matchers[0]: matcher "team=~\"(\"": failed to create matcher: error parsing regexp: missing closing ): `+"`^(?:()$`\n"+
		`  line 11: route.routes[1].match: match is Alertmanager's deprecated form and is not supported here; write matchers instead: matchers: ['team="db"']`+"\n", out)

	// A secret file that cannot be read names its key and line.
	noSecret := filepath.Join(dir, "nosecret.yaml")
	require.NoError(t, os.WriteFile(noSecret, []byte(strings.Replace(string(mustRead(t, good)), "app_secret: s3cr3t-value-0042", "app_secret_file: missing-secret", 1)), 0o600))
	out, code = run(t, "check-config", "--config.file="+noSecret)
	require.Equal(t, 1, code, out)
	require.Equal(t, "Checking '"+noSecret+"'  FAILED:\n  line 2: feishu.app_secret_file: open "+filepath.Join(dir, "missing-secret")+": no such file or directory\n", out)

	badTemplate := strings.Replace(string(mustRead(t, good)), "{name: catchall, open_id: ou_catchall, msg_type: text}",
		"{name: catchall, open_id: ou_catchall, templates: {text: '{{ template \"nope\" . }}'}}", 1)
	require.NoError(t, os.WriteFile(bad, []byte(badTemplate), 0o600))
	out, code = run(t, "check-config", "--config.file="+bad)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, `receiver "catchall"`)
	require.Contains(t, out, `template "nope" not defined`)

	routes := filepath.Join("..", "testdata", "routes", "routing.yaml")
	out, code = run(t, "route", "test", "--config.file="+routes, "team=infra", `service="db"`, "severity=critical")
	require.Equal(t, 0, code, out)
	require.Equal(t, "pager,infra-db\n", out)
	out, code = run(t, "route", "test", "--config.file="+routes, "--verify.receivers=pager", "team=infra")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, `receivers "infra", want "pager"`)

	out, code = run(t, "render", "--config.file="+good, "--payload="+filepath.Join("..", "testdata", "alertmanager", "firing-HighCPU-seq1-first-notification.json"))
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "# receiver infra: chat_id oc_infra, interactive\nPOST https://open.feishu.cn/open-apis/im/v1/messages?receive_id_type=chat_id\n")
	require.Contains(t, out, `"receive_id": "oc_infra"`)
	require.Contains(t, out, `[FIRING:2] HighCPU`)
	require.Contains(t, out, "could not mention: alice@example.com", "emails are not looked up")
	require.NotContains(t, out, "s3cr3t")

	out, code = run(t, "render", "--config.file="+good, "--receiver=catchall", "--payload="+filepath.Join("..", "testdata", "alertmanager", "firing-DiskFull-default.json"))
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "# receiver catchall: open_id ou_catchall, text\nPOST https://open.feishu.cn/open-apis/im/v1/messages?receive_id_type=open_id\n")
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// The on-call preview reads the configuration and says who is on call and
// whom each receiver would mention, without starting the service.
func TestOnCallPreviewCommand(t *testing.T) {
	out, code := run(t, "oncall", "--config.file="+filepath.Join("..", "examples", "routing.reference.yaml"), "--at=2026-02-10T12:00:00+08:00")
	require.Equal(t, 0, code, out)
	require.Equal(t, "at 2026-02-10T12:00:00+08:00\n"+
		"rotation infra-primary: carol@example.com\n"+
		"rotation infra-secondary: erin@example.com\n"+
		`receiver infra mentions: carol@example.com, lead@example.com; @all when severity="critical"; and whoever the label owner names`+"\n"+
		`receiver infra escalates when severity=~"critical|page"`+"\n"+
		"receiver infra step 1 after 15m (urgent app) reaches: erin@example.com\n"+
		"receiver infra step 2 after 45m (urgent phone) reaches: lead@example.com\n",
		out)

	out, code = run(t, "oncall", "--config.file="+filepath.Join("..", "examples", "routing.reference.yaml"), "--at=tomorrow")
	require.Equal(t, 1, code)
	require.Contains(t, out, "want RFC 3339 time")
}
