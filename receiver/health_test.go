package receiver_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
)

// stopDeliveries ends the deliveries still under way at once, so that a
// test of a delivery that retries for long does not wait for it, whichever
// way the test ends.
func (e *env) stopDeliveries() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = e.handler.Shutdown(ctx)
}

// pendingAnswer posts body until its answer is a 503 for a delivery still
// under way that names its last failed call, as Alertmanager's retries
// would, and returns that answer.
func (e *env) pendingAnswer(t *testing.T, body []byte) answer {
	t.Helper()
	var last answer
	require.Eventually(t, func() bool {
		code, a, err := e.tryPost("/webhook", body)
		last = a
		return err == nil && code == http.StatusServiceUnavailable && a.Receivers["catchall"] == "pending" &&
			strings.Contains(a.Error, "last attempt: ")
	}, 20*time.Second, 10*time.Millisecond, "last answer: %+v", last)
	return last
}

// A delivery still retrying when its request's time is up is answered 503
// with the reason its last call to Feishu failed, which Alertmanager logs.
func TestPendingAnswerNamesTheLastCause(t *testing.T) {
	endpoints := map[string]string{config.APIIMv1: "feishu im/v1/messages", config.APIv4: "feishu message/v4/send"}
	codes := map[string]int{config.APIIMv1: 230020, config.APIv4: 11233}
	forAPIs(t, func(t *testing.T, api string) {
		t.Run("refused", func(t *testing.T) {
			e := newEnvWith(t, api, feishutest.AppSecret, 200*time.Millisecond, time.Minute)
			t.Cleanup(e.stopDeliveries)
			e.feishu.FailTarget("oc_all", feishutest.Fault{Status: http.StatusBadRequest, Code: codes[api], Msg: "request trigger frequency limit"})
			a := e.pendingAnswer(t, payload(t, "firing-DiskFull-default.json"))
			require.Contains(t, a.Error, "receiver catchall (chat_id oc_all): still being delivered")
			require.Contains(t, a.Error, "last attempt: "+endpoints[api]+": http 400, code "+strconv.Itoa(codes[api])+": request trigger frequency limit")
			require.Len(t, a.Failures, 1)
			require.Equal(t, "transient", a.Failures[0].Class)
			require.Equal(t, codes[api], a.Failures[0].Code, "the failure carries Feishu's code")
			require.Equal(t, 1.0, inFlight(t, e), "one delivery under way")
			e.stopDeliveries()
			require.Equal(t, 0.0, inFlight(t, e))
		})
		t.Run("unreachable", func(t *testing.T) {
			e := newEnvWith(t, api, feishutest.AppSecret, 200*time.Millisecond, time.Minute)
			t.Cleanup(e.stopDeliveries)
			require.NoError(t, e.feishu.Close())
			a := e.pendingAnswer(t, payload(t, "firing-DiskFull-default.json"))
			require.Contains(t, a.Error, "last attempt: get tenant_access_token: feishu auth/v3/tenant_access_token/internal: post: dial tcp")
			require.Contains(t, a.Error, "connection refused")
		})
	})
}

// value is the value of the series of name in reg with labels, and
// whether there is one.
func value(t *testing.T, e *env, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := e.reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue(), true
			}
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

func inFlight(t *testing.T, e *env) float64 {
	t.Helper()
	v, ok := value(t, e, "alertmanager_feishu_deliveries_in_flight", nil)
	require.True(t, ok)
	return v
}

// Every answer on the webhook paths is counted by its pattern and status
// code: the receiver's name never makes a series.
func TestIntakeRequestsAreCounted(t *testing.T) {
	e := newEnv(t, config.APIIMv1, feishutest.AppSecret)
	body := payload(t, "firing-DiskFull-default.json")
	code, _ := e.post(t, "/webhook", body)
	require.Equal(t, http.StatusOK, code)
	code, _ = e.post(t, "/webhook", body) // deduped: a 200 too
	require.Equal(t, http.StatusOK, code)
	code, _ = e.post(t, "/webhook/infra", []byte("{"))
	require.Equal(t, http.StatusBadRequest, code)
	for _, name := range []string{"made-up", "another-made-up"} {
		code, _ = e.post(t, "/webhook/"+name, body)
		require.Equal(t, http.StatusNotFound, code)
	}

	for _, want := range []struct {
		path, code string
		n          float64
	}{
		{"/webhook", "200", 2},
		{"/webhook/{receiver}", "400", 1},
		{"/webhook/{receiver}", "404", 2},
	} {
		v, ok := value(t, e, "alertmanager_feishu_intake_requests_total", map[string]string{"path": want.path, "code": want.code})
		require.True(t, ok, "%s %s", want.path, want.code)
		require.Equal(t, want.n, v, "%s %s", want.path, want.code)
	}
	families, err := e.reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == "alertmanager_feishu_intake_requests_total" {
			require.Len(t, f.GetMetric(), 3, "one series per pattern and code")
		}
	}
	require.Equal(t, 0.0, inFlight(t, e), "nothing under way")
}
