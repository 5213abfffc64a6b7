// Package e2e runs the whole service against the Feishu stand-in: in the
// test's own process through app.Run (serve) for what does not depend on
// the process, and as the built binary (start) where the process is the
// point: SIGKILL, SIGTERM, SIGHUP, the exit code, the subcommands, a real
// Alertmanager and replicas sharing Redis.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/app"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/servicetest"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "amfeishu-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin, err = servicetest.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const routing = `
feishu:
  base_url: %s
  app_id: cli_feishutest
  app_secret_file: secret
  api: %s
state:
  path: state/state.db
receivers:
  - {name: infra, chat_id: %s}
  - {name: catchall, chat_id: oc_all}
route:
  receiver: catchall
  routes:
    - {matchers: ['team="infra"'], receiver: infra}
`

var apis = []string{config.APIIMv1, config.APIv4}

// setup writes a routing.yaml for the stand-in into a fresh folder, for the
// default API.
func setup(t *testing.T, fs *feishutest.Server, infraChat string) string {
	t.Helper()
	return setupAPI(t, fs, config.APIIMv1, infraChat)
}

func setupAPI(t *testing.T, fs *feishutest.Server, api, infraChat string) string {
	t.Helper()
	return setupAt(t, fs.URL, api, infraChat)
}

// setupAt is setupAPI for a Feishu at baseURL: the stand-in, or a gate in
// front of it.
func setupAt(t *testing.T, baseURL, api, infraChat string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte(feishutest.AppSecret+"\n"), 0o600))
	writeConfig(t, dir, fmt.Sprintf(routing, baseURL, api, infraChat))
	return filepath.Join(dir, "routing.yaml")
}

func routingFor(fs *feishutest.Server, api, infraChat string) string {
	return fmt.Sprintf(routing, fs.URL, api, infraChat)
}

func writeConfig(t *testing.T, dir, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "routing.yaml"), []byte(content), 0o600))
}

// start runs the binary as a process with the configuration cfg and the
// flags args, and stops it when the test ends.
func start(t *testing.T, cfg string, args ...string) *servicetest.Service {
	t.Helper()
	s, err := servicetest.Start(bin, append([]string{"--config.file=" + cfg}, args...)...)
	require.NoError(t, err)
	stopAtCleanup(t, s)
	return s
}

// serve runs the service in the test's process through app.Run with o (its
// ConfigFile and the flags the test needs; the rest at the flags'
// defaults), and stops it when the test ends.
func serve(t *testing.T, o app.Options) *servicetest.Service {
	t.Helper()
	s, err := servicetest.RunInProcess(o)
	require.NoError(t, err)
	stopAtCleanup(t, s)
	return s
}

// stopAtCleanup stops s when the test ends, showing its log if it failed.
func stopAtCleanup(t *testing.T, s *servicetest.Service) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
		if t.Failed() {
			t.Logf("service log:\n%s", s.Logs())
		}
	})
}

// stop stops s (SIGTERM, or in process the end of Run's context) and
// requires a clean exit.
func stop(t *testing.T, s *servicetest.Service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.Stop(ctx), "a clean exit on SIGTERM")
}

// exited waits for s to exit by itself, after a signal, and requires a
// clean exit.
func exited(t *testing.T, s *servicetest.Service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, s.Wait(ctx), "a clean exit")
}

// logged waits until s has logged text.
func logged(t *testing.T, s *servicetest.Service, text string) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(s.Logs(), text) }, 10*time.Second, 10*time.Millisecond,
		"the service never logged %q", text)
}

func payload(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "alertmanager", name))
	require.NoError(t, err)
	return b
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

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// The chain of a group's life, a retry, the answers and the metrics, for
// each API.
func TestEndpointsAndMetrics(t *testing.T) {
	for _, api := range apis {
		t.Run(api, func(t *testing.T) {
			fs := feishutest.New(t)
			s := serve(t, app.Options{ConfigFile: setupAPI(t, fs, api, "oc_infra")})

			code, body := get(t, s.URL+"/-/healthy")
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, "OK\n", body)
			code, _ = get(t, s.URL+"/-/ready")
			require.Equal(t, http.StatusOK, code)

			for _, name := range []string{
				"firing-HighCPU-seq1-first-notification.json",
				"firing-HighCPU-seq2-new-alerts-added.json",
				"firing-HighCPU-seq2-new-alerts-added.json", // Alertmanager's retry
				"firing-HighCPU-seq3-some-alerts-resolved.json",
				"resolved-HighCPU-seq4-all-alerts-resolved.json",
			} {
				code, body := post(t, s.URL+"/webhook", payload(t, name))
				require.Equal(t, http.StatusOK, code, body)
			}
			msgs := fs.Messages()
			require.Len(t, msgs, 4)
			for _, m := range msgs {
				require.Equal(t, api, m.API)
			}
			for _, m := range msgs[1:] {
				require.Equal(t, msgs[0].ID, m.RootID)
			}

			sends := map[string][]string{
				config.APIv4: {`alertmanager_feishu_feishu_requests_total{code="0",endpoint="message/v4/send"} 4`},
				config.APIIMv1: {
					`alertmanager_feishu_feishu_requests_total{code="0",endpoint="im/v1/messages"} 1`,
					`alertmanager_feishu_feishu_requests_total{code="0",endpoint="im/v1/messages/reply"} 3`,
					`alertmanager_feishu_feishu_requests_total{code="0",endpoint="im/v1/messages/patch"} 1`,
					`alertmanager_feishu_root_updates_total{receiver="infra",result="updated"} 1`,
				},
			}[api]
			if api == config.APIIMv1 {
				require.Equal(t, "interactive", msgs[0].Type, "cards are im/v1's default")
				require.Equal(t, 1, msgs[0].Updates, "the root card shows the group resolved")
				require.Contains(t, msgs[0].Text, "All alerts resolved")
			} else {
				require.Equal(t, "text", msgs[0].Type, "v4 sends text by default")
			}
			code, metrics := get(t, s.URL+"/metrics")
			require.Equal(t, http.StatusOK, code)
			for _, want := range append(sends,
				`alertmanager_feishu_notifications_total{receiver="infra",status="sent"} 4`,
				`alertmanager_feishu_notifications_total{receiver="infra",status="deduped"} 1`,
				`alertmanager_feishu_send_duration_seconds_count 4`,
				`alertmanager_feishu_token_refreshes_total 1`,
				`alertmanager_feishu_chains 0`,
				`alertmanager_feishu_config_last_reload_successful 1`,
				`alertmanager_feishu_build_info{`,
			) {
				require.Contains(t, metrics, want)
			}
			require.NotContains(t, metrics, feishutest.AppSecret)
			require.NotContains(t, s.Logs(), feishutest.AppSecret)
		})
	}
}

// Chains and dedupe keys survive a restart: the service stopped and run
// again on the same state file.
func TestRestartKeepsState(t *testing.T) {
	for _, api := range apis {
		t.Run(api, func(t *testing.T) {
			fs := feishutest.New(t)
			o := app.Options{ConfigFile: setupAPI(t, fs, api, "oc_infra")}
			s := serve(t, o)
			code, body := post(t, s.URL+"/webhook", payload(t, "firing-HighCPU-seq1-first-notification.json"))
			require.Equal(t, http.StatusOK, code, body)
			stop(t, s)

			s = serve(t, o)
			code, body = post(t, s.URL+"/webhook", payload(t, "firing-HighCPU-seq1-first-notification.json"))
			require.Equal(t, http.StatusOK, code, body)
			require.Contains(t, body, "deduped", "the repeat is known after the restart")
			code, body = post(t, s.URL+"/webhook", payload(t, "firing-HighCPU-seq2-new-alerts-added.json"))
			require.Equal(t, http.StatusOK, code, body)

			msgs := fs.Messages()
			require.Len(t, msgs, 2)
			require.Equal(t, msgs[0].ID, msgs[1].RootID, "the chain continues after the restart")
		})
	}
}

// SIGTERM lets a notification that is being delivered finish: the send is
// held at a gate until the service has begun to stop, so it is surely in
// flight then, however slow the machine.
func TestSIGTERMFinishesInFlight(t *testing.T) {
	fs := feishutest.New(t)
	g := newGate(t, fs.URL)
	s := start(t, setupAt(t, g.URL, config.APIIMv1, "oc_infra"))

	type reply struct {
		code int
		body string
	}
	done := make(chan reply, 1)
	body := payload(t, "firing-HighCPU-seq1-first-notification.json")
	go func() {
		resp, err := http.Post(s.URL+"/webhook", "application/json", bytes.NewReader(body))
		if err != nil {
			done <- reply{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- reply{resp.StatusCode, string(b)}
	}()
	g.waitSend(t)
	require.NoError(t, s.Signal(syscall.SIGTERM))
	logged(t, s, "finishing in-flight notifications")
	select {
	case r := <-done:
		require.Fail(t, "answered while its send was held", "%d %s", r.code, r.body)
	default:
	}
	g.open()
	select {
	case r := <-done:
		require.Equal(t, http.StatusOK, r.code, r.body)
	case <-time.After(20 * time.Second):
		require.Fail(t, "no answer once the send was let through")
	}
	require.Len(t, fs.Messages(), 1)
	exited(t, s)
}

// SIGTERM also waits for a delivery that outlived its request: the request
// was answered 503, the delivery goes on, and the process exits once it is
// recorded, so that the retry after the restart finds it done. The send is
// held at a gate until after SIGTERM.
func TestSIGTERMWaitsForDetachedDeliveries(t *testing.T) {
	fs := feishutest.New(t)
	g := newGate(t, fs.URL)
	cfg := setupAt(t, g.URL, config.APIIMv1, "oc_infra")
	s := start(t, cfg, "--delivery.timeout=200ms")
	body := payload(t, "firing-HighCPU-seq1-first-notification.json")
	code, answer := post(t, s.URL+"/webhook", body)
	require.Equal(t, http.StatusServiceUnavailable, code, answer)
	require.Contains(t, answer, "still being delivered")
	require.Empty(t, fs.Messages())

	require.NoError(t, s.Signal(syscall.SIGTERM))
	logged(t, s, "finishing in-flight notifications")
	// An absence, so a bounded watch: a process that did not wait for the
	// held delivery would exit within moments of SIGTERM.
	require.Never(t, func() bool {
		select {
		case <-s.Done():
			return true
		default:
			return false
		}
	}, time.Second, 10*time.Millisecond, "the process exited with a delivery under way")
	g.open()
	exited(t, s)
	require.Len(t, fs.Messages(), 1, "delivered before the exit")

	// A service of its own: require.Never's last check may still be
	// reading s.
	again := start(t, cfg)
	code, answer = post(t, again.URL+"/webhook", body)
	require.Equal(t, http.StatusOK, code, answer)
	require.Contains(t, answer, `"deduped"`)
	require.Len(t, fs.Messages(), 1)
}

// reloadedAt is when the service last loaded its configuration, from the
// metric; 0 if it cannot be read.
func reloadedAt(url string) float64 {
	v, _ := metricValue(url, "alertmanager_feishu_config_last_reload_success_timestamp_seconds")
	return v
}

// Reloading, in process: POST /-/reload applies a new file; a broken one is
// answered 500 with the problem, the metric says so, and the running
// configuration goes on; a reload asked for through Options.Reload (what
// main sends on SIGHUP) applies the file once it is fixed.
func TestReload(t *testing.T) {
	fs := feishutest.New(t)
	cfg := setup(t, fs, "oc_before")
	reload := make(chan struct{})
	s := serve(t, app.Options{ConfigFile: cfg, Reload: reload, EnableLifecycle: true})
	dir := filepath.Dir(cfg)

	writeConfig(t, dir, routingFor(fs, config.APIIMv1, "oc_after"))
	code, body := post(t, s.URL+"/-/reload", nil)
	require.Equal(t, http.StatusOK, code, body)
	code, body = post(t, s.URL+"/webhook", payload(t, "firing-HighCPU-seq1-first-notification.json"))
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "oc_after", fs.Messages()[0].TargetID)

	// A broken file is refused and the running configuration kept: infra
	// still goes to oc_after, not to the broken file's chat.
	writeConfig(t, dir, strings.Replace(routingFor(fs, config.APIIMv1, "oc_broken"), "receiver: infra", "receiver: nobody", 1))
	code, body = post(t, s.URL+"/-/reload", nil)
	require.Equal(t, http.StatusInternalServerError, code)
	require.Contains(t, body, `receiver "nobody" is not defined`)
	_, metrics := get(t, s.URL+"/metrics")
	require.Contains(t, metrics, "alertmanager_feishu_config_last_reload_successful 0")
	code, body = post(t, s.URL+"/webhook", payload(t, "firing-DiskFull-default.json"))
	require.Equal(t, http.StatusOK, code, body)
	code, body = post(t, s.URL+"/webhook", payload(t, "firing-HighCPU-critical-max_alerts1.json"))
	require.Equal(t, http.StatusOK, code, body)
	msgs := fs.Messages()
	require.Equal(t, "oc_after", msgs[len(msgs)-1].TargetID, "the old configuration goes on")

	// Options.Reload reloads too.
	writeConfig(t, dir, routingFor(fs, config.APIIMv1, "oc_hup"))
	reload <- struct{}{}
	require.Eventually(t, func() bool {
		v, err := metricValue(s.URL, "alertmanager_feishu_config_last_reload_successful")
		return err == nil && v == 1
	}, 10*time.Second, 20*time.Millisecond, "Options.Reload did not reload")
	code, body = post(t, s.URL+"/webhook", payload(t, "firing-HighCPU-infra.json"))
	require.Equal(t, http.StatusOK, code, body)
	msgs = fs.Messages()
	require.Equal(t, "oc_hup", msgs[len(msgs)-1].TargetID)
}

// SIGHUP reloads the process's configuration (main turns it into a reload
// request; the rest of reloading is TestReload's).
func TestSIGHUPReloads(t *testing.T) {
	fs := feishutest.New(t)
	cfg := setup(t, fs, "oc_before")
	s := start(t, cfg)
	before := reloadedAt(s.URL)
	require.Positive(t, before)

	writeConfig(t, filepath.Dir(cfg), routingFor(fs, config.APIIMv1, "oc_hup"))
	require.NoError(t, s.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return reloadedAt(s.URL) > before }, 10*time.Second, 20*time.Millisecond,
		"SIGHUP did not reload")
	code, body := post(t, s.URL+"/webhook", payload(t, "firing-HighCPU-infra.json"))
	require.Equal(t, http.StatusOK, code, body)
	msgs := fs.Messages()
	require.Len(t, msgs, 1)
	require.Equal(t, "oc_hup", msgs[0].TargetID)
}

// A configuration that does not load: Run refuses it with the problem,
// and the process says it and exits 1.
func TestBadConfigRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, "receivers: [{name: a}]\nroute: {receiver: b}\nextra: 1\n")
	cfg := filepath.Join(dir, "routing.yaml")
	_, err := servicetest.RunInProcess(app.Options{ConfigFile: cfg})
	require.ErrorContains(t, err, "extra")

	out, code := run(t, "--config.file="+cfg, "--web.listen-address=127.0.0.1:0")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "extra")
}

func TestWrongSecretIsLoggedAtStart(t *testing.T) {
	fs := feishutest.New(t)
	fs.SetCredentials(feishutest.AppID, "another-secret")
	s := serve(t, app.Options{ConfigFile: setup(t, fs, "oc_infra")})
	logged(t, s, "app secret invalid")
	code, body := post(t, s.URL+"/webhook", payload(t, "firing-DiskFull-default.json"))
	require.Equal(t, http.StatusUnprocessableEntity, code, body)
	require.Contains(t, body, "app secret invalid")
	require.NotContains(t, body, "another-secret")
}

// Concurrent posts of one group make one root; bad input sends nothing.
func TestConcurrentPostsAndBadInput(t *testing.T) {
	fs := feishutest.New(t)
	s := serve(t, app.Options{ConfigFile: setup(t, fs, "oc_infra")})
	fs.SetLatency(20 * time.Millisecond)

	for _, body := range []string{"", "{", `{"version":"4"}`, "[]", "\xff\xfe"} {
		code, answer := post(t, s.URL+"/webhook", []byte(body))
		require.Equal(t, http.StatusBadRequest, code, answer)
		require.Contains(t, answer, `"error"`)
	}
	require.Zero(t, fs.Sends())

	bodies := [][]byte{
		payload(t, "firing-HighCPU-seq1-first-notification.json"),
		payload(t, "firing-HighCPU-seq2-new-alerts-added.json"),
	}
	codes := make(chan int, 8)
	for i := range 8 {
		go func() {
			resp, err := http.Post(s.URL+"/webhook", "application/json", bytes.NewReader(bodies[i%2]))
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	for range 8 {
		require.Equal(t, http.StatusOK, <-codes)
	}
	msgs := fs.Messages()
	require.Len(t, msgs, 2)
	require.Empty(t, msgs[0].RootID)
	require.Equal(t, msgs[0].ID, msgs[1].RootID)
}

// The process is killed while Feishu is taking a send, and restarted;
// Alertmanager retries. On im/v1 the retry carries the uuid recorded before
// the send, and Feishu keeps one message. v4 has no idempotency key, and the
// retry posts a second copy: the known cost of the legacy API.
func TestKilledMidSendThenRetried(t *testing.T) {
	for api, want := range map[string]int{config.APIIMv1: 1, config.APIv4: 2} {
		t.Run(api, func(t *testing.T) {
			fs := feishutest.New(t)
			cfg := setupAPI(t, fs, api, "oc_infra")
			s := start(t, cfg)
			fs.SetLatency(2 * time.Second)
			body := payload(t, "firing-HighCPU-seq1-first-notification.json")
			posted := make(chan struct{})
			go func() {
				defer close(posted)
				if resp, err := http.Post(s.URL+"/webhook", "application/json", bytes.NewReader(body)); err == nil {
					resp.Body.Close()
				}
			}()
			require.Eventually(t, func() bool { return fs.Sends() == 1 }, 5*time.Second, 5*time.Millisecond)
			s.Kill()
			<-posted
			require.Eventually(t, func() bool { return len(fs.Messages()) == 1 }, 5*time.Second, 5*time.Millisecond,
				"Feishu accepted the send whose answer the killed process never read")

			fs.SetLatency(0)
			s = start(t, cfg)
			code, answer := post(t, s.URL+"/webhook", body)
			require.Equal(t, http.StatusOK, code, answer)
			require.Len(t, fs.Messages(), want)
			code, answer = post(t, s.URL+"/webhook", payload(t, "firing-HighCPU-seq2-new-alerts-added.json"))
			require.Equal(t, http.StatusOK, code, answer)
			msgs := fs.Messages()
			require.Equal(t, msgs[want-1].ID, msgs[want].RootID, "the chain goes on from the recorded root")
		})
	}
}
