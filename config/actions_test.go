package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const withActions = `
feishu: {app_id: cli_x, app_secret: s3cret}
oncall:
  - {name: primary, timezone: UTC, start: "2026-01-01T00:00:00", shift: 24h, members: [{open_id: ou_a}]}
actions:
  alertmanager: {urls: [http://alertmanager:9093]}
receivers:
  - {name: infra, chat_id: oc_infra}
  - {name: quiet, chat_id: oc_quiet, actions: false}
  - {name: text, chat_id: oc_text, msg_type: text}
  - {name: bot, webhook_url: https://open.feishu.cn/open-apis/bot/v2/hook/x}
route: {receiver: infra}
`

func TestActionsDefaults(t *testing.T) {
	c, err := Parse([]byte(withActions))
	require.NoError(t, err)
	a := c.Actions
	require.Equal(t, TransportLongConnection, a.Transport)
	require.Equal(t, []string{"1h", "4h", "24h"}, a.SilenceDurations)
	require.Equal(t, map[string]time.Duration{"1h": time.Hour, "4h": 4 * time.Hour, "24h": 24 * time.Hour}, a.Durations)
	require.True(t, a.Allowed.Empty())
	require.True(t, a.Alertmanager.HTTPConfig.FollowRedirects)
	require.True(t, c.HasActions(c.Receiver("infra")))
	require.False(t, c.HasActions(c.Receiver("quiet")), "turned off")
	require.False(t, c.HasActions(c.Receiver("text")), "text has no buttons")
	require.False(t, c.HasActions(c.Receiver("bot")), "a custom bot's cards get no callbacks")

	c, err = Parse([]byte(minimal))
	require.NoError(t, err)
	require.Nil(t, c.Actions)
	require.False(t, c.HasActions(c.Receiver("infra")), "no actions block, no buttons")
}

func TestActionsHTTPTransport(t *testing.T) {
	c, err := Parse([]byte(strings.Replace(withActions, "actions:\n", "actions:\n  transport: http\n  verification_token: tok\n  encrypt_key: key\n  silence_durations: [30m, 2h]\n  allowed: {users: [{email: a@example.com}], oncall: [primary]}\n", 1)))
	require.NoError(t, err)
	token, key, err := c.Actions.Secrets()
	require.NoError(t, err)
	require.Equal(t, [2]string{"tok", "key"}, [2]string{token, key})
	require.Equal(t, map[string]time.Duration{"30m": 30 * time.Minute, "2h": 2 * time.Hour}, c.Actions.Durations)
	require.False(t, c.Actions.Allowed.Empty())
}

func TestActionsInvalid(t *testing.T) {
	for _, tc := range []struct {
		name, replace, with, want string
	}{
		{"transport", "actions:\n", "actions:\n  transport: smoke\n", `line 6: actions.transport: must be long_connection or http, not "smoke"`},
		{"http needs its secrets", "actions:\n", "actions:\n  transport: http\n", "line 5: actions.verification_token: one of verification_token or verification_token_file is required"},
		{"secrets on the long connection", "actions:\n", "actions:\n  encrypt_key: k\n", "line 6: actions.encrypt_key: only for transport http"},
		{"url", "http://alertmanager:9093", "alertmanager:9093", `line 6: actions.alertmanager.urls[0]: must be an http or https URL, not "alertmanager:9093"`},
		{"duration", "actions:\n", "actions:\n  silence_durations: [1h, soon, 0s, 1h]\n", `line 6: actions.silence_durations[1]: want a duration like 30m, 4h or 1d, not "soon"`},
		{"zero duration", "actions:\n", "actions:\n  silence_durations: [0s]\n", `line 6: actions.silence_durations[0]: "0s" must be longer than 0`},
		{"twice", "actions:\n", "actions:\n  silence_durations: [1h, 1h]\n", `line 6: actions.silence_durations[1]: "1h" is listed twice`},
		{"too many", "actions:\n", "actions:\n  silence_durations: [1h, 2h, 3h, 4h, 5h, 6h]\n", "line 6: actions.silence_durations: at most 5, one button each"},
		{"rotation", "actions:\n", "actions:\n  allowed: {oncall: [nobody]}\n", `line 6: actions.allowed.oncall[0]: no rotation "nobody"`},
		{"person", "actions:\n", "actions:\n  allowed: {users: [{}]}\n", "line 6: actions.allowed.users[0]: exactly one of email, open_id or user_id is required"},
		{"v4", "app_secret: s3cret}", "app_secret: s3cret, api: v4}", "line 5: actions: needs feishu.api im_v1"},
		{"on a text receiver", "msg_type: text}", "msg_type: text, actions: true}", `line 10: receivers[2].actions: true needs an app receiver whose msg_type is interactive`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(strings.Replace(withActions, tc.replace, tc.with, 1)))
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := Parse([]byte(strings.Replace(minimal, "chat_id: oc_infra", "chat_id: oc_infra\n    actions: true", 1)))
	require.ErrorContains(t, err, `line 8: receivers[0].actions: true needs the top-level actions block`)
}
