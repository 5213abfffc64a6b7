package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/state"
)

func sendTestConfig(t *testing.T, fs *feishutest.Server, secret string) string {
	t.Helper()
	return writeConfig(t, fmt.Sprintf(`
feishu: {base_url: %s, app_id: %s, app_secret: %s}
receivers:
  - {name: infra, chat_id: oc_infra}
  - {name: db, chat_id: oc_db, msg_type: text}
route:
  receiver: infra
  routes:
    - {matchers: ['team="db"'], receiver: db}
`, fs.URL, feishutest.AppID, secret))
}

func sendTest(t *testing.T, o SendTestOptions) (string, error) {
	t.Helper()
	var b strings.Builder
	o.Logger = promslog.NewNopLogger()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := SendTest(ctx, &b, o)
	return b.String(), err
}

// send-test delivers a firing test notification to the receiver, and with
// Resolved its resolution as a reply, the root card updated in place: a
// chain as the service would make it. It works while a service holds the
// configured state file's lock, and keeps nothing there.
func TestSendTest(t *testing.T) {
	fs, err := feishutest.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer fs.Close()
	file := sendTestConfig(t, fs, feishutest.AppSecret)
	held, err := state.OpenFile(filepath.Join(filepath.Dir(file), "data", "state.db"), state.Options{}, promslog.NewNopLogger())
	require.NoError(t, err, "the configured store, as a running service holds it")
	defer held.Close()

	out, err := sendTest(t, SendTestOptions{ConfigFile: file, Receiver: "infra", Resolved: true})
	require.NoError(t, err, out)
	msgs := fs.Messages()
	require.Len(t, msgs, 2)
	root, reply := msgs[0], msgs[1]
	require.Equal(t, "oc_infra", root.TargetID)
	require.Equal(t, "interactive", root.Type)
	require.Empty(t, root.RootID)
	require.Equal(t, root.ID, reply.RootID, "the resolution replies to the first message")
	require.Contains(t, reply.Text, "[RESOLVED] "+TestAlertName)
	require.Equal(t, 1, root.Updates, "the root card shows the group resolved")
	require.Equal(t, "receiver infra (chat_id oc_infra): firing test notification sent, message "+root.ID+"\n"+
		"receiver infra (chat_id oc_infra): resolved test notification sent, a reply to "+root.ID+"\n", out)
	n, err := held.Chains(context.Background())
	require.NoError(t, err)
	require.Zero(t, n, "the configured store is not written")

	// Without a receiver, the test alert is routed; its labels are given.
	out, err = sendTest(t, SendTestOptions{ConfigFile: file, Labels: []string{"team=db", `severity="critical"`}})
	require.NoError(t, err, out)
	require.Equal(t, "receiver db (chat_id oc_db): firing test notification sent, message "+fs.Messages()[2].ID+"\n", out)
	last := fs.Messages()[2]
	require.Equal(t, "oc_db", last.TargetID)
	require.Contains(t, last.Text, "[FIRING:1] "+TestAlertName)
	require.Contains(t, last.Text, "critical")
	require.Len(t, fs.Messages(), 3, "no resolution unless asked")

	_, err = sendTest(t, SendTestOptions{ConfigFile: file, Receiver: "nobody"})
	require.ErrorContains(t, err, `no receiver "nobody"`)
	_, err = sendTest(t, SendTestOptions{ConfigFile: file, Labels: []string{"team=~db"}})
	require.ErrorContains(t, err, "want name=value")
}

// A refusal is printed and returned; the resolution is not sent after a
// firing notification that was not delivered.
func TestSendTestRefused(t *testing.T) {
	fs, err := feishutest.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer fs.Close()
	out, err := sendTest(t, SendTestOptions{ConfigFile: sendTestConfig(t, fs, "wrong-secret"), Receiver: "infra", Resolved: true})
	require.Error(t, err)
	require.Contains(t, out, "receiver infra (chat_id oc_infra): firing test notification FAILED: ")
	require.NotContains(t, out, "resolved")
	require.NotContains(t, out+err.Error(), "wrong-secret")
	require.Empty(t, fs.Messages())
}
