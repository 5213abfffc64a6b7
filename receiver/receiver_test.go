package receiver_test

import (
	"bytes"
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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
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
	reg     *prometheus.Registry
	feishu  *feishutest.Server
	server  *httptest.Server
	handler *receiver.Handler
}

func newEnv(t *testing.T, secret string) *env {
	t.Helper()
	fs := feishutest.New(t)
	cfg, err := config.Parse(fmt.Appendf(nil, routing, fs.URL, secret))
	require.NoError(t, err)
	logger := promslog.NewNopLogger()
	reg := prometheus.NewRegistry()
	p, err := receiver.NewPipeline(cfg, feishu.NewMetrics(reg), logger)
	require.NoError(t, err)
	store, err := state.OpenFile(filepath.Join(t.TempDir(), "state.db"),
		state.Options{ChainTTL: time.Hour, DedupeWindow: 10 * time.Minute}, logger)
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	h := receiver.New(p, receiver.Options{
		Store: store, MaxBodyBytes: 64 << 10, Timeout: 5 * time.Second, Logger: logger, Registerer: reg,
	})
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{reg: reg, feishu: fs, server: srv, handler: h}
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
}

func (e *env) post(t *testing.T, path string, body []byte) (int, answer) {
	t.Helper()
	resp, err := http.Post(e.server.URL+path, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var a answer
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	return resp.StatusCode, a
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
	e := newEnv(t, feishutest.AppSecret)
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
	require.True(t, strings.HasPrefix(root.Text, "[FIRING:2] HighCPU"), root.Text)
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
}

func TestExactRepeatIsNotSentAgain(t *testing.T) {
	e := newEnv(t, feishutest.AppSecret)
	body := payload(t, "firing-DiskFull-default.json")
	code, a := e.post(t, "/webhook", body)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "sent", a.Receivers["catchall"])
	e.requireDeduped(t, body, "catchall", 1)
}

func TestConcurrentPostsOfOneGroupMakeOneRoot(t *testing.T) {
	e := newEnv(t, feishutest.AppSecret)
	e.feishu.SetLatency(20 * time.Millisecond) // widen the window for a race
	bodies := [][]byte{
		payload(t, "firing-HighCPU-seq1-first-notification.json"),
		payload(t, "firing-HighCPU-seq2-new-alerts-added.json"),
	}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, a := e.post(t, "/webhook", bodies[i%2])
			require.Equal(t, http.StatusOK, code, a.Error)
		}()
	}
	wg.Wait()
	msgs := e.feishu.Messages()
	require.Len(t, msgs, 2, "one message per distinct notification")
	require.Empty(t, msgs[0].RootID)
	require.Equal(t, msgs[0].ID, msgs[1].RootID, "the second replies to the first: one root")
}

func TestBadInputSendsNothing(t *testing.T) {
	e := newEnv(t, feishutest.AppSecret)
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
}

func TestOversizedBody(t *testing.T) {
	e := newEnv(t, feishutest.AppSecret)
	big := bytes.Repeat([]byte(" "), 65<<10)
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
}

func TestNamedReceiverSkipsRouting(t *testing.T) {
	e := newEnv(t, feishutest.AppSecret)
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
}

func TestFeishuUnavailableThenBack(t *testing.T) {
	e := newEnv(t, feishutest.AppSecret)
	body := payload(t, "firing-DiskFull-default.json")
	e.feishu.FailNext(1, feishutest.Fault{Status: http.StatusServiceUnavailable})
	code, a := e.post(t, "/webhook", body)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, a.Error, "receiver catchall (chat_id oc_all)")
	require.Contains(t, a.Error, "http 503")
	require.Empty(t, e.feishu.Messages())

	// Alertmanager retries the same body: it is delivered once.
	code, _ = e.post(t, "/webhook", body)
	require.Equal(t, http.StatusOK, code)
	e.requireDeduped(t, body, "catchall", 1)
}

func TestPermanentFailureIs422(t *testing.T) {
	e := newEnv(t, feishutest.AppSecret)
	e.feishu.RemoveBot("oc_all")
	code, a := e.post(t, "/webhook", payload(t, "firing-DiskFull-default.json"))
	require.Equal(t, http.StatusUnprocessableEntity, code)
	for _, want := range []string{"receiver catchall", "oc_all", "code 10030", "bot not in chat"} {
		require.Contains(t, a.Error, want)
	}
	require.Empty(t, e.feishu.Messages())
}

func TestWrongSecretIs503(t *testing.T) {
	e := newEnv(t, "not-the-secret")
	code, a := e.post(t, "/webhook", payload(t, "firing-DiskFull-default.json"))
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, a.Error, "app secret invalid")
	require.NotContains(t, a.Error, "not-the-secret")
	require.Empty(t, e.feishu.Messages())
}

func TestRecalledRootStartsANewChain(t *testing.T) {
	for _, gone := range []string{"recalled", "deleted"} {
		t.Run(gone, func(t *testing.T) {
			e := newEnv(t, feishutest.AppSecret)
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
}

func TestPartialFailureRetriesOnlyTheMissingReceiver(t *testing.T) {
	e := newEnv(t, feishutest.AppSecret)
	body := bytes.ReplaceAll(payload(t, "firing-DiskFull-default.json"), []byte(`"DiskFull"`), []byte(`"Both"`))
	e.feishu.FailNext(1, feishutest.Fault{Status: http.StatusInternalServerError}) // infra's send
	code, a := e.post(t, "/webhook", body)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, a.Error, "receiver infra")
	require.NotContains(t, a.Error, "receiver critical")
	require.Len(t, e.feishu.Messages(), 1)

	code, a = e.post(t, "/webhook", body)
	require.Equal(t, http.StatusOK, code, a.Error)
	require.Equal(t, map[string]string{"infra": "sent", "critical": "deduped"}, a.Receivers)
	msgs := e.feishu.Messages()
	require.Len(t, msgs, 2)
	require.ElementsMatch(t, []string{"oc_infra", "oc_critical"}, []string{msgs[0].TargetID, msgs[1].TargetID})
}

func TestNotificationMetrics(t *testing.T) {
	e := newEnv(t, feishutest.AppSecret)
	body := payload(t, "firing-DiskFull-default.json")
	e.feishu.FailNext(1, feishutest.Fault{Status: http.StatusBadGateway})
	for range 3 {
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
`), "alertmanager_feishu_notifications_total", "alertmanager_feishu_chains")
	require.NoError(t, err)
}
