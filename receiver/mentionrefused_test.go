package receiver_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
)

// refusedRouting mentions an open_id by hand, which may be another app's,
// and @all for a critical group.
const refusedRouting = `
feishu:
  base_url: %s
  app_id: cli_feishutest
  app_secret: %s
  api: %s
receivers:
  - name: infra
    chat_id: oc_infra
    msg_type: %s
    mentions:
      users: [{open_id: ou_stranger}]
      all_when: ['severity="critical"']
route:
  receiver: infra
`

func newRefusedEnv(t *testing.T, api, msgType string) *env {
	t.Helper()
	e := newEnv(t, api, feishutest.AppSecret)
	cfg, err := config.Parse(fmt.Appendf(nil, refusedRouting, e.feishu.URL, feishutest.AppSecret, api, msgType))
	require.NoError(t, err)
	e.setConfig(t, cfg)
	return e
}

const refusedHelp = `
# HELP alertmanager_feishu_mentions_unresolved_total People a message should have mentioned but named in plain text instead, per receiver and reason: not_found (Feishu knows no user by that email), lookup_failed, no_app (custom bots without an app to look emails up with), refused (Feishu refused the message for its mentions, sent again without them) or all_refused (likewise @all, dropped).
# TYPE alertmanager_feishu_mentions_unresolved_total counter
`

// A card mentioning an open_id Feishu does not know is refused whole; the
// service sends it again naming the person, and the alert, and its reply
// chain, go on.
func TestUnknownOpenIDIsNamedNotMentioned(t *testing.T) {
	forAPIs(t, func(t *testing.T, api string) {
		e := newRefusedEnv(t, api, config.MsgInteractive)
		e.feishu.SetStrictOpenIDs(true)
		code, a := e.post(t, "/webhook", payload(t, "firing-DiskFull-default.json"))
		require.Equal(t, http.StatusOK, code, a.Error)
		msgs := e.feishu.Messages()
		require.Len(t, msgs, 1)
		require.Empty(t, msgs[0].Mentions())
		require.Contains(t, msgs[0].Text, "could not mention: ou")
		require.Contains(t, msgs[0].Text, "stranger)")
		require.Equal(t, 2, e.feishu.Sends(), "refused once, then sent")
		require.NoError(t, testutil.GatherAndCompare(e.reg, strings.NewReader(refusedHelp+`
alertmanager_feishu_mentions_unresolved_total{reason="refused",receiver="infra"} 1
`), "alertmanager_feishu_mentions_unresolved_total"))
	})
}

// A refused reply goes again as a reply, not as a new root: the mention,
// not the chain, was the matter.
func TestRefusedReplyStaysInTheChain(t *testing.T) {
	forAPIs(t, func(t *testing.T, api string) {
		e := newRefusedEnv(t, api, config.MsgInteractive)
		code, a := e.post(t, "/webhook", payload(t, "firing-HighCPU-seq1-first-notification.json"))
		require.Equal(t, http.StatusOK, code, a.Error)
		e.feishu.SetStrictOpenIDs(true)
		code, a = e.post(t, "/webhook", payload(t, "firing-HighCPU-seq2-new-alerts-added.json"))
		require.Equal(t, http.StatusOK, code, a.Error)
		msgs := e.feishu.Messages()
		require.Len(t, msgs, 2)
		require.Equal(t, []string{"ou_stranger", "all"}, msgs[0].Mentions())
		require.Equal(t, msgs[0].ID, msgs[1].RootID)
		require.Empty(t, msgs[1].Mentions())
		require.Contains(t, msgs[1].Text, "stranger)")
		require.Equal(t, 3, e.feishu.Sends())
	})
}

// @all in a chat whose owner has not enabled it is refused (a card's, and
// v4 text's with 11235); the message goes without it.
func TestAtAllRefusedIsDropped(t *testing.T) {
	cases := []struct{ api, typ string }{
		{config.APIv4, config.MsgInteractive},
		{config.APIIMv1, config.MsgInteractive},
		{config.APIv4, config.MsgText},
		{config.APIv4, config.MsgPost},
	}
	for _, c := range cases {
		t.Run(c.api+"/"+c.typ, func(t *testing.T) {
			e := newRefusedEnv(t, c.api, c.typ)
			e.feishu.SetAllowAll("oc_infra", false)
			code, a := e.post(t, "/webhook", payload(t, "firing-HighCPU-seq1-first-notification.json"))
			require.Equal(t, http.StatusOK, code, a.Error)
			msgs := e.feishu.Messages()
			require.Len(t, msgs, 1)
			require.Empty(t, msgs[0].Mentions())
			require.Contains(t, msgs[0].Text, "stranger)")
			require.NoError(t, testutil.GatherAndCompare(e.reg, strings.NewReader(refusedHelp+`
alertmanager_feishu_mentions_unresolved_total{reason="all_refused",receiver="infra"} 1
alertmanager_feishu_mentions_unresolved_total{reason="refused",receiver="infra"} 1
`), "alertmanager_feishu_mentions_unresolved_total"))
		})
	}
}

// A refusal of the plain message is an ordinary failure.
func TestSecondMentionRefusalFails(t *testing.T) {
	e := newRefusedEnv(t, config.APIIMv1, config.MsgInteractive)
	e.feishu.FailNext(2, feishutest.Fault{Status: http.StatusBadRequest, Code: 230099, Msg: "Failed to create card content, ext=ErrCode: 100290; ErrMsg: invalid user resource"})
	code, a := e.post(t, "/webhook", payload(t, "firing-DiskFull-default.json"))
	require.Equal(t, http.StatusUnprocessableEntity, code, a.Error)
	require.Equal(t, 2, e.feishu.Sends())
	require.Empty(t, e.feishu.Messages())
}

// The lenient stand-in, as Feishu within one app, keeps a mention a
// mention.
func TestKnownMentionsStayMentions(t *testing.T) {
	forAPIs(t, func(t *testing.T, api string) {
		e := newRefusedEnv(t, api, config.MsgInteractive)
		code, a := e.post(t, "/webhook", payload(t, "firing-HighCPU-seq1-first-notification.json"))
		require.Equal(t, http.StatusOK, code, a.Error)
		msgs := e.feishu.Messages()
		require.Len(t, msgs, 1)
		require.Equal(t, []string{"ou_stranger", "all"}, msgs[0].Mentions())
		require.Equal(t, 1, e.feishu.Sends())
	})
}
