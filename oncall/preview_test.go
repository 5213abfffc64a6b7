package oncall

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

func TestPreviewOfTheExampleConfiguration(t *testing.T) {
	cfg, err := config.Load("../examples/routing.reference.yaml")
	require.NoError(t, err)
	var b strings.Builder
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	require.NoError(t, err)
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 1, 5, 9, 0, 0, 0, shanghai), "rotation infra-primary: nobody (before its start)\n" +
			"rotation infra-secondary: nobody (before its start)\n" +
			"receiver infra mentions: lead@example.com; @all when severity=\"critical\"; and whoever the label owner names\n" +
			"receiver infra escalates when severity=~\"critical|page\"\n" +
			"receiver infra step 1 after 15m (urgent app) reaches: nobody\n"},
		{time.Date(2026, 1, 6, 9, 0, 0, 0, shanghai), "rotation infra-primary: alice@example.com\n" +
			"rotation infra-secondary: dave@example.com\n" +
			"receiver infra mentions: alice@example.com, lead@example.com; @all when severity=\"critical\"; and whoever the label owner names\n" +
			"receiver infra escalates when severity=~\"critical|page\"\n" +
			"receiver infra step 1 after 15m (urgent app) reaches: dave@example.com\n" +
			"receiver infra step 2 after 45m (urgent phone) reaches: lead@example.com\n"},
		{time.Date(2026, 2, 10, 12, 0, 0, 0, shanghai), "rotation infra-primary: carol@example.com\n"},
	} {
		b.Reset()
		require.NoError(t, Preview(&b, cfg, tc.at))
		require.Contains(t, b.String(), tc.want)
	}
}

// Each receiver's escalation: which groups, and each step's time, urgent
// kind and people at the time asked, as the configuration names them.
func TestPreviewOfEscalation(t *testing.T) {
	cfg, err := config.Parse([]byte(`
feishu: {app_id: cli_x, app_secret: s}
oncall:
  - {name: secondary, timezone: UTC, start: "2026-01-01T00:00:00", shift: 24h, members: [{email: alice@example.com}, {open_id: ou_bob}, {user_id: u_carol}]}
receivers:
  - name: infra
    chat_id: oc_infra
    escalation:
      when: ['severity=~"critical|page"']
      steps:
        - after: 10m
          mention: {oncall: [secondary], users: [{email: lead@example.com}, {email: ALICE@example.com}]}
          urgent: app
        - after: 1h30m
          mention: {users: [{email: head@example.com}]}
          urgent: phone
  - name: db
    chat_id: oc_db
    escalation:
      steps: [{after: 5m, mention: {oncall: [secondary]}}]
  - {name: quiet, chat_id: oc_quiet}
route: {receiver: infra}
`))
	require.NoError(t, err)
	var b strings.Builder
	require.NoError(t, Preview(&b, cfg, time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)))
	require.Contains(t, b.String(), "rotation secondary: alice@example.com\n"+
		"receiver infra escalates when severity=~\"critical|page\"\n"+
		"receiver infra step 1 after 10m (urgent app) reaches: alice@example.com, lead@example.com\n"+
		"receiver infra step 2 after 1h30m (urgent phone) reaches: head@example.com\n"+
		"receiver db escalates every group\n"+
		"receiver db step 1 after 5m (urgent none) reaches: alice@example.com\n")
	require.NotContains(t, b.String(), "quiet")

	b.Reset()
	require.NoError(t, Preview(&b, cfg, time.Date(2026, 1, 3, 12, 0, 0, 0, time.UTC)))
	require.Contains(t, b.String(), "receiver db step 1 after 5m (urgent none) reaches: user_id u_carol\n")
	b.Reset()
	require.NoError(t, Preview(&b, cfg, time.Date(2025, 12, 31, 12, 0, 0, 0, time.UTC)))
	require.Contains(t, b.String(), "receiver db step 1 after 5m (urgent none) reaches: nobody\n", "before the rotation's start")
}
