// Package e2e runs the service binary as a process against the Feishu
// stand-in, for what only a real process shows: restarts, signals, reload,
// the HTTP endpoints and metrics.
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
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte(feishutest.AppSecret+"\n"), 0o600))
	writeConfig(t, dir, routingFor(fs, api, infraChat))
	return filepath.Join(dir, "routing.yaml")
}

func routingFor(fs *feishutest.Server, api, infraChat string) string {
	return fmt.Sprintf(routing, fs.URL, api, infraChat)
}

func writeConfig(t *testing.T, dir, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "routing.yaml"), []byte(content), 0o600))
}

func start(t *testing.T, cfg string, args ...string) *servicetest.Service {
	t.Helper()
	s, err := servicetest.Start(bin, append([]string{"--config.file=" + cfg}, args...)...)
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

func stop(t *testing.T, s *servicetest.Service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.Stop(ctx), "a clean exit on SIGTERM")
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
			s := start(t, setupAPI(t, fs, api, "oc_infra"))

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

// Chains and dedupe keys survive a restart.
func TestRestartKeepsState(t *testing.T) {
	for _, api := range apis {
		t.Run(api, func(t *testing.T) {
			fs := feishutest.New(t)
			cfg := setupAPI(t, fs, api, "oc_infra")
			s := start(t, cfg)
			code, body := post(t, s.URL+"/webhook", payload(t, "firing-HighCPU-seq1-first-notification.json"))
			require.Equal(t, http.StatusOK, code, body)
			stop(t, s)

			s = start(t, cfg)
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

// SIGTERM lets a notification that is being delivered finish.
func TestSIGTERMFinishesInFlight(t *testing.T) {
	fs := feishutest.New(t)
	s := start(t, setup(t, fs, "oc_infra"))
	fs.SetLatency(time.Second)

	type reply struct {
		code int
		body string
	}
	done := make(chan reply, 1)
	go func() {
		resp, err := http.Post(s.URL+"/webhook", "application/json",
			bytes.NewReader(payload(t, "firing-HighCPU-seq1-first-notification.json")))
		if err != nil {
			done <- reply{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- reply{resp.StatusCode, string(b)}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for fs.Sends() == 0 {
		require.True(t, time.Now().Before(deadline), "the send never reached the stand-in")
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, s.Signal(syscall.SIGTERM))
	r := <-done
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.Len(t, fs.Messages(), 1)
	stop(t, s)
	require.Contains(t, s.Logs(), "finishing in-flight notifications")
}

// SIGTERM also waits for a delivery that outlived its request: the request
// was answered 503, the delivery goes on, and the process exits once it is
// recorded, so that the retry after the restart finds it done.
func TestSIGTERMWaitsForDetachedDeliveries(t *testing.T) {
	fs := feishutest.New(t)
	cfg := setup(t, fs, "oc_infra")
	s := start(t, cfg, "--delivery.timeout=200ms")
	fs.SetLatency(1500 * time.Millisecond)
	body := payload(t, "firing-HighCPU-seq1-first-notification.json")
	code, answer := post(t, s.URL+"/webhook", body)
	require.Equal(t, http.StatusServiceUnavailable, code, answer)
	require.Contains(t, answer, "still being delivered")
	require.Empty(t, fs.Messages())

	stop(t, s)
	require.Len(t, fs.Messages(), 1, "delivered before the exit")

	s = start(t, cfg)
	code, answer = post(t, s.URL+"/webhook", body)
	require.Equal(t, http.StatusOK, code, answer)
	require.Contains(t, answer, `"deduped"`)
	require.Len(t, fs.Messages(), 1)
}

func TestReload(t *testing.T) {
	fs := feishutest.New(t)
	cfg := setup(t, fs, "oc_before")
	s := start(t, cfg)
	dir := filepath.Dir(cfg)

	writeConfig(t, dir, routingFor(fs, config.APIIMv1, "oc_after"))
	resp, err := http.Post(s.URL+"/-/reload", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	code, body := post(t, s.URL+"/webhook", payload(t, "firing-HighCPU-seq1-first-notification.json"))
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "oc_after", fs.Messages()[0].TargetID)

	// A broken file is refused and the running configuration kept.
	writeConfig(t, dir, strings.Replace(routingFor(fs, config.APIIMv1, "oc_broken"), "receiver: infra", "receiver: nobody", 1))
	code, body = post(t, s.URL+"/-/reload", nil)
	require.Equal(t, http.StatusInternalServerError, code)
	require.Contains(t, body, `receiver "nobody" is not defined`)
	_, metrics := get(t, s.URL+"/metrics")
	require.Contains(t, metrics, "alertmanager_feishu_config_last_reload_successful 0")
	code, body = post(t, s.URL+"/webhook", payload(t, "firing-DiskFull-default.json"))
	require.Equal(t, http.StatusOK, code, body)

	// SIGHUP reloads too.
	writeConfig(t, dir, routingFor(fs, config.APIIMv1, "oc_hup"))
	require.NoError(t, s.Signal(syscall.SIGHUP))
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, metrics = get(t, s.URL+"/metrics")
		if strings.Contains(metrics, "alertmanager_feishu_config_last_reload_successful 1") {
			break
		}
		require.True(t, time.Now().Before(deadline), "SIGHUP did not reload")
		time.Sleep(20 * time.Millisecond)
	}
	code, body = post(t, s.URL+"/webhook", payload(t, "firing-HighCPU-infra.json"))
	require.Equal(t, http.StatusOK, code, body)
	msgs := fs.Messages()
	require.Equal(t, "oc_hup", msgs[len(msgs)-1].TargetID)
}

func TestBadConfigRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, "receivers: [{name: a}]\nroute: {receiver: b}\nextra: 1\n")
	_, err := servicetest.Start(bin, "--config.file="+filepath.Join(dir, "routing.yaml"))
	require.Error(t, err)
	require.Contains(t, err.Error(), "extra")
}

func TestWrongSecretIsLoggedAtStart(t *testing.T) {
	fs := feishutest.New(t)
	fs.SetCredentials(feishutest.AppID, "another-secret")
	s := start(t, setup(t, fs, "oc_infra"))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.Logs(), "app secret invalid") {
		require.True(t, time.Now().Before(deadline), "no log line about the credentials")
		time.Sleep(20 * time.Millisecond)
	}
	code, body := post(t, s.URL+"/webhook", payload(t, "firing-DiskFull-default.json"))
	require.Equal(t, http.StatusUnprocessableEntity, code, body)
	require.Contains(t, body, "app secret invalid")
	require.NotContains(t, body, "another-secret")
}

// Concurrent posts of one group make one root; bad input sends nothing.
func TestConcurrentPostsAndBadInput(t *testing.T) {
	fs := feishutest.New(t)
	s := start(t, setup(t, fs, "oc_infra"))
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

// The on-call preview reads the configuration and says who is on call and
// whom each receiver would mention, without starting the service.
func TestOnCallPreviewCommand(t *testing.T) {
	out, code := run(t, "oncall", "--config.file="+filepath.Join("..", "routing.yaml"), "--at=2026-02-10T12:00:00+08:00")
	require.Equal(t, 0, code, out)
	require.Equal(t, "at 2026-02-10T12:00:00+08:00\n"+
		"rotation infra-primary: carol@example.com\n"+
		`receiver infra mentions: carol@example.com, lead@example.com; @all when severity="critical"; and whoever the label owner names`+"\n",
		out)

	out, code = run(t, "oncall", "--config.file="+filepath.Join("..", "routing.yaml"), "--at=tomorrow")
	require.Equal(t, 1, code)
	require.Contains(t, out, "want RFC 3339 time")
}
