package receiver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/core"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/receiver"
	"github.com/alertmanager-feishu/alertmanager-feishu/state"
)

const routing = `
feishu:
  base_url: %s
  app_id: cli_feishutest
  app_secret: %s
  api: %s
receivers:
  - {name: infra, chat_id: oc_infra}
  - {name: critical, chat_id: oc_critical}
  - {name: dba, email: dba@example.com}
  - {name: catchall, chat_id: oc_all}
route:
  receiver: catchall
  routes:
    - {matchers: ['team="infra"'], receiver: infra}
    - {matchers: ['alertname="Both"'], receiver: infra, continue: true}
    - {matchers: ['alertname="Both"'], receiver: critical}
`

type env struct {
	reg      *prometheus.Registry
	metrics  *feishu.Metrics
	pacer    *feishu.Pacer
	feishu   *feishutest.Server
	server   *httptest.Server
	handler  *receiver.Handler
	core     *core.Core
	pipeline *core.Pipeline
}

// setConfig swaps in a pipeline built from cfg, as a reload does.
func (e *env) setConfig(t testing.TB, cfg *config.Config) {
	t.Helper()
	p, err := core.NewPipeline(cfg, core.PipelineOptions{Metrics: e.metrics, Pacer: e.pacer, Logger: promslog.NewNopLogger()})
	require.NoError(t, err)
	e.core.SetPipeline(p)
	e.pacer.SetLimits(cfg.Feishu.RateLimit)
}

var apis = []string{config.APIIMv1, config.APIv4}

// forAPIs runs test once for each Feishu API: every behaviour holds for both.
func forAPIs(t *testing.T, test func(t *testing.T, api string)) {
	for _, api := range apis {
		t.Run(api, func(t *testing.T) { test(t, api) })
	}
}

// forAPIsAndTypes runs test for each API and each message type.
func forAPIsAndTypes(t *testing.T, test func(t *testing.T, api, msgType string)) {
	forAPIs(t, func(t *testing.T, api string) {
		for _, typ := range []string{config.MsgText, config.MsgPost, config.MsgInteractive} {
			t.Run(typ, func(t *testing.T) { test(t, api, typ) })
		}
	})
}

func newEnv(t testing.TB, api, secret string) *env {
	t.Helper()
	return newEnvWith(t, api, secret, 5*time.Second, 5*time.Second)
}

// newEnvWith makes an env whose requests wait timeout for their deliveries,
// and whose deliveries take at most maxDelay.
func newEnvWith(t testing.TB, api, secret string, timeout, maxDelay time.Duration) *env {
	t.Helper()
	fs := feishutest.New(t)
	cfg, err := config.Parse(fmt.Appendf(nil, routing, fs.URL, secret, api))
	require.NoError(t, err)
	logger := promslog.NewNopLogger()
	reg := prometheus.NewRegistry()
	metrics := feishu.NewMetrics(reg)
	pacer := feishu.NewPacer(cfg.Feishu.RateLimit, metrics)
	p, err := core.NewPipeline(cfg, core.PipelineOptions{Metrics: metrics, Pacer: pacer, Logger: logger})
	require.NoError(t, err)
	store, err := state.OpenFile(filepath.Join(t.TempDir(), "state.db"),
		state.Options{ChainTTL: time.Hour, DedupeWindow: 10 * time.Minute}, logger)
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	c := core.New(store, p, core.Options{Logger: logger, Registerer: reg})
	h := receiver.New(c, receiver.Options{MaxBodyBytes: 1 << 20, Timeout: timeout, MaxDelay: maxDelay, Logger: logger, Registerer: reg})
	t.Cleanup(func() { h.Shutdown(context.Background()) })
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{reg: reg, metrics: metrics, pacer: pacer, feishu: fs, server: srv, handler: h, core: c, pipeline: p}
}

func payload(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "alertmanager", name))
	require.NoError(t, err)
	return b
}

type answer struct {
	Error     string            `json:"error"`
	Receivers map[string]string `json:"receivers"`
	Failures  []struct {
		Receiver, Target, Class, Msg string
		Code                         int
	} `json:"failures"`
}

func (e *env) post(t *testing.T, path string, body []byte) (int, answer) {
	t.Helper()
	code, a, err := e.tryPost(path, body)
	require.NoError(t, err)
	return code, a
}

// tryPost is post for a goroutine other than the test's, which must not
// call FailNow: it returns what went wrong instead.
func (e *env) tryPost(path string, body []byte) (int, answer, error) {
	resp, err := http.Post(e.server.URL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, answer{}, err
	}
	defer resp.Body.Close()
	var a answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return 0, answer{}, fmt.Errorf("decode the answer: %w", err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		return 0, answer{}, fmt.Errorf("content type %q, not application/json", ct)
	}
	return resp.StatusCode, a, nil
}

// requireDeduped posts body once more, as Alertmanager's retry would, and
// checks that it is answered as delivered without a new message.
func (e *env) requireDeduped(t *testing.T, body []byte, receiver string, messages int) {
	t.Helper()
	code, a := e.post(t, "/webhook", body)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "deduped", a.Receivers[receiver])
	require.Len(t, e.feishu.Messages(), messages)
}

func TestChainAcrossAGroupsLife(t *testing.T) {
	forAPIs(t, func(t *testing.T, api string) {
		e := newEnv(t, api, feishutest.AppSecret)
		for _, name := range []string{
			"firing-HighCPU-seq1-first-notification.json",
			"firing-HighCPU-seq2-new-alerts-added.json",
			"firing-HighCPU-seq3-some-alerts-resolved.json",
			"resolved-HighCPU-seq4-all-alerts-resolved.json",
		} {
			code, a := e.post(t, "/webhook", payload(t, name))
			require.Equal(t, http.StatusOK, code, a.Error)
			require.Equal(t, map[string]string{"infra": "sent"}, a.Receivers)
		}
		msgs := e.feishu.Messages()
		require.Len(t, msgs, 4)
		root := msgs[0]
		require.Empty(t, root.RootID)
		require.Equal(t, "oc_infra", root.TargetID)
		if api == config.APIIMv1 {
			// The root card was updated in place when the group resolved.
			require.Equal(t, 1, root.Updates)
			require.True(t, strings.HasPrefix(root.Text, "[RESOLVED] HighCPU"), root.Text)
			require.Contains(t, root.Text, "All alerts resolved")
		} else {
			require.True(t, strings.HasPrefix(root.Text, "[FIRING:2] HighCPU"), root.Text)
		}
		for _, m := range msgs[1:] {
			require.Equal(t, root.ID, m.RootID, "every later notification replies to the root")
			require.Equal(t, "oc_infra", m.TargetID)
		}
		require.True(t, strings.HasPrefix(msgs[3].Text, "[RESOLVED] HighCPU"), msgs[3].Text)

		// The resolved notification closed the chain: the group firing again
		// starts a new one.
		again := bytes.ReplaceAll(payload(t, "firing-HighCPU-seq1-first-notification.json"),
			[]byte("2026-11-24T23:07:03.805Z"), []byte("2026-11-25T08:00:00Z"))
		code, a := e.post(t, "/webhook", again)
		require.Equal(t, http.StatusOK, code, a.Error)
		msgs = e.feishu.Messages()
		require.Len(t, msgs, 5)
		require.Empty(t, msgs[4].RootID, "a new chain has a new root")
	})
}

// editAlerts returns body with its alerts passed through edit, as another
// Alertmanager (or a later one) would have sent them.
func editAlerts(t *testing.T, body []byte, edit func(alerts []map[string]any) []map[string]any) []byte {
	t.Helper()
	var p map[string]any
	require.NoError(t, json.Unmarshal(body, &p))
	var alerts []map[string]any
	for _, a := range p["alerts"].([]any) {
		alerts = append(alerts, a.(map[string]any))
	}
	p["alerts"] = edit(alerts)
	out, err := json.Marshal(p)
	require.NoError(t, err)
	return out
}

// After a group resolved: the same resolution from an HA peer that timed
// the alerts out on its own clock (another endsAt) is not news, while a
// resolution of other alerts replies to the closed chain instead of
// starting one of its own.
func TestLateResolutionsAfterTheChainClosed(t *testing.T) {
	forAPIs(t, func(t *testing.T, api string) {
		e := newEnv(t, api, feishutest.AppSecret)
		for _, name := range []string{"firing-HighCPU-seq1-first-notification.json", "resolved-HighCPU-seq4-all-alerts-resolved.json"} {
			code, a := e.post(t, "/webhook", payload(t, name))
			require.Equal(t, http.StatusOK, code, a.Error)
		}
		require.Len(t, e.feishu.Messages(), 2)
		resolved := payload(t, "resolved-HighCPU-seq4-all-alerts-resolved.json")

		peer := editAlerts(t, resolved, func(alerts []map[string]any) []map[string]any {
			for _, a := range alerts {
				a["endsAt"] = "2026-11-24T23:07:12.731Z"
			}
			return alerts
		})
		e.requireDeduped(t, peer, "infra", 2)

		fewer := editAlerts(t, resolved, func(alerts []map[string]any) []map[string]any { return alerts[:1] })
		code, a := e.post(t, "/webhook", fewer)
		require.Equal(t, http.StatusOK, code, a.Error)
		require.Equal(t, "sent", a.Receivers["infra"])
		msgs := e.feishu.Messages()
		require.Len(t, msgs, 3)
		require.Equal(t, msgs[0].ID, msgs[2].RootID, "a late resolution replies to the chain it ends")
		// The chain stays closed, remembering the latest resolution.
		e.requireDeduped(t, editAlerts(t, fewer, func(alerts []map[string]any) []map[string]any {
			alerts[0]["endsAt"] = "2026-11-24T23:07:13.002Z"
			return alerts
		}), "infra", 3)
	})
}

func TestExactRepeatIsNotSentAgain(t *testing.T) {
	forAPIs(t, func(t *testing.T, api string) {
		e := newEnv(t, api, feishutest.AppSecret)
		body := payload(t, "firing-DiskFull-default.json")
		code, a := e.post(t, "/webhook", body)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "sent", a.Receivers["catchall"])
		e.requireDeduped(t, body, "catchall", 1)
	})
}

func TestConcurrentPostsOfOneGroupMakeOneRoot(t *testing.T) {
	forAPIs(t, func(t *testing.T, api string) {
		e := newEnv(t, api, feishutest.AppSecret)
		e.feishu.SetLatency(20 * time.Millisecond) // widen the window for a race
		bodies := [][]byte{
			payload(t, "firing-HighCPU-seq1-first-notification.json"),
			payload(t, "firing-HighCPU-seq2-new-alerts-added.json"),
		}
		var wg sync.WaitGroup
		codes := make([]int, 10)
		answers := make([]answer, 10)
		errs := make([]error, 10)
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], answers[i], errs[i] = e.tryPost("/webhook", bodies[i%2])
			}()
		}
		wg.Wait()
		for i := range 10 {
			require.NoError(t, errs[i])
			require.Equal(t, http.StatusOK, codes[i], answers[i].Error)
		}
		msgs := e.feishu.Messages()
		require.Len(t, msgs, 2, "one message per distinct notification")
		require.Empty(t, msgs[0].RootID)
		require.Equal(t, msgs[0].ID, msgs[1].RootID, "the second replies to the first: one root")
	})
}

func TestBadInputSendsNothing(t *testing.T) {
	forAPIs(t, func(t *testing.T, api string) {
		e := newEnv(t, api, feishutest.AppSecret)
		valid := string(payload(t, "firing-DiskFull-default.json"))
		for name, body := range map[string]string{
			"empty":          "",
			"malformed":      "{not json",
			"wrong shape":    `{"alerts": {"a": 1}}`,
			"array":          `[]`,
			"version":        strings.Replace(valid, `"version":"4"`, `"version":"5"`, 1),
			"no alerts":      `{"version":"4","groupKey":"g","status":"firing","alerts":[]}`,
			"no groupKey":    strings.Replace(valid, `"groupKey"`, `"group_key"`, 1),
			"status":         strings.Replace(valid, `"status":"firing","alerts"`, `"status":"silenced","alerts"`, 1),
			"invalid UTF-8 ": "{\"version\":\"4\xff\"}",
		} {
			t.Run(name, func(t *testing.T) {
				code, a := e.post(t, "/webhook", []byte(body))
				require.Equal(t, http.StatusBadRequest, code)
				require.NotEmpty(t, a.Error)
			})
		}
		require.Empty(t, e.feishu.Messages())
		require.Zero(t, e.feishu.TokenRequests(), "not even a token was fetched")
	})
}

func TestOversizedBody(t *testing.T) {
	forAPIs(t, func(t *testing.T, api string) {
		e := newEnv(t, api, feishutest.AppSecret)
		big := bytes.Repeat([]byte(" "), 1<<20+1)
		code, a := e.post(t, "/webhook", big)
		require.Equal(t, http.StatusRequestEntityTooLarge, code)
		require.Contains(t, a.Error, "limit")

		// Without a Content-Length the body is cut off while reading.
		req, err := http.NewRequest(http.MethodPost, e.server.URL+"/webhook", io.MultiReader(bytes.NewReader(big)))
		require.NoError(t, err)
		req.ContentLength = -1
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
		require.Empty(t, e.feishu.Messages())
	})
}

func TestNamedReceiverSkipsRouting(t *testing.T) {
	forAPIs(t, func(t *testing.T, api string) {
		e := newEnv(t, api, feishutest.AppSecret)
		code, a := e.post(t, "/webhook/dba", payload(t, "firing-HighCPU-seq1-first-notification.json"))
		require.Equal(t, http.StatusOK, code, a.Error)
		require.Equal(t, map[string]string{"dba": "sent"}, a.Receivers)
		msgs := e.feishu.Messages()
		require.Len(t, msgs, 1)
		require.Equal(t, "email", msgs[0].Target)
		require.Equal(t, "dba@example.com", msgs[0].TargetID)

		code, a = e.post(t, "/webhook/nobody", payload(t, "firing-HighCPU-seq1-first-notification.json"))
		require.Equal(t, http.StatusNotFound, code)
		require.Contains(t, a.Error, `"nobody"`)
		require.Len(t, e.feishu.Messages(), 1)
	})
}

// Feishu fails twice, then answers: the notification is delivered inside
// its budget, and Alertmanager sees a plain 200.
func TestTransientFailuresAreRetriedInsideTheBudget(t *testing.T) {
	forAPIs(t, func(t *testing.T, api string) {
		e := newEnv(t, api, feishutest.AppSecret)
		body := payload(t, "firing-DiskFull-default.json")
		e.feishu.FailNext(1, feishutest.Fault{Status: http.StatusServiceUnavailable})
		e.feishu.FailNext(1, feishutest.Fault{Status: http.StatusOK, Code: 2200, Msg: "internal error"})
		code, a := e.post(t, "/webhook", body)
		require.Equal(t, http.StatusOK, code, a.Error)
		require.Len(t, e.feishu.Messages(), 1)
		require.Equal(t, 3, e.feishu.Sends())
		e.requireDeduped(t, body, "catchall", 1)
	})
}

// Feishu stays down past the budget: 503 names what failed, and once it is
// back, Alertmanager's retry delivers the notification once.
func TestFeishuDownPastTheBudgetIs503(t *testing.T) {
	forAPIs(t, func(t *testing.T, api string) {
		e := newEnvWith(t, api, feishutest.AppSecret, time.Second, time.Second)
		body := payload(t, "firing-DiskFull-default.json")
		e.feishu.FailTarget("oc_all", feishutest.Fault{Status: http.StatusServiceUnavailable})
		code, a := e.post(t, "/webhook", body)
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.Contains(t, a.Error, "receiver catchall (chat_id oc_all)")
		require.Contains(t, a.Error, "http 503")
		require.Len(t, a.Failures, 1)
		require.Equal(t, "transient", a.Failures[0].Class)
		require.Equal(t, "chat_id oc_all", a.Failures[0].Target)
		require.Empty(t, e.feishu.Messages())
		require.Greater(t, e.feishu.Sends(), 1, "retried before giving up")

		e.feishu.ClearTarget("oc_all")
		code, _ = e.post(t, "/webhook", body)
		require.Equal(t, http.StatusOK, code)
		e.requireDeduped(t, body, "catchall", 1)
	})
}

func TestPermanentFailureIs422(t *testing.T) {
	forAPIs(t, func(t *testing.T, api string) {
		e := newEnv(t, api, feishutest.AppSecret)
		e.feishu.RemoveBot("oc_all")
		code, a := e.post(t, "/webhook", payload(t, "firing-DiskFull-default.json"))
		require.Equal(t, http.StatusUnprocessableEntity, code)
		notInChat := map[string][]string{
			config.APIv4:   {"code 10030", "bot not in chat"},
			config.APIIMv1: {"code 230002", "Bot/User can NOT be out of the chat."},
		}[api]
		for _, want := range append([]string{"receiver catchall", "oc_all"}, notInChat...) {
			require.Contains(t, a.Error, want)
		}
		require.Empty(t, e.feishu.Messages())
	})
}

// A secret Feishu refuses is the operator's to fix: 422, so that
// Alertmanager re-sends at its next group_interval rather than hammering.
func TestWrongSecretIs422(t *testing.T) {
	forAPIs(t, func(t *testing.T, api string) {
		e := newEnv(t, api, "not-the-secret")
		code, a := e.post(t, "/webhook", payload(t, "firing-DiskFull-default.json"))
		require.Equal(t, http.StatusUnprocessableEntity, code)
		require.Contains(t, a.Error, "app secret invalid")
		require.NotContains(t, a.Error, "not-the-secret")
		require.Empty(t, e.feishu.Messages())
	})
}

func TestRecalledRootStartsANewChain(t *testing.T) {
	forAPIs(t, func(t *testing.T, api string) {
		for _, gone := range []string{"recalled", "deleted"} {
			t.Run(gone, func(t *testing.T) {
				e := newEnv(t, api, feishutest.AppSecret)
				code, _ := e.post(t, "/webhook", payload(t, "firing-HighCPU-seq1-first-notification.json"))
				require.Equal(t, http.StatusOK, code)
				first := e.feishu.Messages()[0].ID
				if gone == "recalled" {
					e.feishu.Recall(first)
				} else {
					e.feishu.Delete(first)
				}
				code, a := e.post(t, "/webhook", payload(t, "firing-HighCPU-seq2-new-alerts-added.json"))
				require.Equal(t, http.StatusOK, code, a.Error)
				code, a = e.post(t, "/webhook", payload(t, "firing-HighCPU-seq3-some-alerts-resolved.json"))
				require.Equal(t, http.StatusOK, code, a.Error)
				msgs := e.feishu.Messages()
				require.Len(t, msgs, 3)
				require.Empty(t, msgs[1].RootID, "the next notification is a new root")
				require.Equal(t, msgs[1].ID, msgs[2].RootID, "and the chain continues from it")
			})
		}
	})
}

func TestPartialFailureRetriesOnlyTheMissingReceiver(t *testing.T) {
	forAPIs(t, func(t *testing.T, api string) {
		e := newEnvWith(t, api, feishutest.AppSecret, time.Second, time.Second)
		body := bytes.ReplaceAll(payload(t, "firing-DiskFull-default.json"), []byte(`"DiskFull"`), []byte(`"Both"`))
		e.feishu.FailTarget("oc_infra", feishutest.Fault{Status: http.StatusInternalServerError})
		code, a := e.post(t, "/webhook", body)
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.Contains(t, a.Error, "receiver infra")
		require.NotContains(t, a.Error, "receiver critical")
		require.Equal(t, map[string]string{"infra": "failed", "critical": "sent"}, a.Receivers)
		require.Len(t, e.feishu.Messages(), 1)

		e.feishu.ClearTarget("oc_infra")

		code, a = e.post(t, "/webhook", body)
		require.Equal(t, http.StatusOK, code, a.Error)
		require.Equal(t, map[string]string{"infra": "sent", "critical": "deduped"}, a.Receivers)
		msgs := e.feishu.Messages()
		require.Len(t, msgs, 2)
		require.ElementsMatch(t, []string{"oc_infra", "oc_critical"}, []string{msgs[0].TargetID, msgs[1].TargetID})
	})
}

func TestNotificationMetrics(t *testing.T) {
	forAPIs(t, func(t *testing.T, api string) {
		e := newEnvWith(t, api, feishutest.AppSecret, time.Second, time.Second)
		body := payload(t, "firing-DiskFull-default.json")
		e.feishu.FailTarget("oc_all", feishutest.Fault{Status: http.StatusBadGateway})
		e.post(t, "/webhook", body)
		e.feishu.ClearTarget("oc_all")
		for range 2 {
			e.post(t, "/webhook", body)
		}
		err := testutil.GatherAndCompare(e.reg, strings.NewReader(`
	# HELP alertmanager_feishu_chains Open reply chains in the state store.
	# TYPE alertmanager_feishu_chains gauge
	alertmanager_feishu_chains 1
	# HELP alertmanager_feishu_notifications_total Notifications handled per receiver: sent, deduped (an exact repeat of one already delivered) or failed.
	# TYPE alertmanager_feishu_notifications_total counter
	alertmanager_feishu_notifications_total{receiver="catchall",status="deduped"} 1
	alertmanager_feishu_notifications_total{receiver="catchall",status="failed"} 1
	alertmanager_feishu_notifications_total{receiver="catchall",status="sent"} 1
	# HELP alertmanager_feishu_notification_failures_total Notifications not delivered to a receiver, by class: transient (answered 503, Alertmanager retries) or permanent (answered 422, needs the operator).
	# TYPE alertmanager_feishu_notification_failures_total counter
	alertmanager_feishu_notification_failures_total{class="transient",receiver="catchall"} 1
	`), "alertmanager_feishu_notifications_total", "alertmanager_feishu_chains", "alertmanager_feishu_notification_failures_total")
		require.NoError(t, err)
	})
}

// Each message type goes out through both APIs, and is the type asked for.
func TestEveryMessageType(t *testing.T) {
	forAPIsAndTypes(t, func(t *testing.T, api, typ string) {
		e := newEnv(t, api, feishutest.AppSecret)
		cfg := *e.pipeline.Config
		rc := *cfg.Receiver("infra")
		rc.MsgType = typ
		cfg.Receivers = []*config.Receiver{&rc}
		e.setConfig(t, &cfg)
		for _, name := range []string{"firing-HighCPU-seq1-first-notification.json", "resolved-HighCPU-seq4-all-alerts-resolved.json"} {
			code, a := e.post(t, "/webhook/infra", payload(t, name))
			require.Equal(t, http.StatusOK, code, a.Error)
		}
		msgs := e.feishu.Messages()
		require.Len(t, msgs, 2)
		for _, m := range msgs {
			require.Equal(t, typ, m.Type)
			require.Equal(t, api, m.API)
		}
		require.Equal(t, msgs[0].ID, msgs[1].RootID)
		require.Contains(t, msgs[1].Text, "[RESOLVED] HighCPU")
		if api == config.APIIMv1 {
			require.NotEmpty(t, msgs[0].UUID)
			require.NotEqual(t, msgs[0].UUID, msgs[1].UUID)
		}
	})
}

// A failed update of the root card never fails the notification: here the
// operator switched the receiver from text to cards in the middle of an
// incident, and Feishu cannot turn the text root into a card.
func TestRootUpdateFailureIsOnlyCounted(t *testing.T) {
	e := newEnv(t, config.APIIMv1, feishutest.AppSecret)
	cfg := *e.pipeline.Config
	rc := *cfg.Receiver("infra")
	rc.MsgType = config.MsgText
	cfg.Receivers = []*config.Receiver{&rc}
	e.setConfig(t, &cfg)
	code, a := e.post(t, "/webhook/infra", payload(t, "firing-HighCPU-seq1-first-notification.json"))
	require.Equal(t, http.StatusOK, code, a.Error)

	rc2 := rc
	rc2.MsgType = config.MsgInteractive
	cfg.Receivers = []*config.Receiver{&rc2}
	e.setConfig(t, &cfg)
	code, a = e.post(t, "/webhook/infra", payload(t, "resolved-HighCPU-seq4-all-alerts-resolved.json"))
	require.Equal(t, http.StatusOK, code, a.Error)
	require.Equal(t, "sent", a.Receivers["infra"])
	msgs := e.feishu.Messages()
	require.Len(t, msgs, 2)
	require.Zero(t, msgs[0].Updates)
	require.NoError(t, testutil.GatherAndCompare(e.reg, strings.NewReader(`
# HELP alertmanager_feishu_root_updates_total Root cards updated in place to show their group resolved, per receiver and result (updated, failed).
# TYPE alertmanager_feishu_root_updates_total counter
alertmanager_feishu_root_updates_total{receiver="infra",result="failed"} 1
`), "alertmanager_feishu_root_updates_total"))
}

// loseTheAnswer posts body while Feishu answers later than the delivery
// may wait: the webhook is answered 503, and Feishu keeps the message its
// sender never heard of. Feishu answers at once again after.
func (e *env) loseTheAnswer(t *testing.T, body []byte) {
	t.Helper()
	e.feishu.SetLatency(time.Second)
	code, _ := e.post(t, "/webhook", body)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Eventually(t, func() bool { return len(e.feishu.Messages()) == 1 }, 5*time.Second, 10*time.Millisecond,
		"Feishu kept the message whose answer was lost")
	e.feishu.SetLatency(0)
}

// Feishu accepts a send but the answer never arrives before the delivery's
// time is up: the delivery fails with 503, and Alertmanager's retry must
// not post a second message. im/v1 resends with the uuid remembered for the
// attempt, and Feishu hands back the message it has. v4 has no such key:
// the retry duplicates, which is why im/v1 is the default.
func TestRetryAfterLostAnswer(t *testing.T) {
	for api, want := range map[string]int{config.APIIMv1: 1, config.APIv4: 2} {
		t.Run(api, func(t *testing.T) {
			e := newEnvWith(t, api, feishutest.AppSecret, 300*time.Millisecond, 300*time.Millisecond)
			body := payload(t, "firing-DiskFull-default.json")
			e.loseTheAnswer(t, body)
			code, a := e.post(t, "/webhook", body)
			require.Equal(t, http.StatusOK, code, a.Error)
			require.Len(t, e.feishu.Messages(), want)
			e.requireDeduped(t, body, "catchall", want)
		})
	}
}

// A delivery outlives the request that started it: the request answers 503
// when its time is up, and Alertmanager's retries join the delivery rather
// than start another, so that even v4 sends once.
func TestRetryJoinsTheDeliveryUnderWay(t *testing.T) {
	forAPIs(t, func(t *testing.T, api string) {
		e := newEnvWith(t, api, feishutest.AppSecret, 200*time.Millisecond, 5*time.Second)
		body := payload(t, "firing-DiskFull-default.json")
		e.feishu.SetLatency(time.Second)
		code, a := e.post(t, "/webhook", body)
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.Equal(t, map[string]string{"catchall": "pending"}, a.Receivers)
		require.Contains(t, a.Error, "still being delivered")
		code, _ = e.post(t, "/webhook", body) // joins: still under way
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.Equal(t, 1, e.feishu.Sends(), "the retry did not send again")

		require.Eventually(t, func() bool { return len(e.feishu.Messages()) == 1 }, 5*time.Second, 10*time.Millisecond)
		e.feishu.SetLatency(0)
		require.Eventually(t, func() bool {
			code, a = e.post(t, "/webhook", body)
			return code == http.StatusOK
		}, 5*time.Second, 50*time.Millisecond)
		require.Contains(t, []string{"sent", "deduped"}, a.Receivers["catchall"], "joined as it ended, or found it done")
		require.Len(t, e.feishu.Messages(), 1)
		require.Equal(t, 1, e.feishu.Sends())
	})
}

const mentionRouting = `
feishu:
  base_url: %s
  app_id: cli_feishutest
  app_secret: %s
  api: %s
oncall:
  - name: primary
    timezone: Asia/Shanghai
    start: "2026-01-05T10:00:00"
    shift: 24h
    members: [{email: alice@example.com}]
receivers:
  - name: infra
    chat_id: oc_infra
    msg_type: %s
    mentions:
      oncall: [primary]
      users: [{email: lead@example.com}, {email: gone@example.com}]
      all_when: ['severity="critical"']
      from_label: owner
route:
  receiver: infra
`

// newMentionEnv is an env configured with mentionRouting for api and a
// receiver sending msgType.
func newMentionEnv(t *testing.T, api, msgType string) *env {
	t.Helper()
	e := newEnv(t, api, feishutest.AppSecret)
	cfg, err := config.Parse(fmt.Appendf(nil, mentionRouting, e.feishu.URL, feishutest.AppSecret, api, msgType))
	require.NoError(t, err)
	e.setConfig(t, cfg)
	return e
}

// Mentions reach Feishu as its markup for each message type: the person on
// call and the users, once each; @all only for a critical group; nobody on
// resolved; and a person whose email Feishu does not know is named, not
// mentioned.
func TestMentionsEndToEnd(t *testing.T) {
	forAPIsAndTypes(t, func(t *testing.T, api, typ string) {
		e := newMentionEnv(t, api, typ)
		e.feishu.AddUser("alice@example.com", "ou_alice")
		e.feishu.AddUser("lead@example.com", "ou_lead")

		// The captured HighCPU group is critical, and an owner
		// label names alice again and tries @all.
		firing := bytes.ReplaceAll(payload(t, "firing-HighCPU-seq1-first-notification.json"),
			[]byte(`"commonLabels":{`), []byte(`"commonLabels":{"owner":"alice@example.com,all","summary_at":"<at user_id=\"all\"></at>",`))
		code, a := e.post(t, "/webhook", firing)
		require.Equal(t, http.StatusOK, code, a.Error)
		root := e.feishu.Messages()[0]
		require.Equal(t, []string{"ou_alice", "ou_lead", "all"}, root.Mentions())
		require.Contains(t, root.Text, "could not mention: gone@example.com")

		code, a = e.post(t, "/webhook", payload(t, "resolved-HighCPU-seq4-all-alerts-resolved.json"))
		require.Equal(t, http.StatusOK, code, a.Error)
		msgs := e.feishu.Messages()
		require.Len(t, msgs, 2)
		require.Empty(t, msgs[1].Mentions(), "a resolved notification mentions no one")
		require.NoError(t, testutil.GatherAndCompare(e.reg, strings.NewReader(`
# HELP alertmanager_feishu_mentions_unresolved_total People a message should have mentioned but named in plain text instead, per receiver and reason: not_found (Feishu knows no user by that email), lookup_failed, no_app (custom bots without an app to look emails up with), refused (Feishu refused the message for its mentions, sent again without them) or all_refused (likewise @all, dropped).
# TYPE alertmanager_feishu_mentions_unresolved_total counter
alertmanager_feishu_mentions_unresolved_total{reason="not_found",receiver="infra"} 1
`), "alertmanager_feishu_mentions_unresolved_total"))
	})
}

// A contacts lookup that fails does not hold the alert back: it goes out,
// naming the people it could not mention.
func TestMentionLookupFailureNeverBlocks(t *testing.T) {
	e := newMentionEnv(t, config.APIIMv1, config.MsgInteractive)
	e.feishu.FailLookups(&feishutest.Fault{Status: http.StatusBadRequest, Code: 99991672, Msg: "Access denied. One of the following scopes is required: [contact:user.id:readonly]"})
	code, a := e.post(t, "/webhook", payload(t, "firing-HighCPU-seq1-first-notification.json"))
	require.Equal(t, http.StatusOK, code, a.Error)
	msgs := e.feishu.Messages()
	require.Len(t, msgs, 1)
	require.Equal(t, []string{"all"}, msgs[0].Mentions())
	require.Contains(t, msgs[0].Text, "could not mention: alice@example.com, lead@example.com, gone@example.com")
	require.Positive(t, e.feishu.Lookups())
}

// A 400-alert group with long multi-byte descriptions is delivered in every
// message type and API, cut at an alert boundary to Feishu's size limit,
// with its mentions whole.
func TestHugeGroupIsDelivered(t *testing.T) {
	var alerts template.Alerts
	start := time.Date(2026, 11, 24, 23, 0, 0, 0, time.UTC)
	for i := range 400 {
		alerts = append(alerts, template.Alert{
			Status:      "firing",
			Labels:      template.KV{"alertname": "DiskFull", "severity": "critical", "instance": fmt.Sprintf("db-%03d:9100", i)},
			Annotations: template.KV{"summary": strings.Repeat("磁盘 /var/lib/postgres 使用率超过 95%，", 4), "description": strings.Repeat("数据库磁盘即将写满，请立即清理。", 6)},
			StartsAt:    start,
			Fingerprint: fmt.Sprintf("%016x", i),
		})
	}
	body := diskFullGroup(t, alerts)
	require.Greater(t, len(body), 250<<10, "far over any message limit")

	forAPIsAndTypes(t, func(t *testing.T, api, typ string) {
		e := newMentionEnv(t, api, typ)
		e.feishu.AddUser("alice@example.com", "ou_alice")
		e.feishu.AddUser("lead@example.com", "ou_lead")
		code, a := e.post(t, "/webhook", body)
		require.Equal(t, http.StatusOK, code, a.Error)
		msgs := e.feishu.Messages()
		require.Len(t, msgs, 1)
		require.Equal(t, []string{"ou_alice", "ou_lead", "all"}, msgs[0].Mentions())
		require.Contains(t, msgs[0].Text, "[FIRING:400] DiskFull")
		// The stand-in refuses a message over its type's limit;
		// im/v1 text (150 KB) holds the whole group.
		if api == config.APIIMv1 && typ == config.MsgText {
			require.Contains(t, msgs[0].Text, "db-399:9100")
		} else {
			require.Regexp(t, `\d+ more alerts`, msgs[0].Text)
		}
		require.True(t, utf8.ValidString(msgs[0].Text))
	})
}

// With a bearer token configured, a webhook without it, or with another, is
// answered 401 and nothing is sent; with it, the notification is delivered.
func TestBearerToken(t *testing.T) {
	e := newEnv(t, config.APIIMv1, feishutest.AppSecret)
	cfg, err := config.Parse(fmt.Appendf(nil, routing+"intake: {bearer_token: s3cret-token}\n", e.feishu.URL, feishutest.AppSecret, config.APIIMv1))
	require.NoError(t, err)
	e.setConfig(t, cfg)
	body := payload(t, "firing-DiskFull-default.json")

	for _, auth := range []string{"", "Bearer wrong", "Basic s3cret-token", "Bearer s3cret-token-and-more", "Bearer  s3cret-token", "s3cret-token"} {
		req, err := http.NewRequest(http.MethodPost, e.server.URL+"/webhook", bytes.NewReader(body))
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var a answer
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, auth)
		require.Equal(t, "missing or wrong bearer token", a.Error)
		require.NotContains(t, resp.Header.Get("WWW-Authenticate"), "s3cret")
	}
	require.Empty(t, e.feishu.Messages())

	req, err := http.NewRequest(http.MethodPost, e.server.URL+"/webhook", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "bearer s3cret-token") // the scheme's case does not matter
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, e.feishu.Messages(), 1)
}
