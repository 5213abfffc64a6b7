package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/amtest"
)

// serviceURL is where the shipped Alertmanager configurations send: the
// Service of deploy/kubernetes, which the test swaps for its own process.
const serviceURL = "http://alertmanager-feishu.monitoring.svc:9098"

// snippetMarker is the line before the README's Alertmanager snippet.
const snippetMarker = "<!-- alertmanager-snippet -->"

var snippetFence = regexp.MustCompile("(?s)^\\s*```yaml\n(.*?)\n```")

// readmeSnippet is the yaml fence that directly follows snippetMarker in
// the README.
func readmeSnippet(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(b), snippetMarker+"\n")
	require.True(t, ok, "the README has the line %s", snippetMarker)
	m := snippetFence.FindStringSubmatch(after)
	require.NotNil(t, m, "a ```yaml fence directly after %s", snippetMarker)
	return m[1]
}

// The Alertmanager configurations the project ships, the README's snippet
// and deploy/alertmanager/alertmanager.yml, load in the pinned Alertmanager
// and in Debian's 0.25 (an option of a newer release makes an older one
// refuse to start), and a notification sent through them arrives. Only the
// address, the token file and the route's timers are the test's own.
func TestShippedAlertmanagerConfigs(t *testing.T) {
	deployed, err := os.ReadFile(filepath.Join("..", "deploy", "alertmanager", "alertmanager.yml"))
	require.NoError(t, err)
	for _, c := range []struct {
		name  string
		yml   string
		token bool // the configuration sends the Secret's webhook_token
	}{
		{"readme", readmeSnippet(t), false},
		{"deploy", string(deployed), true},
	} {
		for version, bin := range map[string]func(*testing.T) string{
			amtest.Version: alertmanagerBinary,
			"debian":       func(*testing.T) string { return amtest.DebianAlertmanager },
		} {
			t.Run(c.name+"/"+version, func(t *testing.T) {
				fs := feishutest.New(t)
				cfg := setup(t, fs, "oc_infra")
				if c.token {
					b, err := os.ReadFile(cfg)
					require.NoError(t, err)
					require.NoError(t, os.WriteFile(cfg, append(b, "intake:\n  bearer_token: snippet-token\n"...), 0o600))
				}
				s := start(t, cfg)

				require.Contains(t, c.yml, serviceURL+"/webhook")
				yml := strings.ReplaceAll(c.yml, serviceURL, s.URL)
				am := amtest.Run(t, amtest.Options{Binary: bin(t), Config: testable(t, yml, c.token)})
				require.NoError(t, am.PostAlerts(hostAlert("host-a", time.Now(), false)))
				msgs := waitMessages(t, fs, 1, 15*time.Second)
				require.Contains(t, msgs[0].Text, "[FIRING:1]")
				require.Contains(t, msgs[0].Text, "HighCPU")
				require.Equal(t, "oc_infra", msgs[0].TargetID)
			})
		}
	}
}

// testable makes a shipped Alertmanager configuration quick to test: a
// route to its receiver if it has none (the README shows only the
// receiver), a second's group_wait, and with token a token file that
// exists where credentials_file points. Every other option stays as
// shipped, so that one an Alertmanager refuses still fails the test.
func testable(t *testing.T, yml string, token bool) string {
	t.Helper()
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(yml), &doc))
	receivers, _ := doc["receivers"].([]any)
	require.Len(t, receivers, 1)
	receiver := receivers[0].(map[string]any)
	route, _ := doc["route"].(map[string]any)
	if route == nil {
		route = map[string]any{"receiver": receiver["name"]}
		doc["route"] = route
	}
	route["group_wait"] = "1s"
	if token {
		wcs := receiver["webhook_configs"].([]any)
		auth := wcs[0].(map[string]any)["http_config"].(map[string]any)["authorization"].(map[string]any)
		require.Contains(t, auth, "credentials_file")
		file := filepath.Join(t.TempDir(), "webhook_token")
		// As a Kubernetes Secret made from a file often has it: a
		// trailing newline.
		require.NoError(t, os.WriteFile(file, []byte("snippet-token\n"), 0o600))
		auth["credentials_file"] = file
	}
	b, err := yaml.Marshal(doc)
	require.NoError(t, err)
	return string(b)
}
