package config

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// withEscalation is the contract's example, on line 6 a receiver with
// escalation (line 8), on line 16 one without.
const withEscalation = `
feishu: {app_id: cli_x, app_secret: s3cret}
oncall:
  - {name: infra-secondary, timezone: UTC, start: "2026-01-01T00:00:00", shift: 24h, members: [{open_id: ou_a}]}
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
          mention: {users: [{email: head@example.com}]}
  - {name: quiet, chat_id: oc_quiet}
route: {receiver: infra}
`

func TestEscalation(t *testing.T) {
	c, err := Parse([]byte(withEscalation))
	require.NoError(t, err)
	e := c.Receiver("infra").Escalation
	require.Len(t, e.Steps, 2)
	require.Equal(t, 10*time.Minute, time.Duration(e.Steps[0].After))
	require.Equal(t, StepMention{OnCall: []string{"infra-secondary"}, Users: []Person{{Email: "lead@example.com"}}}, e.Steps[0].Mention)
	require.Equal(t, UrgentApp, e.Steps[0].UrgentKind())
	require.Empty(t, e.Steps[1].Urgent, "validation fills in no default")
	require.Equal(t, UrgentNone, e.Steps[1].UrgentKind(), "absent is none")
	require.Nil(t, c.Receiver("quiet").Escalation)
}

func TestEscalationApplies(t *testing.T) {
	c, err := Parse([]byte(withEscalation))
	require.NoError(t, err)
	e := c.Receiver("infra").Escalation
	require.True(t, e.Applies(model.LabelSet{"severity": "page", "team": "infra"}))
	require.False(t, e.Applies(model.LabelSet{"severity": "warning"}))
	require.False(t, e.Applies(model.LabelSet{}))

	e.When, e.WhenMatchers = nil, nil
	require.True(t, e.Applies(model.LabelSet{}), "no when: every group")
	var none *Escalation
	require.False(t, none.Applies(model.LabelSet{"severity": "page"}), "no escalation: none")
}

// Each rule of the contract, one case each, reported on the receiver's line.
func TestEscalationInvalid(t *testing.T) {
	for _, tc := range []struct {
		name, replace, with, want string
	}{
		{"no steps", "      steps:\n        - after: 10m\n          mention: {oncall: [infra-secondary], users: [{email: lead@example.com}]}\n          urgent: app\n        - after: 30m\n          mention: {users: [{email: head@example.com}]}\n",
			"      steps: []\n", `line 10: receivers[0].escalation.steps: at least one step is required`},
		{"after zero", "after: 10m", "after: 0s", `line 11: receivers[0].escalation.steps[0].after: must be positive`},
		{"after absent", "        - after: 10m\n          mention", "        - mention", `line 11: receivers[0].escalation.steps[0].after: must be positive`},
		{"not increasing", "after: 30m", "after: 10m", `line 14: receivers[0].escalation.steps[1].after: 10m must be later than the step before's 10m`},
		{"decreasing", "after: 30m", "after: 5m", `line 14: receivers[0].escalation.steps[1].after: 5m must be later than the step before's 10m`},
		{"reaches nobody", "mention: {users: [{email: head@example.com}]}", "mention: {}", `line 15: receivers[0].escalation.steps[1].mention: names nobody: a step must reach someone`},
		{"no mention", "\n          mention: {users: [{email: head@example.com}]}", "", `line 14: receivers[0].escalation.steps[1].mention: names nobody`},
		{"rotation", "oncall: [infra-secondary]", "oncall: [nobody]", `line 12: receivers[0].escalation.steps[0].mention.oncall[0]: no rotation "nobody"`},
		{"user", "{email: head@example.com}", "{email: head}", `line 15: receivers[0].escalation.steps[1].mention.users[0].email: "head" is not an email address`},
		{"user with two IDs", "{email: head@example.com}", "{email: head@example.com, open_id: ou_h}", `line 15: receivers[0].escalation.steps[1].mention.users[0]: exactly one of email, open_id or user_id is required`},
		{"urgent kind", "urgent: app", "urgent: pager", `line 13: receivers[0].escalation.steps[0].urgent: must be none, app, sms or phone, not "pager"`},
		{"urgent on v4", "app_secret: s3cret}", "app_secret: s3cret, api: v4}", `line 13: receivers[0].escalation.steps[0].urgent: app needs feishu.api im_v1`},
		{"custom bot", "chat_id: oc_infra\n    escalation", "webhook_url: https://open.feishu.cn/open-apis/bot/v2/hook/x\n    escalation",
			`line 8: receivers[0].escalation: a custom bot's messages cannot be acknowledged from a card, so nothing could stop it`},
		{"when", `when: ['severity=~"critical|page"']`, `when: ['severity=~']`, `line 9: receivers[0].escalation.when[0]: matcher "severity=~":`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(withEscalation, tc.replace, tc.with, 1)
			require.NotEqual(t, withEscalation, in, "the case changes nothing")
			_, err := Parse([]byte(in))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// urgent none is allowed wherever escalation is; on v4 escalation without
// urgent calls is fine.
func TestEscalationWithoutUrgentOnV4(t *testing.T) {
	in := strings.Replace(withEscalation, "app_secret: s3cret}", "app_secret: s3cret, api: v4}", 1)
	_, err := Parse([]byte(strings.Replace(in, "urgent: app", "urgent: none", 1)))
	require.NoError(t, err)
}

// Every problem is reported, not the first alone, and a bot's urgent step
// is not reported twice.
func TestEscalationReportsEveryProblem(t *testing.T) {
	in := strings.Replace(withEscalation, "chat_id: oc_infra\n    escalation", "webhook_url: https://open.feishu.cn/open-apis/bot/v2/hook/x\n    escalation", 1)
	in = strings.Replace(in, "after: 30m", "after: 1m", 1)
	in = strings.Replace(in, "oncall: [infra-secondary]", "oncall: [nobody]", 1)
	_, err := Parse([]byte(in))
	require.Error(t, err)
	msg := err.Error()
	require.Contains(t, msg, "custom bot")
	require.Contains(t, msg, "steps[1].after: 1m must be later")
	require.Contains(t, msg, `no rotation "nobody"`)
	require.NotContains(t, msg, "urgent")
}

// A user_id of all is Feishu's @all: no person is called that.
func TestUserIDAll(t *testing.T) {
	_, err := Parse([]byte(strings.Replace(withEscalation, "{email: head@example.com}", "{user_id: all}", 1)))
	require.ErrorContains(t, err, `line 15: receivers[0].escalation.steps[1].mention.users[0].user_id: "all" would mention everyone in the chat`)
}
