package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/amtest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/app"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/redistest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/servicetest"
)

// actionsConfig is a routing.yaml with actions over the long connection;
// am is where silences go, store the state block.
const actionsConfig = `
feishu:
  base_url: %s
  app_id: cli_feishutest
  app_secret_file: secret
state: %s
actions:
  alertmanager: {urls: [%s]}
  silence_durations: [1h, 4h]
receivers:
  - {name: infra, chat_id: oc_infra}
route:
  receiver: infra
`

// actionService runs the service in-process with actions, reconnecting
// within a second when the stand-in drops it.
func actionService(t *testing.T, fs *feishutest.Server, amURL, state string) *servicetest.Service {
	t.Helper()
	return actionServiceOn(t, fs, amURL, state, nil)
}

// actionServiceOn is actionService listening on ln, opened before.
func actionServiceOn(t *testing.T, fs *feishutest.Server, amURL, state string, ln net.Listener) *servicetest.Service {
	t.Helper()
	fs.SetClientConfig(feishutest.ClientConfig{ReconnectInterval: 1, ReconnectNonce: 1, PingInterval: 1})
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte(feishutest.AppSecret+"\n"), 0o600))
	if state == "" {
		state = "{path: " + filepath.Join(dir, "state.db") + "}"
	}
	cfg := filepath.Join(dir, "routing.yaml")
	require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, actionsConfig, fs.URL, state, amURL), 0o600))
	o := app.Options{ConfigFile: cfg, Grace: 5 * time.Second}
	if ln != nil {
		o.Listeners = []net.Listener{ln}
	}
	s, err := servicetest.RunInProcess(o)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("service: %v\n%s", err, s.Logs())
		}
	})
	return s
}

// waitConnections waits until n services hold a long connection.
func waitConnections(t *testing.T, fs *feishutest.Server, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return fs.Connections() == n }, 15*time.Second, 10*time.Millisecond,
		"%d long connections, want %d", fs.Connections(), n)
}

// cardButton is the value of the card's button for action (and duration).
func cardButton(t *testing.T, m feishutest.Message, action, duration string) map[string]string {
	t.Helper()
	v := m.Button(action, duration)
	require.NotNil(t, v, "no %s %s button on the card: %s", action, duration, m.Content)
	return v
}

// rootOf is the current state of the root message whose text contains s.
func rootOf(t *testing.T, fs *feishutest.Server, s string) feishutest.Message {
	t.Helper()
	for _, m := range fs.Messages() {
		if m.ParentID == "" && strings.Contains(m.Text, s) {
			return m
		}
	}
	t.Fatalf("no root message with %q", s)
	return feishutest.Message{}
}

// repliesTo are the replies in the chain of root.
func repliesTo(fs *feishutest.Server, root string) []feishutest.Message {
	var out []feishutest.Message
	for _, m := range fs.Messages() {
		if m.RootID == root {
			out = append(out, m)
		}
	}
	return out
}

// The whole path with a real Alertmanager: it sends a firing group, a click
// on "Silence 1h" makes exactly one silence there that mutes that group's
// alerts and no others and names the person, the card and the chain show
// it, and "Expire silence" ends it; with group_by: [] too, where the group
// has no labels of its own.
func TestSilenceFromTheCardInAlertmanager(t *testing.T) {
	bin := alertmanagerBinary(t)
	for _, groupBy := range []string{"alertname", ""} {
		t.Run("group_by ["+groupBy+"]", func(t *testing.T) {
			fs := feishutest.New(t)
			fs.SetUserName("ou_alice", "Alice Wong")
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			am := amtest.Run(t, amtest.Options{Binary: bin, Config: fmt.Sprintf(`
route:
  receiver: feishu
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - {matchers: ['team="infra"'], group_by: [%[1]s], receiver: feishu}
    - {matchers: ['team="db"'], group_by: [%[1]s], receiver: feishu}
receivers:
  - name: feishu
    webhook_configs: [{url: http://%[2]s/webhook}]
`, groupBy, ln.Addr())})
			actionServiceOn(t, fs, am.URL, "", ln)
			waitConnections(t, fs, 1)

			// New alerts wait out group_wait, so that the first
			// notification carries the whole group: with group_by: [] the
			// silence selects what its alerts had in common then.
			since := time.Now()
			require.NoError(t, am.PostAlerts(
				amtest.Alert{Labels: map[string]string{"alertname": "HighCPU", "team": "infra", "instance": "a"}, StartsAt: since},
				amtest.Alert{Labels: map[string]string{"alertname": "HighCPU", "team": "infra", "instance": "b"}, StartsAt: since},
				amtest.Alert{Labels: map[string]string{"alertname": "DiskFull", "team": "db", "instance": "c"}, StartsAt: since},
			))
			waitMessages(t, fs, 2, 15*time.Second)
			root := rootOf(t, fs, "HighCPU")

			answer, err := fs.Click(context.Background(), root.ID, "ou_alice", cardButton(t, root, "silence", "1h"))
			require.NoError(t, err)
			require.NotNil(t, answer.Toast)
			require.Equal(t, "success", answer.Toast.Type, answer.Toast.Content)

			silences, err := am.Silences()
			require.NoError(t, err)
			require.Len(t, silences, 1, "exactly one silence")
			sl := silences[0]
			require.Equal(t, "active", sl.Status.State)
			require.Contains(t, sl.CreatedBy, "Alice Wong")
			alerts, err := am.Alerts()
			require.NoError(t, err)
			require.Len(t, alerts, 3)
			for _, a := range alerts {
				muted := slices.Contains(a.Status.SilencedBy, sl.ID)
				require.Equal(t, a.Labels["team"] == "infra", muted, "alert %v silenced: %v", a.Labels, muted)
			}

			root = rootOf(t, fs, "HighCPU")
			require.Equal(t, 1, root.Updates, "the card was updated once, for the whole chat")
			require.Contains(t, root.Text, sl.ID, "the card links to the silence")
			expire := cardButton(t, root, "unsilence", "")
			require.Eventually(t, func() bool { return len(repliesTo(fs, root.ID)) == 1 }, 10*time.Second, 10*time.Millisecond)
			require.Contains(t, repliesTo(fs, root.ID)[0].Text, "Alice Wong")

			answer, err = fs.Click(context.Background(), root.ID, "ou_alice", expire)
			require.NoError(t, err)
			require.Equal(t, "success", answer.Toast.Type, answer.Toast.Content)
			got, err := am.Silence(sl.ID)
			require.NoError(t, err)
			require.Equal(t, "expired", got.Status.State)
			require.Eventually(t, func() bool { return len(repliesTo(fs, root.ID)) == 2 }, 10*time.Second, 10*time.Millisecond)
		})
	}
}

// Replicas on one Redis: the card sent by one, the click received by the
// other, one acknowledgement, one reply, one update of the card; and two
// clicks at once on different replicas give one result.
func TestAcknowledgeOnTwoReplicas(t *testing.T) {
	srv := redistest.Start(t)
	fs := feishutest.New(t)
	state := "{backend: redis, redis: {addresses: [" + srv.Addr + "]}}"
	a := actionService(t, fs, "http://127.0.0.1:1", state)
	waitConnections(t, fs, 1)
	connA := fs.ConnectionIDs()[0]
	actionService(t, fs, "http://127.0.0.1:1", state)
	waitConnections(t, fs, 2)
	connB := fs.ConnectionIDs()[1]
	require.NotEqual(t, connA, connB)

	for i, group := range []string{"one", "two"} {
		code, body := post(t, a.URL+"/webhook", amtest.Group(i, map[string]string{"team": "infra", "case": group}, false))
		require.Equal(t, 200, code, body)
	}
	msgs := fs.Messages()
	require.Len(t, msgs, 2)

	// One click, sent by Feishu to the replica that did not send the card.
	first := msgs[0]
	answer, err := fs.ClickOn(context.Background(), connB, first.ID, "ou_alice", cardButton(t, first, "ack", ""))
	require.NoError(t, err)
	require.Equal(t, connB, answer.Conn)
	require.Equal(t, "success", answer.Toast.Type, answer.Toast.Content)
	require.Eventually(t, func() bool { return len(repliesTo(fs, first.ID)) == 1 }, 10*time.Second, 10*time.Millisecond)
	first, _ = fs.Message(first.ID)
	require.Equal(t, 1, first.Updates)

	// Two people click at once, each reaching another replica.
	second := msgs[1]
	ack := cardButton(t, second, "ack", "")
	var wg sync.WaitGroup
	answers := make([]feishutest.ClickAnswer, 2)
	errs := make([]error, 2)
	for i, conn := range []int{connA, connB} {
		wg.Go(func() {
			answers[i], errs[i] = fs.ClickOn(context.Background(), conn, second.ID, []string{"ou_alice", "ou_bob"}[i], ack)
		})
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	types := []string{answers[0].Toast.Type, answers[1].Toast.Type}
	slices.Sort(types)
	require.Equal(t, []string{"info", "success"}, types, "one acknowledgement, and one told it was done already")
	require.Eventually(t, func() bool { return len(repliesTo(fs, second.ID)) == 1 }, 10*time.Second, 10*time.Millisecond)
	// The chain stays as it is: no second reply comes after the first.
	marker, err := fs.ClickOn(context.Background(), connA, second.ID, "ou_carol", ack)
	require.NoError(t, err)
	require.Equal(t, "info", marker.Toast.Type)
	require.Len(t, repliesTo(fs, second.ID), 1)
	second, _ = fs.Message(second.ID)
	require.Equal(t, 1, second.Updates, "the card was updated once, by the acknowledgement's answer")
}

// The long connection comes back by itself when Feishu drops it: the next
// click works within seconds.
func TestLongConnectionSurvivesADrop(t *testing.T) {
	fs := feishutest.New(t)
	s := actionService(t, fs, "http://127.0.0.1:1", "")
	waitConnections(t, fs, 1)
	code, body := post(t, s.URL+"/webhook", amtest.Group(1, map[string]string{"team": "infra"}, false))
	require.Equal(t, 200, code, body)
	root := fs.Messages()[0]
	require.Equal(t, 1.0, metric(t, s.URL, "alertmanager_feishu_callback_connection_up"))

	fs.DropConnections()
	start := time.Now()
	waitConnections(t, fs, 1)
	t.Logf("reconnected after %v", time.Since(start))
	answer, err := fs.Click(context.Background(), root.ID, "ou_alice", cardButton(t, root, "ack", ""))
	require.NoError(t, err)
	require.Equal(t, "success", answer.Toast.Type)
	require.Eventually(t, func() bool { return metric(t, s.URL, "alertmanager_feishu_callback_connection_up") == 1 }, 5*time.Second, 10*time.Millisecond)
}

// Card callbacks over HTTP: Feishu's URL check is answered, a signed and
// encrypted click acts, and a forged one is answered 401, counted, and
// does nothing.
func TestCallbacksOverHTTP(t *testing.T) {
	fs := feishutest.New(t)
	dir := t.TempDir()
	for name, v := range map[string]string{"secret": feishutest.AppSecret, "token": "vtoken", "key": "ekey"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600))
	}
	cfg := filepath.Join(dir, "routing.yaml")
	require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, `
feishu: {base_url: %s, app_id: cli_feishutest, app_secret_file: secret}
state: {path: %s}
actions: {transport: http, verification_token_file: token, encrypt_key_file: key}
receivers: [{name: infra, chat_id: oc_infra}]
route: {receiver: infra}
`, fs.URL, filepath.Join(dir, "state.db")), 0o600))
	s, err := servicetest.RunInProcess(app.Options{ConfigFile: cfg, Grace: 5 * time.Second})
	require.NoError(t, err)
	defer s.Stop(context.Background())
	fs.SetCallback(s.URL+"/feishu/callback", "vtoken", "ekey")
	require.NoError(t, fs.ChallengeCallback(context.Background()))
	require.Zero(t, fs.Connections(), "no long connection with transport http")

	code, body := post(t, s.URL+"/webhook", amtest.Group(1, map[string]string{"team": "infra"}, false))
	require.Equal(t, 200, code, body)
	root := fs.Messages()[0]
	ack := cardButton(t, root, "ack", "")

	fs.SetCallbackFault(feishutest.CallbackFault{BadSignature: true})
	answer, err := fs.Click(context.Background(), root.ID, "ou_mallory", ack)
	require.NoError(t, err)
	require.Equal(t, 401, answer.Status)
	require.Equal(t, 1.0, metric(t, s.URL, `alertmanager_feishu_actions_total{action="unknown",result="refused"}`))

	fs.SetCallbackFault(feishutest.CallbackFault{})
	answer, err = fs.Click(context.Background(), root.ID, "ou_alice", ack)
	require.NoError(t, err)
	require.Equal(t, 200, answer.Status)
	require.Equal(t, "success", answer.Toast.Type, answer.Toast.Content)
	require.Eventually(t, func() bool { return len(repliesTo(fs, root.ID)) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Contains(t, repliesTo(fs, root.ID)[0].Text, "ou_alice", "the ack, not mallory's forgery")
	require.Equal(t, 1.0, metric(t, s.URL, `alertmanager_feishu_actions_total{action="ack",result="done"}`))
}
