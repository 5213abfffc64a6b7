package app_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/app"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/servicetest"
)

// folderAt is folder with feishu.base_url set to url.
func folderAt(t *testing.T, url, extra string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte(feishutest.AppSecret+"\n"), 0o600))
	cfg := filepath.Join(dir, "routing.yaml")
	rewrite(t, cfg, fmt.Sprintf(routing, url, extra))
	return cfg
}

// logged waits until the service has logged a line with every one of
// parts, and returns it.
func (s *service) logged(t *testing.T, parts ...string) string {
	t.Helper()
	var line string
	require.Eventually(t, func() bool {
		for l := range strings.SplitSeq(s.logs.String(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(l, p)
			}
			if all {
				line = l
				return true
			}
		}
		return false
	}, 20*time.Second, 10*time.Millisecond, "no log line with %q", parts)
	return line
}

// At start the service tries to obtain a tenant token and says why it
// cannot: the network, TLS, or Feishu refusing the credentials with its
// code and message. It is ready all the same, and tries again until it can.
func TestStartSaysWhyThereIsNoToken(t *testing.T) {
	fs := feishutest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())

	for _, tc := range []struct {
		name, url string
		wrong     bool // the stand-in expects another secret
		says      []string
	}{
		{"unreachable", closed, false, []string{"reason=connect", "connection refused", "feishu.http_config.proxy_url"}},
		{"tls", strings.Replace(fs.URL, "http:", "https:", 1), false, []string{"reason=tls", "HTTP response to HTTPS client", "tls_config"}},
		{"credentials", fs.URL, true, []string{"reason=credentials", "code 10014: app secret invalid", "check feishu.app_id and the app secret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wrong {
				fs.SetCredentials(feishutest.AppID, "another-secret")
				t.Cleanup(func() { fs.SetCredentials(feishutest.AppID, feishutest.AppSecret) })
			}
			s := start(t, app.Options{ConfigFile: folderAt(t, tc.url, "")})
			line := s.logged(t, `msg="feishu tenant token not obtained, retrying"`)
			require.Contains(t, line, "level=ERROR")
			for _, p := range tc.says {
				require.Contains(t, line, p)
			}
			require.NotContains(t, line, feishutest.AppSecret)
			require.NotContains(t, s.logs.String(), "credentials verified")
			require.Eventually(t, func() bool {
				v, ok := metric(s.url, "alertmanager_feishu_token_ok")
				return ok && v == 0
			}, 10*time.Second, 10*time.Millisecond)
			v, ok := metric(s.url, `alertmanager_feishu_token_failures_total{reason="`+strings.TrimPrefix(tc.says[0], "reason=")+`"}`)
			require.True(t, ok)
			require.GreaterOrEqual(t, v, 1.0)

			resp, err := http.Get(s.url + "/-/ready")
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode, "ready does not depend on Feishu")

			if tc.wrong {
				// Fixed on Feishu's side: the retry in the background
				// finds out by itself.
				fs.SetCredentials(feishutest.AppID, feishutest.AppSecret)
				s.logged(t, `msg="feishu app credentials verified"`)
				require.Eventually(t, func() bool {
					v, ok := metric(s.url, "alertmanager_feishu_token_ok")
					return ok && v == 1
				}, 10*time.Second, 10*time.Millisecond)
			}
		})
	}
}

// A reload checks the credentials of the configuration it loads.
func TestReloadChecksTheCredentials(t *testing.T) {
	fs := feishutest.New(t)
	cfg := folder(t, fs, "")
	s := start(t, app.Options{ConfigFile: cfg, EnableLifecycle: true})
	s.logged(t, `msg="feishu app credentials verified"`)

	fs.SetCredentials(feishutest.AppID, "rotated-secret")
	code, body := post(t, s.url+"/-/reload", nil)
	require.Equal(t, http.StatusOK, code, body)
	s.logged(t, `msg="feishu tenant token not obtained, retrying"`, "reason=credentials")
	v, ok := metric(s.url, "alertmanager_feishu_token_ok")
	require.True(t, ok)
	require.Equal(t, 0.0, v)

	require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(cfg), "secret"), []byte("rotated-secret\n"), 0o600))
	code, body = post(t, s.url+"/-/reload", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Eventually(t, func() bool {
		return strings.Count(s.logs.String(), `msg="feishu app credentials verified"`) == 2
	}, 20*time.Second, 10*time.Millisecond)
	v, _ = metric(s.url, "alertmanager_feishu_token_ok")
	require.Equal(t, 1.0, v)
}

// Custom bots alone need no token: the gauge has no value to alert on.
func TestNoAppNoTokenGauge(t *testing.T) {
	fs := feishutest.New(t)
	fs.AddBot("hook", "")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "routing.yaml")
	rewrite(t, cfg, fmt.Sprintf(`
feishu: {base_url: %s}
state: {path: state.db}
receivers:
  - {name: bot, webhook_url: %s}
route: {receiver: bot}
`, fs.URL, fs.BotURL("hook")))
	s := start(t, app.Options{ConfigFile: cfg})
	_, ok := metric(s.url, "alertmanager_feishu_config_last_reload_successful")
	require.True(t, ok, "metrics are served")
	_, ok = metric(s.url, "alertmanager_feishu_token_ok")
	require.False(t, ok)
	require.NotContains(t, s.logs.String(), "tenant token")
}

// request makes a request with an Authorization header (none if auth is
// "") and returns the answer's status.
func request(t *testing.T, method, url, auth string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// With intake.bearer_token set, reload and profiles need it as well as
// their flags; health, readiness and metrics stay open.
func TestAdminEndpointsNeedTheBearerToken(t *testing.T) {
	fs := feishutest.New(t)
	const token = "Bearer s3cret"
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint(on), func(t *testing.T) {
			s := start(t, app.Options{ConfigFile: folder(t, fs, "intake: {bearer_token: s3cret}"), EnableLifecycle: on, EnablePprof: on})
			for _, auth := range []string{"", "Bearer wrong"} {
				require.Equal(t, http.StatusUnauthorized, request(t, http.MethodPost, s.url+"/-/reload", auth), "reload without the token")
				if on {
					require.Equal(t, http.StatusUnauthorized, request(t, http.MethodGet, s.url+"/debug/pprof/", auth), "profiles without the token")
					require.Equal(t, http.StatusUnauthorized, request(t, http.MethodGet, s.url+"/debug/pprof/profile?seconds=1", auth))
				}
			}
			for _, open := range []string{"/-/healthy", "/-/ready", "/metrics"} {
				require.Equal(t, http.StatusOK, request(t, http.MethodGet, s.url+open, ""), open)
			}
			if !on {
				require.Equal(t, http.StatusForbidden, request(t, http.MethodPost, s.url+"/-/reload", token), "the flag is still needed")
				require.Equal(t, http.StatusNotFound, request(t, http.MethodGet, s.url+"/debug/pprof/", token))
				return
			}
			require.Equal(t, http.StatusOK, request(t, http.MethodPost, s.url+"/-/reload", token))
			require.Equal(t, http.StatusOK, request(t, http.MethodGet, s.url+"/debug/pprof/", token))
		})
	}
}

// basicAuthWeb writes a web config asking for user admin with password
// "secret" and returns the flags that name it.
func basicAuthWeb(t *testing.T) *web.FlagConfig {
	t.Helper()
	// bcrypt of "secret", cost 4: a test needs no strength.
	const hash = "$2a$04$/utSjPaWL.GQsTj81Uc5EuyRTVQcAij07pD6Esi4YyjoitqAbZ/M6"
	file := filepath.Join(t.TempDir(), "web.yml")
	require.NoError(t, os.WriteFile(file, []byte("basic_auth_users:\n  admin: '"+hash+"'\n"), 0o600))
	noSocket := false
	return &web.FlagConfig{WebConfigFile: &file, WebSystemdSocket: &noSocket}
}

// startBehindBasicAuth runs the service in process under basicAuthWeb's
// web config, and returns its URL once it answers /-/healthy to the
// admin's credentials.
func startBehindBasicAuth(t *testing.T, o app.Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + ln.Addr().String()
	o.Web, o.Listeners = basicAuthWeb(t), []net.Listener{ln}
	s, err := servicetest.RunInProcessNotReady(o)
	require.NoError(t, err)
	t.Cleanup(s.Kill)
	require.Eventually(t, func() bool {
		req, _ := http.NewRequest(http.MethodGet, url+"/-/healthy", nil)
		req.SetBasicAuth("admin", "secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 10*time.Millisecond, "%s", s.Logs())
	return url
}

// The web config's basic auth covers reload and profiles as it covers
// every path.
func TestAdminEndpointsNeedTheWebConfigsAuth(t *testing.T) {
	fs := feishutest.New(t)
	url := startBehindBasicAuth(t, app.Options{ConfigFile: folder(t, fs, ""), EnableLifecycle: true, EnablePprof: true})
	basic := func(user, password string) string {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.SetBasicAuth(user, password)
		return req.Header.Get("Authorization")
	}
	for _, auth := range []string{"", basic("admin", "wrong")} {
		require.Equal(t, http.StatusUnauthorized, request(t, http.MethodPost, url+"/-/reload", auth))
		require.Equal(t, http.StatusUnauthorized, request(t, http.MethodGet, url+"/debug/pprof/", auth))
	}
	require.Equal(t, http.StatusOK, request(t, http.MethodPost, url+"/-/reload", basic("admin", "secret")))
	require.Equal(t, http.StatusOK, request(t, http.MethodGet, url+"/debug/pprof/", basic("admin", "secret")))
}

// The intake's answers are counted per path pattern and code, the HTTP
// card callback's too.
func TestIntakeRequestsMetric(t *testing.T) {
	fs := feishutest.New(t)
	s := start(t, app.Options{ConfigFile: folder(t, fs, "")})
	code, body := post(t, s.url+"/webhook/nobody", []byte(`{}`))
	require.Equal(t, http.StatusBadRequest, code, body)
	code, body = post(t, s.url+"/feishu/callback", []byte(`{}`))
	require.Equal(t, http.StatusNotFound, code, body)
	v, ok := metric(s.url, `alertmanager_feishu_intake_requests_total{code="400",path="/webhook/{receiver}"}`)
	require.True(t, ok)
	require.Equal(t, 1.0, v)
	v, ok = metric(s.url, `alertmanager_feishu_intake_requests_total{code="404",path="/feishu/callback"}`)
	require.True(t, ok)
	require.Equal(t, 1.0, v)
	v, ok = metric(s.url, "alertmanager_feishu_deliveries_in_flight")
	require.True(t, ok)
	require.Equal(t, 0.0, v)
}
