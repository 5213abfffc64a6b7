package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/amtest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/app"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/redistest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/servicetest"
	"github.com/alertmanager-feishu/alertmanager-feishu/state"
)

// escalationConfig escalates critical groups of infra in real seconds:
// step 1 after first+1, step 2 after first+2 (seconds since the incident's
// first message).
const escalationConfig = `
feishu:
  base_url: %s
  app_id: cli_feishutest
  app_secret_file: secret
  rate_limit: {per_chat: 0, per_app: 0, per_app_minute: 0}
state: %s
oncall:
  - {name: secondary, timezone: UTC, start: "2026-01-01T00:00:00", shift: 24h, members: [{open_id: ou_second}]}
receivers:
  - name: infra
    chat_id: oc_infra
    escalation:
      when: ['severity="critical"']
      steps:
        - {after: %ds, mention: {oncall: [secondary]}, urgent: app}
        - {after: %ds, mention: {users: [{open_id: ou_head}, {open_id: ou_outsider}]}, urgent: phone}
route:
  receiver: infra
`

// escalationFolder writes the configuration, with the state block given
// ("" for a state file of its own), and returns routing.yaml's path.
func escalationFolder(t *testing.T, fs *feishutest.Server, state string, first, second int) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte(feishutest.AppSecret+"\n"), 0o600))
	if state == "" {
		state = "{path: " + filepath.Join(dir, "state.db") + "}"
	}
	cfg := filepath.Join(dir, "routing.yaml")
	require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, escalationConfig, fs.URL, state, first, second), 0o600))
	return cfg
}

// escalations are the escalation replies in root's chain, oldest first.
func escalations(fs *feishutest.Server, root string) []feishutest.Message {
	var out []feishutest.Message
	for _, m := range repliesTo(fs, root) {
		if strings.Contains(m.Text, "⏫") {
			out = append(out, m)
		}
	}
	return out
}

func critical(n int) []byte {
	return amtest.Group(n, map[string]string{"team": "infra", "severity": "critical"}, false)
}

// In real seconds, with the service in-process: an unacknowledged critical
// incident gets step 1 then step 2, each once and within a second of its
// time; the buzz reaches the step's people in the chat, and those outside
// it are still mentioned, logged and counted; a warning group gets none.
func TestEscalationInRealSeconds(t *testing.T) {
	fs := feishutest.New(t)
	fs.AddChatMembers("oc_infra", "ou_second", "ou_head")
	s, err := servicetest.RunInProcess(app.Options{ConfigFile: escalationFolder(t, fs, "", 1, 2)})
	require.NoError(t, err)
	defer s.Stop(context.Background())

	posted := time.Now()
	code, body := post(t, s.URL+"/webhook", critical(1))
	require.Equal(t, 200, code, body)
	code, body = post(t, s.URL+"/webhook", amtest.Group(2, map[string]string{"team": "infra", "severity": "warning"}, false))
	require.Equal(t, 200, code, body)
	roots := fs.Messages()
	require.Len(t, roots, 2)
	root, warning := roots[0], roots[1]

	require.Eventually(t, func() bool { return len(escalations(fs, root.ID)) == 2 }, 10*time.Second, 10*time.Millisecond)
	steps := escalations(fs, root.ID)
	for i, m := range steps {
		after := time.Duration(i+1) * time.Second
		// The step is due a delay after the incident began, which the
		// service reckons between the webhook's arrival and the root's
		// send: never before the post plus the delay, and within a second
		// of the root's arrival plus the delay.
		late := m.Time.Sub(root.Time.Add(after))
		t.Logf("step %d sent %v after its time", i+1, late)
		require.False(t, m.Time.Before(posted.Add(after)), "step %d early", i+1)
		require.Less(t, late, time.Second, "step %d late", i+1)
	}
	// A step's buzz follows its reply: wait for both before reading them.
	require.Eventually(t, func() bool { return len(fs.Urgents()) == 2 }, 10*time.Second, 10*time.Millisecond)
	require.Contains(t, steps[0].Mentions(), "ou_second")
	require.ElementsMatch(t, []string{"ou_head", "ou_outsider"}, steps[1].Mentions())
	require.Equal(t, []feishutest.Urgent{
		{MessageID: root.ID, Kind: "app", OpenIDs: []string{"ou_second"}},
		{MessageID: root.ID, Kind: "phone", OpenIDs: []string{"ou_head"}},
	}, fs.Urgents(), "only the people in the chat are buzzed")
	// The log line follows the refusal's count, which follows Feishu's answer.
	require.Eventually(t, func() bool { return strings.Contains(s.Logs(), "ou_outsider") }, 10*time.Second, 10*time.Millisecond,
		"the one Feishu would not buzz is logged")
	require.Equal(t, 1.0, metric(t, s.URL, `alertmanager_feishu_escalation_buzz_refused_total{kind="phone",receiver="infra"}`))
	require.Equal(t, 1.0, metric(t, s.URL, `alertmanager_feishu_escalations_total{receiver="infra",step="1"}`))
	require.Equal(t, 1.0, metric(t, s.URL, `alertmanager_feishu_escalations_total{receiver="infra",step="2"}`))
	require.Empty(t, repliesTo(fs, warning.ID), "a warning group does not escalate")
	require.Eventually(t, func() bool {
		root, _ = fs.Message(root.ID)
		return strings.Contains(root.Text, "**Escalated** to step 2")
	}, 5*time.Second, 10*time.Millisecond, "the root card shows the step reached: %s", root.Text)
	require.Contains(t, root.Text, "<at id=ou_head></at>", "and whom it reached")
}

// Two replicas on one Redis, each running the timers: every step fires
// exactly once, with both replicas up, and also when the replica that
// scheduled it is killed before it comes due.
func TestEscalationOnTwoReplicasSurvivesAKill(t *testing.T) {
	srv := redistest.Start(t)
	fs := feishutest.New(t)
	cfg := escalationFolder(t, fs, "{backend: redis, redis: {addresses: ["+srv.Addr+"]}}", 2, 3)
	a, b := start(t, cfg), start(t, cfg)
	steps := func(s *servicetest.Service, n int) float64 {
		return metric(t, s.URL, fmt.Sprintf(`alertmanager_feishu_escalations_total{receiver="infra",step="%d"}`, n))
	}
	// root is the newest root: the group a post just opened, as only
	// posts open chains.
	root := func() string {
		var id string
		for _, m := range fs.Messages() {
			if m.ParentID == "" {
				id = m.ID
			}
		}
		return id
	}
	// fired waits until each of roots got both steps, at most within.
	fired := func(roots []string, within time.Duration, msg string) {
		t.Helper()
		require.Eventually(t, func() bool {
			for _, r := range roots {
				if len(escalations(fs, r)) < 2 {
					return false
				}
			}
			return true
		}, within, 20*time.Millisecond, msg)
	}

	// Both up: groups posted to either replica, whose steps either fires.
	var both []string
	for i, s := range []*servicetest.Service{a, b, a, b} {
		code, body := post(t, s.URL+"/webhook", critical(i))
		require.Equal(t, 200, code, body)
		r := root()
		require.NotContains(t, both, r, "a new root")
		both = append(both, r)
	}
	fired(both, 15*time.Second, "both replicas fire the steps")
	// A step is counted once recorded, which follows the reply Feishu
	// took: wait for the counts, then hold them to exactly one each.
	counted := func(n int) func() bool {
		return func() bool { return steps(a, n)+steps(b, n) >= 4 }
	}
	require.Eventually(t, counted(1), 5*time.Second, 20*time.Millisecond)
	require.Eventually(t, counted(2), 5*time.Second, 20*time.Millisecond)
	require.Equal(t, 4.0, steps(a, 1)+steps(b, 1), "each step 1 once, on one replica")
	require.Equal(t, 4.0, steps(a, 2)+steps(b, 2), "each step 2 once")
	b1, b2 := steps(b, 1), steps(b, 2)

	// The replica that scheduled every step dies before they come due.
	var killed []string
	for i := 10; i < 13; i++ {
		code, body := post(t, a.URL+"/webhook", critical(i))
		require.Equal(t, 200, code, body)
		r := root()
		require.NotContains(t, append(both, killed...), r, "a new root")
		killed = append(killed, r)
	}
	a.Kill()
	// On a loaded machine a may have claimed a step before it died: that
	// claim runs out after state.ClaimTTL, and then b fires the step.
	fired(killed, state.ClaimTTL+15*time.Second, "replica b fires the steps")
	// Steps do not fire twice: a later marker shows nothing more came.
	code, body := post(t, b.URL+"/webhook", critical(99))
	require.Equal(t, 200, code, body)
	require.Never(t, func() bool {
		for _, r := range append(both, killed...) {
			if len(escalations(fs, r)) > 2 {
				return true
			}
		}
		return false
	}, 2*time.Second, 50*time.Millisecond)
	require.Equal(t, b1+3, steps(b, 1))
	require.Equal(t, b2+3, steps(b, 2))
}

// A step due while the service was down fires once, when it starts again.
func TestEscalationStepDueDuringDowntime(t *testing.T) {
	fs := feishutest.New(t)
	cfg := escalationFolder(t, fs, "", 1, 600)
	s := start(t, cfg)
	code, body := post(t, s.URL+"/webhook", critical(1))
	require.Equal(t, 200, code, body)
	root := fs.Messages()[0]
	stop(t, s) // before the step's second is up
	require.Empty(t, escalations(fs, root.ID), "stopped before step 1 came due")
	// The downtime itself: real time passes, with no service running,
	// until step 1 is due.
	<-time.After(time.Until(root.Time.Add(1500 * time.Millisecond)))
	start(t, cfg)
	require.Eventually(t, func() bool { return len(escalations(fs, root.ID)) == 1 }, 5*time.Second, 10*time.Millisecond)
	require.Never(t, func() bool { return len(escalations(fs, root.ID)) > 1 }, time.Second, 50*time.Millisecond)
}
