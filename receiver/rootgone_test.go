package receiver_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
)

// requireNewChainCloses posts the group's next notification and its
// resolution after Feishu stopped taking replies to its root, and checks
// that the group went on as a new chain and closed on it.
func requireNewChainCloses(t *testing.T, e *env) {
	t.Helper()
	code, a := e.post(t, "/webhook", payload(t, "firing-HighCPU-seq2-new-alerts-added.json"))
	require.Equal(t, http.StatusOK, code, a.Error)
	code, a = e.post(t, "/webhook", payload(t, "resolved-HighCPU-seq4-all-alerts-resolved.json"))
	require.Equal(t, http.StatusOK, code, a.Error)
	msgs := e.feishu.Messages()
	require.Len(t, msgs, 3)
	require.Empty(t, msgs[1].RootID, "the next notification is a new root")
	require.Equal(t, msgs[1].ID, msgs[2].RootID, "the resolution replies to the new root")
}

// firstRoot posts the group's first notification and returns its root.
func firstRoot(t *testing.T, e *env) string {
	t.Helper()
	code, a := e.post(t, "/webhook", payload(t, "firing-HighCPU-seq1-first-notification.json"))
	require.Equal(t, http.StatusOK, code, a.Error)
	return e.feishu.Messages()[0].ID
}

// A chain must never stick: whatever Feishu answers a reply to the root
// with, unless the configuration causes it, the group goes on as a new
// chain and closes on its resolution.
func TestRefusedReplyStartsANewChain(t *testing.T) {
	forAPIs(t, func(t *testing.T, api string) {
		for _, tc := range []struct {
			name  string
			fault feishutest.Fault
		}{
			{"recalled", feishutest.Fault{Status: 400, Code: 230011, Msg: "The message is recalled."}},
			{"deleted", feishutest.Fault{Status: 400, Code: 230110, Msg: "Action unavailable as the message has been deleted."}},
			{"not found", feishutest.Fault{Status: 400, Code: 231003, Msg: "The message is not found, maybe not exist or deleted."}},
			{"invalid message_id", feishutest.Fault{Status: 400, Code: 230001, Msg: "param is invalid, ext=invalid message_id"}},
			{"invisible", feishutest.Fault{Status: 400, Code: 230050, Msg: "The message is invisible to the operator."}},
			{"topic gone", feishutest.Fault{Status: 400, Code: 230019, Msg: "The topic does not exist."}},
			{"self-destructing", feishutest.Fault{Status: 400, Code: 230111, Msg: "Action unavailable as the message will self-destruct soon."}},
			{"unknown code", feishutest.Fault{Status: 400, Code: 99999, Msg: "something new"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := newEnv(t, api, feishutest.AppSecret)
				e.feishu.FailReplies(firstRoot(t, e), tc.fault)
				requireNewChainCloses(t, e)
			})
		}
	})
}

// A refusal the configuration causes would meet a new root too: it fails
// as before, and the chain keeps its root for when the operator fixes it.
func TestConfigurationRefusalKeepsTheChain(t *testing.T) {
	forAPIs(t, func(t *testing.T, api string) {
		e := newEnv(t, api, feishutest.AppSecret)
		root := firstRoot(t, e)
		e.feishu.FailReplies(root, feishutest.Fault{Status: 400, Code: 230002, Msg: "Bot/User can NOT be out of the chat."})
		sends := e.feishu.Sends()
		code, a := e.post(t, "/webhook", payload(t, "firing-HighCPU-seq2-new-alerts-added.json"))
		require.Equal(t, http.StatusUnprocessableEntity, code)
		require.Contains(t, a.Error, "code 230002")
		require.Equal(t, sends+1, e.feishu.Sends(), "no new root tried")
		require.Len(t, e.feishu.Messages(), 1)

		e.feishu.ClearReplies(root)
		code, a = e.post(t, "/webhook", payload(t, "resolved-HighCPU-seq4-all-alerts-resolved.json"))
		require.Equal(t, http.StatusOK, code, a.Error)
		msgs := e.feishu.Messages()
		require.Len(t, msgs, 2)
		require.Equal(t, root, msgs[1].RootID, "the chain kept its root")
	})
}

// Feishu does not document what v4 answers for a recalled or deleted
// root_id: every plausible answer keeps the chain going and closes it.
func TestV4LostRootAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int
	}{
		{"default", 0},
		{"im/v1 code", 230011},
		{"v4 create message failed", 18053},
		{"unknown code", 99999},
	} {
		for _, gone := range []string{"recalled", "deleted"} {
			t.Run(tc.name+"/"+gone, func(t *testing.T) {
				e := newEnv(t, config.APIv4, feishutest.AppSecret)
				e.feishu.SetV4LostRootCode(tc.code)
				root := firstRoot(t, e)
				if gone == "recalled" {
					e.feishu.Recall(root)
				} else {
					e.feishu.Delete(root)
				}
				requireNewChainCloses(t, e)
			})
		}
	}

	// v4 posts the message unthreaded and answers success: the service
	// cannot tell, so the chain keeps its lost root, and each later
	// message stands alone in the chat; the group still closes.
	t.Run("posted unthreaded", func(t *testing.T) {
		e := newEnv(t, config.APIv4, feishutest.AppSecret)
		e.feishu.SetV4LostRootCode(feishutest.V4LostRootPosted)
		e.feishu.Recall(firstRoot(t, e))
		for _, name := range []string{"firing-HighCPU-seq2-new-alerts-added.json", "resolved-HighCPU-seq4-all-alerts-resolved.json"} {
			code, a := e.post(t, "/webhook", payload(t, name))
			require.Equal(t, http.StatusOK, code, a.Error)
		}
		msgs := e.feishu.Messages()
		require.Len(t, msgs, 3)
		require.Empty(t, msgs[1].RootID)
		require.Empty(t, msgs[2].RootID)
		e.requireDeduped(t, payload(t, "resolved-HighCPU-seq4-all-alerts-resolved.json"), "infra", 3)
	})
}
