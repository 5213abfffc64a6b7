package receiver_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
)

// reusedUUIDAnswers are what Feishu may answer a uuid that made its message
// already: that message, as clients report, or an error of a code no one
// documents.
var reusedUUIDAnswers = []struct {
	name   string
	answer *feishutest.Fault
}{
	{"the original message", nil},
	{"an invalid-parameter error", &feishutest.ReusedUUIDFault},
	{"an unknown code", &feishutest.Fault{Status: http.StatusBadRequest, Code: 239999, Msg: "duplicate request"}},
}

// Feishu takes the first message of a group but its answer is lost; the
// retry, with the same uuid, is answered however Feishu answers a reused
// uuid. Either way the group has one message, the retry is answered 200,
// and the chain goes on: as replies to the root when Feishu named it, or
// else from a new root that says which message it follows, closed by the
// resolution.
func TestRetryAfterLostAnswerUnderEveryUUIDAnswer(t *testing.T) {
	for _, tc := range reusedUUIDAnswers {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvWith(t, config.APIIMv1, feishutest.AppSecret, 300*time.Millisecond, 300*time.Millisecond)
			e.feishu.SetReusedUUIDAnswer(tc.answer)
			first := payload(t, "firing-HighCPU-seq1-first-notification.json")
			e.loseTheAnswer(t, first)
			code, a := e.post(t, "/webhook", first)
			require.Equal(t, http.StatusOK, code, a.Error)
			require.Equal(t, "sent", a.Receivers["infra"])
			require.Len(t, e.feishu.Messages(), 1)
			require.Equal(t, 1, e.feishu.ReusedUUIDs())
			e.requireDeduped(t, first, "infra", 1)

			code, a = e.post(t, "/webhook", payload(t, "firing-HighCPU-seq2-new-alerts-added.json"))
			require.Equal(t, http.StatusOK, code, a.Error)
			msgs := e.feishu.Messages()
			require.Len(t, msgs, 2)
			root := msgs[0].ID
			if tc.answer == nil {
				requireDegraded(t, e, "")
				require.Equal(t, root, msgs[1].RootID)
			} else {
				requireDegraded(t, e, `alertmanager_feishu_degraded_total{reason="uuid_reused",receiver="infra"} 1`+"\n")
				require.Empty(t, msgs[1].RootID, "the root's ID is unknown: the next notification is a new root")
				require.True(t, strings.HasPrefix(msgs[1].Text, "[FIRING:3] HighCPU"), msgs[1].Text)
				require.Contains(t, msgs[1].Text, "Follow-up to the message of 2026-")
				root = msgs[1].ID
			}
			code, a = e.post(t, "/webhook", payload(t, "resolved-HighCPU-seq4-all-alerts-resolved.json"))
			require.Equal(t, http.StatusOK, code, a.Error)
			msgs = e.feishu.Messages()
			require.Len(t, msgs, 3)
			require.Equal(t, root, msgs[2].RootID, "the resolution closes the chain")
			e.requireDeduped(t, payload(t, "resolved-HighCPU-seq4-all-alerts-resolved.json"), "infra", 3)
		})
	}
}

// A refusal Feishu answered at once, with no answer lost before it, is a
// refusal: the notification fails, however unknown its code, and its retry
// takes a new uuid, so that a second such refusal is not mistaken for the
// answer to a message made.
func TestRefusalWithoutALostAnswerFails(t *testing.T) {
	e := newEnv(t, config.APIIMv1, feishutest.AppSecret)
	unknown := feishutest.Fault{Status: http.StatusBadRequest, Code: 239999, Msg: "something new"}
	body := payload(t, "firing-DiskFull-default.json")
	e.feishu.FailNext(2, unknown)
	for range 2 {
		code, a := e.post(t, "/webhook", body)
		require.Equal(t, http.StatusUnprocessableEntity, code)
		require.Contains(t, a.Error, "code 239999")
	}
	require.Empty(t, e.feishu.Messages())
	requireDegraded(t, e, "")

	code, a := e.post(t, "/webhook", body)
	require.Equal(t, http.StatusOK, code, a.Error)
	require.Len(t, e.feishu.Messages(), 1)
	require.Zero(t, e.feishu.ReusedUUIDs())
}

// After a lost answer, a refusal Feishu documents for a message it did
// not take is still a refusal: the bot was taken out of the chat.
func TestDocumentedRefusalAfterALostAnswerFails(t *testing.T) {
	e := newEnvWith(t, config.APIIMv1, feishutest.AppSecret, 300*time.Millisecond, 300*time.Millisecond)
	body := payload(t, "firing-DiskFull-default.json")
	e.feishu.FailNext(1, feishutest.Fault{Drop: true})
	e.feishu.SetLatency(time.Second) // the drop comes after the request's time is up
	code, _ := e.post(t, "/webhook", body)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Eventually(t, func() bool { return e.feishu.Sends() == 1 }, 5*time.Second, 10*time.Millisecond)

	e.feishu.SetLatency(0)
	e.feishu.RemoveBot("oc_all")
	// Until the first delivery is over, a retry joins it.
	var a answer
	require.Eventually(t, func() bool {
		code, a = e.post(t, "/webhook", body)
		return code != http.StatusServiceUnavailable
	}, 5*time.Second, 50*time.Millisecond)
	require.Equal(t, http.StatusUnprocessableEntity, code, a.Error)
	require.Contains(t, a.Error, "code 230002")
	require.Empty(t, e.feishu.Messages())
	requireDegraded(t, e, "")
}

// The same within one delivery: Feishu keeps the message but the
// connection closes before its answer, and the delivery's own retry meets
// the reused uuid. One message, answered 200, under every answer.
func TestLostAnswerWithinADelivery(t *testing.T) {
	for _, tc := range reusedUUIDAnswers {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, config.APIIMv1, feishutest.AppSecret)
			e.feishu.SetReusedUUIDAnswer(tc.answer)
			e.feishu.LoseAnswers(1)
			code, a := e.post(t, "/webhook", payload(t, "firing-HighCPU-seq1-first-notification.json"))
			require.Equal(t, http.StatusOK, code, a.Error)
			require.Len(t, e.feishu.Messages(), 1)
			require.Equal(t, 2, e.feishu.Sends())
			require.Equal(t, 1, e.feishu.ReusedUUIDs())
		})
	}
}
