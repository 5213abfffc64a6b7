package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/amtest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/app"
)

// actionsRouting is a routing.yaml for the stand-in at %[1]s with the
// actions block %[2]s (indented lines), the app secret in the folder's
// secret and the HTTP callback's token and key in token and key.
const actionsRouting = `
feishu:
  base_url: %[1]s
  app_id: cli_feishutest
  app_secret_file: secret
state:
  path: state.db
actions:
%[2]s
receivers:
  - {name: infra, chat_id: oc_infra}
route:
  receiver: infra
`

const (
	overLongConnection = "  silence_durations: [1h]\n"
	overHTTP           = "  transport: http\n  verification_token_file: token\n  encrypt_key_file: key\n"
)

// actionsFolder writes actionsRouting with actions and its files into a
// fresh folder and returns the configuration's path.
func actionsFolder(t *testing.T, fs *feishutest.Server, actions string) string {
	t.Helper()
	dir := t.TempDir()
	for name, v := range map[string]string{"secret": feishutest.AppSecret, "token": "vtoken", "key": "ekey"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600))
	}
	cfg := filepath.Join(dir, "routing.yaml")
	rewrite(t, cfg, fmt.Sprintf(actionsRouting, fs.URL, actions))
	return cfg
}

// reloadNow reloads through POST /-/reload, which answers once the new
// configuration is applied, the long connection's fate included.
func (s *service) reloadNow(t *testing.T) {
	t.Helper()
	require.Equal(t, http.StatusOK, request(t, http.MethodPost, s.url+"/-/reload", ""), "%s", s.logs)
}

func (s *service) gauge(t *testing.T) float64 {
	t.Helper()
	v, ok := metric(s.url, "alertmanager_feishu_callback_connection_up")
	require.True(t, ok)
	return v
}

// connectedTo waits until the stand-in holds exactly the connections ids.
func connectedTo(t *testing.T, fs *feishutest.Server, ids ...int) {
	t.Helper()
	require.Eventually(t, func() bool {
		got := fs.ConnectionIDs()
		if len(got) != len(ids) {
			return false
		}
		for i := range ids {
			if got[i] != ids[i] {
				return false
			}
		}
		return true
	}, 15*time.Second, 10*time.Millisecond, "connections %v, want %v", fs.ConnectionIDs(), ids)
}

// upOnLongConnection starts the service with actions over the long
// connection, and returns its configuration's path once its connection is
// up, the stand-in's first and the gauge at 1.
func upOnLongConnection(t *testing.T, fs *feishutest.Server) (string, *service) {
	t.Helper()
	cfg := actionsFolder(t, fs, overLongConnection)
	s := start(t, app.Options{ConfigFile: cfg, EnableLifecycle: true})
	connectedTo(t, fs, 1)
	require.Eventually(t, func() bool { return s.gauge(t) == 1 }, 10*time.Second, 10*time.Millisecond)
	return cfg, s
}

// button is the value of the root card's button for action (and duration).
func button(t *testing.T, m feishutest.Message, action, duration string) map[string]string {
	t.Helper()
	v := m.Button(action, duration)
	require.NotNil(t, v, "no %s %s button on the card: %s", action, duration, m.Content)
	return v
}

// firing posts a firing group and returns its root card.
func firing(t *testing.T, fs *feishutest.Server, s *service) feishutest.Message {
	t.Helper()
	code, body := post(t, s.url+"/webhook", amtest.Group(1, map[string]string{"team": "infra"}, false))
	require.Equal(t, http.StatusOK, code, body)
	msgs := fs.Messages()
	require.Len(t, msgs, 1)
	return msgs[0]
}

// A reload from the long connection to transport http closes the
// connection (with a close frame, before the reload answers) and serves
// POST /feishu/callback from then on.
func TestReloadFromTheLongConnectionToHTTP(t *testing.T) {
	fs := feishutest.New(t)
	cfg, s := upOnLongConnection(t, fs)
	code, body := post(t, s.url+"/feishu/callback", []byte(`{}`))
	require.Equal(t, http.StatusNotFound, code, body)

	rewrite(t, cfg, fmt.Sprintf(actionsRouting, fs.URL, overHTTP))
	s.reloadNow(t)
	require.Zero(t, s.gauge(t), "down once the reload answered")
	connectedTo(t, fs)
	require.Eventually(t, func() bool { return fs.CleanCloses() == 1 }, 10*time.Second, 10*time.Millisecond, "closed with a close frame")

	fs.SetCallback(s.url+"/feishu/callback", "vtoken", "ekey")
	require.NoError(t, fs.ChallengeCallback(context.Background()))
	root := firing(t, fs, s)
	a, err := fs.Click(context.Background(), root.ID, "ou_alice", button(t, root, "ack", ""))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, a.Status)
	require.Equal(t, "success", a.Toast.Type, a.Toast.Content)
	require.Zero(t, a.Conn, "over HTTP")
	require.Equal(t, 1, fs.Bootstraps(), "and no new connection")
}

// A reload whose callback secrets cannot be read is refused whole: the
// long connection stays up, the routing stays as it was, and the metrics
// say the reload failed. Nothing takes the configuration before
// everything in it that can fail was read.
func TestRefusedReloadLeavesTheCallbacksAndRouting(t *testing.T) {
	fs := feishutest.New(t)
	cfg, s := upOnLongConnection(t, fs)

	next := strings.Replace(fmt.Sprintf(actionsRouting, fs.URL, overHTTP), "chat_id: oc_infra", "chat_id: oc_elsewhere", 1)
	rewrite(t, cfg, next)
	require.NoError(t, os.Remove(filepath.Join(filepath.Dir(cfg), "token")))
	require.Equal(t, http.StatusInternalServerError, request(t, http.MethodPost, s.url+"/-/reload", ""))
	ok, found := metric(s.url, "alertmanager_feishu_config_last_reload_successful")
	require.True(t, found)
	require.Zero(t, ok)

	require.Equal(t, []int{1}, fs.ConnectionIDs(), "the same connection")
	require.Zero(t, fs.CleanCloses())
	require.InDelta(t, 1, s.gauge(t), 0)
	root := firing(t, fs, s)
	require.Equal(t, "oc_infra", root.TargetID, "the routing as it was")
	a, err := fs.Click(context.Background(), root.ID, "ou_alice", button(t, root, "ack", ""))
	require.NoError(t, err)
	require.Equal(t, 1, a.Conn, "clicks still come over the connection")
	require.Equal(t, "success", a.Toast.Type, a.Toast.Content)
	code, body := post(t, s.url+"/feishu/callback", []byte(`{}`))
	require.Equal(t, http.StatusNotFound, code, body)
}

// A reload that changes nothing the connection depends on keeps it; one
// that changes the app secret replaces it, and clicks reach the new one.
func TestReloadKeepsOrReplacesTheLongConnection(t *testing.T) {
	fs := feishutest.New(t)
	cfg := actionsFolder(t, fs, overLongConnection)
	s := start(t, app.Options{ConfigFile: cfg, EnableLifecycle: true})
	connectedTo(t, fs, 1)

	rewrite(t, cfg, fmt.Sprintf(actionsRouting, fs.URL, "  silence_durations: [1h, 4h]\n"))
	s.reloadNow(t)
	require.Equal(t, []int{1}, fs.ConnectionIDs(), "the same connection")
	require.Equal(t, 1, fs.Bootstraps())
	require.Zero(t, fs.CleanCloses())

	fs.SetCredentials(feishutest.AppID, "rotated-secret")
	require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(cfg), "secret"), []byte("rotated-secret\n"), 0o600))
	s.reloadNow(t)
	connectedTo(t, fs, 2)
	require.Equal(t, 1, fs.CleanCloses(), "the old one closed with a close frame")
	require.Equal(t, 2, fs.Bootstraps())
	root := firing(t, fs, s)
	a, err := fs.Click(context.Background(), root.ID, "ou_alice", button(t, root, "ack", ""))
	require.NoError(t, err)
	require.Equal(t, 2, a.Conn)
	require.Equal(t, "success", a.Toast.Type, a.Toast.Content)
}

// A click in flight when the service is told to stop is done whole and
// answered within the grace: the silence is made, the clicker told, and
// Run returns nil, the connection closed with a close frame. A click that
// comes meanwhile is not taken.
func TestShutdownFinishesAClickInFlight(t *testing.T) {
	dir, err := amtest.Binaries()
	require.NoError(t, err)
	am := amtest.Run(t, amtest.Options{Binary: dir + "/alertmanager", Config: "route: {receiver: x}\nreceivers: [{name: x}]\n"})
	target, err := url.Parse(am.URL)
	require.NoError(t, err)
	// In front of Alertmanager, a proxy that holds the silence until the
	// test lets it through, or the request is given up.
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	proxy := httputil.NewSingleHostReverseProxy(target)
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/api/v2/silences" {
			arrived <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(gate.Close)

	fs := feishutest.New(t)
	cfg := actionsFolder(t, fs, overLongConnection+"  alertmanager: {urls: ["+gate.URL+"]}\n")
	s := start(t, app.Options{ConfigFile: cfg, Grace: 10 * time.Second})
	connectedTo(t, fs, 1)
	root := firing(t, fs, s)

	type result struct {
		a   feishutest.ClickAnswer
		err error
	}
	silence, ack := button(t, root, "silence", "1h"), button(t, root, "ack", "")
	silenced := make(chan result, 1)
	go func() {
		a, err := fs.Click(context.Background(), root.ID, "ou_alice", silence)
		silenced <- result{a, err}
	}()
	<-arrived
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(context.Background()) }()
	s.logged(t, "stopping")
	late := make(chan error, 1)
	go func() {
		_, err := fs.Click(context.Background(), root.ID, "ou_bob", ack)
		late <- err
	}()
	s.logged(t, "callback arrived while stopping, left unanswered")
	close(release)

	got := <-silenced
	require.NoError(t, got.err)
	require.Equal(t, "success", got.a.Toast.Type, got.a.Toast.Content)
	require.NoError(t, <-stopped, "within the grace")
	require.Error(t, <-late)
	silences, err := am.Silences()
	require.NoError(t, err)
	require.Len(t, silences, 1)
	require.Equal(t, "active", silences[0].Status.State)
	require.Equal(t, 1, fs.CleanCloses())
	require.Zero(t, fs.Connections())
}

// The web config's basic auth covers POST /feishu/callback as it covers
// every path (the exporter-toolkit guards the whole listener), and Feishu
// sends none: its callbacks are refused before the service sees them.
func TestWebConfigBasicAuthCoversTheHTTPCallback(t *testing.T) {
	fs := feishutest.New(t)
	base := startBehindBasicAuth(t, app.Options{ConfigFile: actionsFolder(t, fs, overHTTP)})

	call := func(auth bool) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, base+"/feishu/callback", strings.NewReader(`{"encrypt":""}`))
		if auth {
			req.SetBasicAuth("admin", "secret")
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	resp := call(false)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, "Basic", resp.Header.Get("WWW-Authenticate"), "refused by the web config's basic auth")
	resp = call(true)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "past basic auth, the service reads the body")
	require.Empty(t, resp.Header.Get("WWW-Authenticate"))
}
