package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/amtest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/app"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/servicetest"
	"github.com/alertmanager-feishu/alertmanager-feishu/state"
)

// routing is a routing.yaml for the stand-in at %[1]s, with the extra
// receivers %[2]s (YAML list items, one per line), the state in the
// folder's state.db.
const routing = `
feishu:
  base_url: %[1]s
  app_id: cli_feishutest
  app_secret_file: secret
state:
  path: state.db
receivers:
  - {name: infra, chat_id: oc_infra}
%[2]s
route:
  receiver: infra
`

// folder writes a routing.yaml for fs, with extra receivers, and its
// secret into a fresh folder, and returns the file's path.
func folder(t *testing.T, fs *feishutest.Server, extra string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte(feishutest.AppSecret+"\n"), 0o600))
	cfg := filepath.Join(dir, "routing.yaml")
	rewrite(t, cfg, fmt.Sprintf(routing, fs.URL, extra))
	return cfg
}

func rewrite(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
}

// service is one app.Run in the test's process, on a free loopback port,
// as servicetest runs it for the end-to-end tests.
type service struct {
	*servicetest.Service
	url  string
	logs logView
}

// logView reads what the service logged so far.
type logView struct{ s *servicetest.Service }

func (l logView) String() string { return l.s.Logs() }

// start runs app.Run with o and waits until it answers /-/ready. The
// service is stopped when the test ends.
func start(t *testing.T, o app.Options) *service {
	t.Helper()
	s, err := servicetest.RunInProcess(o)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
		if t.Failed() {
			t.Logf("service log:\n%s", s.Logs())
		}
	})
	return &service{Service: s, url: s.URL, logs: logView{s}}
}

// stop ends Run's context and returns Run's result.
func (s *service) stop(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.Stop(ctx)
}

// runAtStart runs app.Run with o, which is expected to fail before it
// serves, and returns its error.
func runAtStart(t *testing.T, o app.Options) error {
	t.Helper()
	s, err := servicetest.RunInProcessNotReady(o)
	require.NoError(t, err)
	select {
	case <-s.Done():
		return s.Err()
	case <-time.After(30 * time.Second):
		s.Kill()
		require.Fail(t, "Run did not return at start")
		return nil
	}
}

func post(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// metric reads one series' value from /metrics, for a polling condition
// (which must not fail the test from its goroutine); ok is false if it
// could not be read.
func metric(url, series string) (float64, bool) {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

func TestRunRefusesAConfigurationItCannotLoad(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "routing.yaml")
		err := runAtStart(t, app.Options{ConfigFile: cfg})
		require.ErrorContains(t, err, "load configuration "+cfg)
	})
	t.Run("bad", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "routing.yaml")
		rewrite(t, cfg, "receivers: [{name: a}]\nroute: {receiver: a}\nextra: 1\n")
		err := runAtStart(t, app.Options{ConfigFile: cfg})
		require.ErrorContains(t, err, "extra")
	})
}

// A second service on the same state file (another process, or another
// store in this one) is refused rather than sharing it.
func TestRunRefusesAStateFileInUse(t *testing.T) {
	fs := feishutest.New(t)
	cfg := folder(t, fs, "")
	other, err := state.OpenFile(filepath.Join(filepath.Dir(cfg), "state.db"), state.Options{}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer other.Close()
	err = runAtStart(t, app.Options{ConfigFile: cfg})
	require.ErrorContains(t, err, "locked by another process")
}

// A reload asked for through Options.Reload applies the new file: a
// receiver it adds takes webhooks. A broken file then leaves it in force,
// and the metric says the last reload failed.
func TestRunReloadsWhenAsked(t *testing.T) {
	fs := feishutest.New(t)
	cfg := folder(t, fs, "")
	reload := make(chan struct{})
	s := start(t, app.Options{ConfigFile: cfg, Reload: reload})
	code, body := post(t, s.url+"/webhook/newer", amtest.Group(1, nil, false))
	require.Equal(t, http.StatusNotFound, code, body)

	at, ok := metric(s.url, "alertmanager_feishu_config_last_reload_success_timestamp_seconds")
	require.True(t, ok)
	rewrite(t, cfg, fmt.Sprintf(routing, fs.URL, "  - {name: newer, chat_id: oc_newer}"))
	reload <- struct{}{}
	require.Eventually(t, func() bool {
		next, ok := metric(s.url, "alertmanager_feishu_config_last_reload_success_timestamp_seconds")
		return ok && next > at
	}, 10*time.Second, 10*time.Millisecond, "no reload")
	code, body = post(t, s.url+"/webhook/newer", amtest.Group(2, nil, false))
	require.Equal(t, http.StatusOK, code, body)

	// A route to a receiver that is not defined: refused.
	rewrite(t, cfg, strings.Replace(fmt.Sprintf(routing, fs.URL, ""), "receiver: infra", "receiver: nobody", 1))
	reload <- struct{}{}
	require.Eventually(t, func() bool {
		v, ok := metric(s.url, "alertmanager_feishu_config_last_reload_successful")
		return ok && v == 0
	}, 10*time.Second, 10*time.Millisecond, "the broken file was not reported")
	code, body = post(t, s.url+"/webhook/newer", amtest.Group(3, nil, false))
	require.Equal(t, http.StatusOK, code, body, "the previous configuration goes on")

	msgs := fs.Messages()
	require.Len(t, msgs, 2)
	for _, m := range msgs {
		require.Equal(t, "oc_newer", m.TargetID)
	}
	require.Contains(t, s.logs.String(), `receiver \"nobody\" is not defined`)
}

// The end of ctx stops the service cleanly: it stops listening and Run
// returns nil.
func TestRunStopsWhenItsContextEnds(t *testing.T) {
	fs := feishutest.New(t)
	s := start(t, app.Options{ConfigFile: folder(t, fs, "")})
	code, body := post(t, s.url+"/webhook", amtest.Group(1, nil, false))
	require.Equal(t, http.StatusOK, code, body)

	require.NoError(t, s.stop(t))
	_, err := http.Get(s.url + "/-/healthy")
	require.Error(t, err, "still listening")
	require.Contains(t, s.logs.String(), "msg=stopped")
}

// A delivery still under way when the grace period runs out makes Run
// return an error: the notification was not finished, and Alertmanager,
// answered 503, retries it after the restart.
func TestRunFailsWhenTheGraceRunsOut(t *testing.T) {
	fs := feishutest.New(t)
	fs.SetLatency(time.Minute) // the send is answered when its caller gives up
	s := start(t, app.Options{ConfigFile: folder(t, fs, ""), Timeout: 100 * time.Millisecond, Grace: 300 * time.Millisecond})
	code, body := post(t, s.url+"/webhook", amtest.Group(1, nil, false))
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.Eventually(t, func() bool { return fs.Sends() == 1 }, 10*time.Second, 10*time.Millisecond,
		"the send did not reach the stand-in")

	begun := time.Now()
	err := s.stop(t)
	require.ErrorContains(t, err, "shutdown did not finish in time")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(begun), 20*time.Second, "the delivery was given up once the grace ran out")
}

// A webhook still waiting for its delivery when the grace runs out does not
// keep the delivery alive past Run: it is cancelled with the rest, and
// nothing records into a store that was closed.
func TestRunCancelsDeliveriesOfOpenRequests(t *testing.T) {
	fs := feishutest.New(t)
	fs.SetLatency(3 * time.Second)
	s := start(t, app.Options{ConfigFile: folder(t, fs, ""), Timeout: 8 * time.Second, Grace: 300 * time.Millisecond})
	answered := make(chan int, 1)
	go func() {
		resp, err := http.Post(s.url+"/webhook", "application/json", bytes.NewReader(amtest.Group(1, nil, false)))
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	require.Eventually(t, func() bool { return fs.Sends() == 1 }, 10*time.Second, 10*time.Millisecond,
		"the send did not reach the stand-in")
	require.Error(t, s.stop(t), "the grace ran out")
	<-answered
	// The stand-in answers the held send 3 s after it came: a delivery
	// that outlived Run would then try to record it.
	require.Never(t, func() bool { return strings.Contains(s.logs.String(), "not recorded") }, 4*time.Second, 50*time.Millisecond,
		"a delivery outlived Run:\n%s", s.logs.String())
}

// Reload and profiles are served only where their flags ask, as Prometheus
// does: without --web.enable-lifecycle POST /-/reload answers 403 and
// reloads nothing; without --web.enable-pprof there are no profiles.
func TestAdminEndpointsNeedTheirFlags(t *testing.T) {
	fs := feishutest.New(t)
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint(on), func(t *testing.T) {
			s := start(t, app.Options{ConfigFile: folder(t, fs, ""), EnableLifecycle: on, EnablePprof: on})
			code, body := post(t, s.url+"/-/reload", nil)
			pprof, err := http.Get(s.url + "/debug/pprof/")
			require.NoError(t, err)
			pprof.Body.Close()
			if on {
				require.Equal(t, http.StatusOK, code, body)
				require.Equal(t, http.StatusOK, pprof.StatusCode)
				return
			}
			require.Equal(t, http.StatusForbidden, code, body)
			require.Contains(t, body, "--web.enable-lifecycle")
			require.Equal(t, http.StatusNotFound, pprof.StatusCode)
			require.Equal(t, 1, strings.Count(s.logs.String(), `msg="configuration loaded"`), "loaded at start, and not again")
		})
	}
}
