package receiver_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
)

// botRouting is a custom bot receiver beside the app's, or (with no app
// lines) alone.
const botRouting = `
feishu:
  base_url: %[1]s
%[2]s
receivers:
  - name: team-bot
    webhook_url: %[1]s/open-apis/bot/v2/hook/tok
    secret: %[3]s
    msg_type: %[4]s
    mentions:
      users: [{open_id: ou_lead}, {email: alice@example.com}]
route:
  receiver: team-bot
`

const withApp = "  app_id: cli_feishutest\n  app_secret: " + feishutest.AppSecret

func newBotEnv(t *testing.T, app, secret, msgType string) *env {
	t.Helper()
	e := newEnv(t, config.APIIMv1, feishutest.AppSecret)
	e.feishu.AddBot("tok", "s3cret")
	cfg, err := config.Parse(fmt.Appendf(nil, botRouting, e.feishu.URL, app, secret, msgType))
	require.NoError(t, err)
	e.setConfig(t, cfg)
	return e
}

// A group's life through a signed custom bot, each message type: no reply
// chain (a custom bot cannot reply), so later messages name the first
// one's time; retries are deduped; mentions by open_id, and by email where
// an app can look it up.
func TestBotReceiverGroupLife(t *testing.T) {
	for _, typ := range []string{config.MsgText, config.MsgPost, config.MsgInteractive} {
		t.Run(typ, func(t *testing.T) {
			e := newBotEnv(t, withApp, "s3cret", typ)
			e.feishu.AddUser("alice@example.com", "ou_alice")
			for i, name := range []string{
				"firing-HighCPU-seq1-first-notification.json",
				"firing-HighCPU-seq2-new-alerts-added.json",
				"resolved-HighCPU-seq4-all-alerts-resolved.json",
			} {
				code, a := e.post(t, "/webhook", payload(t, name))
				require.Equal(t, http.StatusOK, code, a.Error)
				require.Equal(t, "sent", a.Receivers["team-bot"])
				require.Len(t, e.feishu.Messages(), i+1)
			}
			e.requireDeduped(t, payload(t, "resolved-HighCPU-seq4-all-alerts-resolved.json"), "team-bot", 3)

			msgs := e.feishu.Messages()
			first := msgs[0]
			require.Equal(t, "bot", first.API)
			require.Empty(t, first.RootID)
			require.ElementsMatch(t, []string{"ou_lead", "ou_alice"}, first.Mentions())
			require.NotContains(t, first.Text, "Follow-up")
			for _, m := range msgs[1:] {
				require.Empty(t, m.RootID, "a custom bot cannot reply")
				require.Contains(t, m.Text, "Follow-up to the message of "+first.Time.UTC().Format("2006-01-02 15:04:05"))
			}
			require.Contains(t, msgs[2].Text, "RESOLVED")

			// The group fires again: a new first message.
			code, _ := e.post(t, "/webhook", payload(t, "firing-HighCPU-seq3-some-alerts-resolved.json"))
			require.Equal(t, http.StatusOK, code)
			require.NotContains(t, e.feishu.Messages()[3].Text, "Follow-up")
		})
	}
}

// Custom bots alone, without an app: delivered, and a person named by
// email is named in plain text, as there is nothing to look them up with.
func TestBotWithoutApp(t *testing.T) {
	e := newBotEnv(t, "", "s3cret", config.MsgText)
	code, a := e.post(t, "/webhook", payload(t, "firing-DiskFull-default.json"))
	require.Equal(t, http.StatusOK, code, a.Error)
	m := e.feishu.Messages()[0]
	require.Equal(t, []string{"ou_lead"}, m.Mentions())
	require.Contains(t, m.Text, "could not mention: alice@example.com")
	require.Zero(t, e.feishu.TokenRequests())
}

// A wrong secret is Feishu's 19021: permanent, answered 422 with the
// receiver, Feishu's code and message, and never the webhook URL.
func TestBotWrongSecretIs422(t *testing.T) {
	e := newBotEnv(t, withApp, "not-the-secret", config.MsgText)
	code, a := e.post(t, "/webhook", payload(t, "firing-DiskFull-default.json"))
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Len(t, a.Failures, 1)
	require.Equal(t, "team-bot", a.Failures[0].Receiver)
	require.Equal(t, feishutest.BotSignMismatch, a.Failures[0].Code)
	require.Contains(t, a.Failures[0].Msg, "sign match fail")
	require.NotContains(t, a.Error, "/hook/tok")
	require.True(t, strings.HasPrefix(a.Failures[0].Target, "webhook team-bot"), a.Failures[0].Target)
	require.Empty(t, e.feishu.Messages())
}
