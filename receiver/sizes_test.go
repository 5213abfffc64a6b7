package receiver_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// denseGroup is a 400-alert group whose every alert is heavy with what
// becomes markup: underscores and asterisks that card markdown carries as
// entities, and a time whose colons could be an emoji key. Over 150 KB in
// every type, it is cut everywhere.
func denseGroup(t *testing.T) []byte {
	t.Helper()
	var alerts template.Alerts
	start := time.Date(2026, 11, 24, 23, 0, 0, 0, time.UTC)
	for i := range 400 {
		alerts = append(alerts, template.Alert{
			Status: "firing",
			Labels: template.KV{"alertname": "DiskFull", "severity": "critical",
				"instance": fmt.Sprintf("db_%03d:9100", i), "mount_point": fmt.Sprintf("/var/lib/pg_data_%03d", i)},
			Annotations: template.KV{"summary": fmt.Sprintf("disk *pg_data_%03d* on db_%03d is [95%%] full: %s node_exporter reports free_bytes below min_free_bytes", i, i, strings.Repeat("数据库磁盘即将写满，请立即清理。", 4))},
			StartsAt:    start,
			Fingerprint: fmt.Sprintf("%016x", i),
		})
	}
	return diskFullGroup(t, alerts)
}

// diskFullGroup is the webhook body of the critical DiskFull group with
// alerts.
func diskFullGroup(t *testing.T, alerts template.Alerts) []byte {
	t.Helper()
	body, err := json.Marshal(webhook.Payload{Data: template.Data{
		Receiver: "feishu", Status: "firing", Alerts: alerts,
		GroupLabels:  template.KV{"alertname": "DiskFull"},
		CommonLabels: template.KV{"alertname": "DiskFull", "severity": "critical"}, CommonAnnotations: template.KV{}, RouteLabels: template.KV{},
		ExternalURL: "http://alertmanager.example",
	}, Version: "4", GroupKey: `{}:{alertname="DiskFull"}`})
	require.NoError(t, err)
	return body
}

// firstAlerts is body with only its first n alerts: the same group,
// small.
func firstAlerts(t *testing.T, body []byte, n int) []byte {
	t.Helper()
	var small map[string]any
	require.NoError(t, json.Unmarshal(body, &small))
	small["alerts"] = small["alerts"].([]any)[:n]
	b, err := json.Marshal(small)
	require.NoError(t, err)
	return b
}

// sizeRules are the ways Feishu may count its size limits: the KB of
// 1,024 bytes or 1,000, and the style tags counted as stored, at the size
// the stand-in suggests, or five times it, past the service's allowance.
var sizeRules = []struct {
	name string
	rule feishutest.SizeRule
	// refused says the first send is refused: the service's margin does
	// not cover the rule, and its second try, cut smaller, does.
	refused bool
}{
	{"1024-byte KB", feishutest.SizeRule{KB: 1024}, false},
	{"1000-byte KB", feishutest.SizeRule{KB: 1000}, false},
	{"1024-byte KB with tags", feishutest.SizeRule{KB: 1024, TagBytes: 40}, false},
	{"1000-byte KB with tags", feishutest.SizeRule{KB: 1000, TagBytes: 40}, false},
	{"1000-byte KB with tags five times as heavy", feishutest.SizeRule{KB: 1000, TagBytes: 200}, true},
}

// forAPIsAndTypesInParallel is forAPIsAndTypes with its cases run in
// parallel: each renders a 400-alert group many times over.
func forAPIsAndTypesInParallel(t *testing.T, test func(t *testing.T, api, typ string)) {
	forAPIsAndTypes(t, func(t *testing.T, api, typ string) {
		t.Parallel()
		test(t, api, typ)
	})
}

// deliver posts body as Alertmanager does, again while the answer is 503
// for a delivery still under way, and returns the first other answer. A
// 400-alert group is rendered many times over, and on a loaded machine
// under the race detector its delivery may outlast a request.
func (e *env) deliver(t *testing.T, body []byte) (int, answer) {
	t.Helper()
	var code int
	var a answer
	require.Eventually(t, func() bool {
		code, a = e.post(t, "/webhook", body)
		return code != http.StatusServiceUnavailable || !slices.Contains(slices.Collect(maps.Values(a.Receivers)), "pending")
	}, time.Minute, 100*time.Millisecond)
	return code, a
}

var moreNotShown = regexp.MustCompile(`… and (\d+) more alerts not shown\.`)

// requireCutWhole checks that a message lists whole alerts and counts the
// rest: the shown and the left out make the group's 400, and the last one
// shown has its summary. It returns how many are shown.
func requireCutWhole(t *testing.T, m feishutest.Message) int {
	t.Helper()
	require.True(t, utf8.ValidString(m.Text))
	require.Contains(t, m.Text, "[FIRING:400] DiskFull")
	match := moreNotShown.FindStringSubmatch(m.Text)
	require.NotNil(t, match, "the cut is counted")
	left, err := strconv.Atoi(match[1])
	require.NoError(t, err)
	shown := strings.Count(m.Text, "• ")
	require.Positive(t, shown)
	require.Equal(t, 400, shown+left)
	last := m.Text[strings.LastIndex(m.Text, "• "):]
	require.Contains(t, last, "min", "the last alert shown is whole")
	require.Contains(t, last, fmt.Sprintf("%03d", shown-1))
	return shown
}

const degradedHelp = `
# HELP alertmanager_feishu_degraded_total Notifications delivered in a lesser form after Feishu refused them, per receiver and reason: size (refused for its size, sent again cut smaller), root_gone (the reply to the chain's root refused, sent as a new root) or uuid_reused (an im/v1 resend after a lost answer refused, taken as delivered with its message ID unknown; the group's next notification starts a new root). Mentions Feishu refused are counted in alertmanager_feishu_mentions_unresolved_total.
# TYPE alertmanager_feishu_degraded_total counter
`

// requireDegraded checks the degraded metric holds exactly want (lines of
// it, "" for none).
func requireDegraded(t *testing.T, e *env, want string) {
	t.Helper()
	if want == "" {
		require.Zero(t, testutil.CollectAndCount(e.reg, "alertmanager_feishu_degraded_total"))
		return
	}
	require.NoError(t, testutil.GatherAndCompare(e.reg, strings.NewReader(degradedHelp+want), "alertmanager_feishu_degraded_total"))
}

// Whichever way Feishu counts its limits, a 400-alert group is delivered
// once in every type and API, cut at alert boundaries, with its mentions,
// and answered 200; where the service's margin is not enough, the second
// try is, and the metric counts it.
func TestHugeGroupUnderEverySizeRule(t *testing.T) {
	body := denseGroup(t)
	for _, sr := range sizeRules {
		t.Run(sr.name, func(t *testing.T) {
			forAPIsAndTypesInParallel(t, func(t *testing.T, api, typ string) {
				e := newMentionEnv(t, api, typ)
				e.feishu.AddUser("alice@example.com", "ou_alice")
				e.feishu.AddUser("lead@example.com", "ou_lead")
				e.feishu.SetSizeRule(sr.rule)
				code, a := e.deliver(t, body)
				require.Equal(t, http.StatusOK, code, a.Error)
				msgs := e.feishu.Messages()
				require.Len(t, msgs, 1)
				require.Equal(t, []string{"ou_alice", "ou_lead", "all"}, msgs[0].Mentions())
				t.Logf("%d of 400 alerts shown, %d sends", requireCutWhole(t, msgs[0]), e.feishu.Sends())
				if sr.refused && typ == config.MsgInteractive {
					require.Equal(t, 2, e.feishu.Sends(), "refused, then sent smaller")
					requireDegraded(t, e, `alertmanager_feishu_degraded_total{reason="size",receiver="infra"} 1`+"\n")
				} else {
					// Text and posts carry a payload's values as plain
					// text: their tags are the mentions and links, which
					// the margin covers under any rule.
					require.Equal(t, 1, e.feishu.Sends(), "the margin was enough")
					requireDegraded(t, e, "")
				}
			})
		})
	}
}

// The same through a custom bot, whose limit is 20 KB and whose answer to
// a body over it is 9499, or perhaps 19036.
func TestHugeGroupThroughABotUnderEverySizeRule(t *testing.T) {
	body := denseGroup(t)
	for _, sr := range sizeRules {
		codes := []int{0}
		if sr.refused {
			codes = append(codes, feishutest.CodeTooLarge) // the code matters only to a refusal
		}
		for _, botCode := range codes {
			rule := sr.rule
			rule.BotCode = botCode
			for _, typ := range []string{config.MsgText, config.MsgPost, config.MsgInteractive} {
				t.Run(fmt.Sprintf("%s/%d/%s", sr.name, botCode, typ), func(t *testing.T) {
					t.Parallel()
					e := newBotEnv(t, withApp, "s3cret", typ)
					e.feishu.SetSizeRule(rule)
					code, a := e.deliver(t, body)
					require.Equal(t, http.StatusOK, code, a.Error)
					msgs := e.feishu.Messages()
					require.Len(t, msgs, 1)
					t.Logf("%d of 400 alerts shown, %d sends", requireCutWhole(t, msgs[0]), e.feishu.Sends())
					if sr.refused && typ == config.MsgInteractive {
						require.Equal(t, 2, e.feishu.Sends(), "refused, then sent smaller")
					} else {
						require.Equal(t, 1, e.feishu.Sends(), "the margin was enough")
					}
				})
			}
		}
	}
}

// A size refusal of a message with nothing left to cut is not the size's:
// it is not sent again, and fails as it is.
func TestSizeRefusalWithNothingToCut(t *testing.T) {
	e := newEnv(t, config.APIIMv1, feishutest.AppSecret)
	e.feishu.FailNext(1, feishutest.Fault{Status: http.StatusBadRequest, Code: feishutest.CodeIMTooLong, Msg: "The length of the message content reaches its limit."})
	code, a := e.post(t, "/webhook", payload(t, "firing-DiskFull-default.json"))
	require.Equal(t, http.StatusUnprocessableEntity, code, a.Error)
	require.Contains(t, a.Error, "code 230025")
	require.Equal(t, 1, e.feishu.Sends())
	requireDegraded(t, e, "")

	// A second size refusal of the smaller message fails too: one more
	// send, no more.
	e = newEnv(t, config.APIIMv1, feishutest.AppSecret)
	e.feishu.FailNext(2, feishutest.Fault{Status: http.StatusBadRequest, Code: feishutest.CodeIMTooLong, Msg: "The length of the message content reaches its limit."})
	code, _ = e.post(t, "/webhook", denseGroup(t))
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Equal(t, 2, e.feishu.Sends())
	require.Empty(t, e.feishu.Messages())
}

// withinMargin is the strictest size rule the service's margin covers: the
// other behaviours are tried under it.
var withinMargin = feishutest.SizeRule{KB: 1000, TagBytes: 40}

// Under every other behaviour the stand-in offers where Feishu's docs are
// silent, a 400-alert group is still delivered once in every type and API,
// cut whole, and answered 200: an open_id Feishu does not know, @all in a
// chat without it (mentions named in plain text where Feishu refuses
// them), text nodes that must carry text, and a root lost, however v4
// answers for it (the group goes on as a new chain). A reused uuid
// answered with an error is uuid_test.go's.
func TestHugeGroupUnderEveryStandInBehaviour(t *testing.T) {
	body := denseGroup(t)
	first := func(t *testing.T, e *env) string {
		t.Helper()
		code, a := e.post(t, "/webhook", firstAlerts(t, body, 2))
		require.Equal(t, http.StatusOK, code, a.Error)
		return e.feishu.Messages()[0].ID
	}
	for _, tc := range []struct {
		name string
		// only, when set, says which APIs and types the behaviour concerns.
		only  func(api, typ string) bool
		setup func(t *testing.T, e *env)
		// plain says the mentions end up named in plain text.
		plain func(api, typ string) bool
		// chained says the group's first, small message went before.
		chained bool
	}{
		{"strict open_ids", nil, func(_ *testing.T, e *env) { e.feishu.SetStrictOpenIDs(true) },
			func(_, typ string) bool { return typ == config.MsgInteractive }, false},
		{"@all off", nil, func(_ *testing.T, e *env) { e.feishu.SetAllowAll("oc_infra", false) },
			func(api, typ string) bool { return typ == config.MsgInteractive || api == config.APIv4 }, false},
		{"strict post text", func(_, typ string) bool { return typ == config.MsgPost },
			func(_ *testing.T, e *env) { e.feishu.SetStrictPostText(true) },
			func(string, string) bool { return false }, false},
		{"root recalled", nil, func(t *testing.T, e *env) { e.feishu.Recall(first(t, e)) },
			func(string, string) bool { return false }, true},
		{"root recalled, v4 answering 18053", func(api, _ string) bool { return api == config.APIv4 },
			func(t *testing.T, e *env) {
				e.feishu.SetV4LostRootCode(18053)
				e.feishu.Recall(first(t, e))
			}, func(string, string) bool { return false }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forAPIsAndTypesInParallel(t, func(t *testing.T, api, typ string) {
				if tc.only != nil && !tc.only(api, typ) {
					return
				}
				e := newRefusedEnv(t, api, typ)
				e.feishu.SetSizeRule(withinMargin)
				tc.setup(t, e)
				before := len(e.feishu.Messages())
				code, a := e.deliver(t, body)
				require.Equal(t, http.StatusOK, code, a.Error)
				msgs := e.feishu.Messages()
				require.Len(t, msgs, before+1, "delivered once")
				m := msgs[before]
				requireCutWhole(t, m)
				if tc.plain(api, typ) {
					require.Empty(t, m.Mentions())
					require.Contains(t, m.Text, "stranger)")
				} else {
					require.Equal(t, []string{"ou_stranger", "all"}, m.Mentions())
				}
				if tc.chained {
					require.Empty(t, m.RootID, "a new chain")
					require.Contains(t, m.Text, "Follow-up to the message of")
				}
			})
		})
	}
}

// The fallbacks combine: a huge card that replies to a recalled root,
// mentions an open_id Feishu does not know, and is counted heavier than
// the margin allows, is refused for its size, then for its root, then for
// its mention, and goes a fourth time cut, as a new root, naming the
// people; each fallback once.
func TestFallbacksCombine(t *testing.T) {
	for _, api := range apis {
		t.Run(api, func(t *testing.T) {
			e := newRefusedEnv(t, api, config.MsgInteractive)
			body := denseGroup(t)
			code, a := e.post(t, "/webhook", firstAlerts(t, body, 2))
			require.Equal(t, http.StatusOK, code, a.Error)
			e.feishu.Recall(e.feishu.Messages()[0].ID)
			e.feishu.SetStrictOpenIDs(true)
			e.feishu.SetSizeRule(feishutest.SizeRule{KB: 1000, TagBytes: 200})
			sends := e.feishu.Sends()

			code, a = e.deliver(t, body)
			require.Equal(t, http.StatusOK, code, a.Error)
			require.Equal(t, sends+4, e.feishu.Sends())
			msgs := e.feishu.Messages()
			require.Len(t, msgs, 2)
			m := msgs[1]
			require.Empty(t, m.RootID)
			require.Empty(t, m.Mentions())
			require.Contains(t, m.Text, "stranger)")
			require.Contains(t, m.Text, "Follow-up to the message of")
			requireCutWhole(t, m)
			requireDegraded(t, e, `alertmanager_feishu_degraded_total{reason="root_gone",receiver="infra"} 1
alertmanager_feishu_degraded_total{reason="size",receiver="infra"} 1
`)
		})
	}
}
