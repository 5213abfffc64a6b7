package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/route"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/amtest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/redistest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/servicetest"
)

// alertmanagerBinary is the pinned release's alertmanager, built on first
// use into the cache outside the repository.
func alertmanagerBinary(t *testing.T) string {
	t.Helper()
	dir, err := amtest.Binaries()
	require.NoError(t, err)
	return dir + "/alertmanager"
}

// amConfig is an alertmanager.yml with short timers whose one receiver
// posts to every url given, each a webhook_config of its own.
func amConfig(groupBy string, urls ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `route:
  receiver: feishu
  group_by: [%s]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: feishu
    webhook_configs:
`, groupBy)
	for _, u := range urls {
		fmt.Fprintf(&b, "      - url: %s\n", u)
	}
	return b.String()
}

// alerts makes one alert per group that started at since, firing, or
// resolved a moment ago. Prometheus sends every Alertmanager the same alert,
// endsAt included, so an HA pair must be given one slice: alerts made per
// member would resolve at different instants and be different
// notifications.
func alerts(n int, since time.Time, resolved bool) []amtest.Alert {
	out := make([]amtest.Alert, n)
	for i := range out {
		out[i] = amtest.Alert{
			Labels:      map[string]string{"alertname": "HAPair", "group": fmt.Sprint(i), "severity": "warning"},
			Annotations: map[string]string{"summary": fmt.Sprintf("group %d", i)},
			StartsAt:    since,
		}
		if resolved {
			out[i].EndsAt = time.Now().Add(-time.Second)
		}
	}
	return out
}

// waitForChains waits until each of n groups has each messages in the
// stand-in, then checks that none has more and that they form chains.
func waitForChains(t *testing.T, fs *feishutest.Server, n, each int, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		byGroup := map[string]int{}
		for _, m := range fs.Messages() {
			if g := groupNumber.FindStringSubmatch(m.Text); g != nil {
				byGroup[g[1]]++
			}
		}
		if len(byGroup) < n {
			return false
		}
		for _, c := range byGroup {
			if c < each {
				return false
			}
		}
		return true
	}, within, 50*time.Millisecond, "every group reaches %d messages", each)
	requireChains(t, fs, n, each)
}

// A real Alertmanager HA pair, both members posting every notification to
// both replicas on one Redis: four copies of each notification, one Feishu
// message each, and the resolved ones replying to their roots; also when
// the members resolve alerts at different instants.
func TestAlertmanagerHAPairOnTwoReplicas(t *testing.T) {
	bin := alertmanagerBinary(t)
	srv := redistest.Start(t)
	fs := feishutest.New(t)
	cfg := setupRedis(t, fs, "im_v1", srv.Addr)
	a, b := start(t, cfg), start(t, cfg)

	amcfg := amConfig("group", a.URL+"/webhook", b.URL+"/webhook")
	// A short peer timeout makes the second member send too instead of
	// waiting to learn that the first did: the copies an HA pair sends
	// when gossip lags, every time.
	am1 := amtest.Run(t, amtest.Options{Binary: bin, Config: amcfg, Cluster: true, PeerTimeout: 10 * time.Millisecond})
	am2 := amtest.Run(t, amtest.Options{Binary: bin, Config: amcfg, Cluster: true, Peers: []string{am1.ClusterAddr}, PeerTimeout: 10 * time.Millisecond})

	const n = 5
	since := time.Now().Add(-time.Minute)
	firing := alerts(n, since, false)
	for _, am := range []*amtest.Alertmanager{am1, am2} {
		require.NoError(t, am.PostAlerts(firing...))
	}
	// A clustered Alertmanager sends nothing until gossip has settled:
	// three quiet polls two seconds apart after the second member joined,
	// about ten seconds.
	waitForChains(t, fs, n, 1, 30*time.Second)
	resolved := alerts(n, since, true)
	for _, am := range []*amtest.Alertmanager{am1, am2} {
		require.NoError(t, am.PostAlerts(resolved...))
	}
	waitForChains(t, fs, n, 2, 10*time.Second)

	// Alerts that time out rather than being resolved: Prometheus's last
	// update, which would have pushed endsAt further, reached one member
	// and not the other. Both endsAt fall between the same two flushes
	// (one a second after the alerts came, one two seconds later), so each
	// member sends a resolved notification of its own before it can learn
	// of the other's, and the two are one message.
	start := time.Now()
	timingOut := func(endsAt time.Time) []amtest.Alert {
		out := alerts(2*n, start, false)[n:]
		for i := range out {
			out[i].EndsAt = endsAt
		}
		return out
	}
	require.NoError(t, am1.PostAlerts(timingOut(start.Add(2200*time.Millisecond))...))
	require.NoError(t, am2.PostAlerts(timingOut(start.Add(2600*time.Millisecond))...))
	waitForChains(t, fs, 2*n, 2, 15*time.Second)

	// Nothing more comes: a few more group intervals pass quietly.
	requireQuiet(t, fs, 4*n, 3*time.Second)
	requireChains(t, fs, 2*n, 2)

	posts := 0
	for _, s := range []*servicetest.Service{a, b} {
		posts += int(metric(t, s.URL, `alertmanager_feishu_notifications_total{receiver="infra",status="sent"}`) +
			metric(t, s.URL, `alertmanager_feishu_notifications_total{receiver="infra",status="deduped"}`))
	}
	t.Logf("%d notifications handled by the replicas for %d messages", posts, len(fs.Messages()))
	require.Greater(t, posts, len(fs.Messages()), "the replicas did receive copies")
}

// metric reads one series' value from a service's /metrics; 0 if absent.
func metric(t *testing.T, url, series string) float64 {
	t.Helper()
	v, err := metricValue(url, series)
	require.NoError(t, err)
	return v
}

// metricValue is metric for a condition that polls, which must not fail
// the test from its own goroutine: an error is returned instead.
func metricValue(url, series string) (float64, error) {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/metrics answered %d", resp.StatusCode)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, nil
}

// ready is whether the service at url answers /-/ready with 200, for a
// polling condition.
func ready(url string) bool {
	resp, err := http.Get(url + "/-/ready")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// requireQuiet watches the stand-in for d and fails as soon as it holds
// other than want messages. What it checks is an absence, that nothing
// more comes: no event marks the moment after which nothing can, so the
// watch lasts a few of Alertmanager's group intervals (1 s here).
func requireQuiet(t *testing.T, fs *feishutest.Server, want int, d time.Duration) {
	t.Helper()
	require.Never(t, func() bool { return len(fs.Messages()) != want }, d, 20*time.Millisecond,
		"no message comes after the %d expected", want)
}

// waitMessages waits until the stand-in holds n messages and returns them.
func waitMessages(t *testing.T, fs *feishutest.Server, n int, within time.Duration) []feishutest.Message {
	t.Helper()
	require.Eventually(t, func() bool { return len(fs.Messages()) >= n }, within, 20*time.Millisecond,
		"%d messages expected", n)
	msgs := fs.Messages()
	require.Len(t, msgs, n)
	return msgs
}

func hostAlert(host string, since time.Time, resolved bool) amtest.Alert {
	a := amtest.Alert{
		Labels:      map[string]string{"alertname": "HighCPU", "instance": host + ":9100", "job": "node", "severity": "critical", "team": "infra"},
		Annotations: map[string]string{"summary": "CPU usage above 90%"},
		StartsAt:    since,
	}
	if resolved {
		a.EndsAt = time.Now().Add(-time.Second)
	}
	return a
}

// A group's whole life through a real Alertmanager, the pinned release and
// Debian's older one (whose payloads lack routeLabels and other newer
// fields): first notification, new alerts, some resolved, all resolved,
// one chain.
func TestAlertmanagerGroupLifecycle(t *testing.T) {
	for name, bin := range map[string]func(*testing.T) string{
		amtest.Version: alertmanagerBinary,
		"debian":       func(*testing.T) string { return amtest.DebianAlertmanager },
	} {
		t.Run(name, func(t *testing.T) {
			fs := feishutest.New(t)
			s := start(t, setup(t, fs, "oc_infra"))
			am := amtest.Run(t, amtest.Options{Binary: bin(t), Config: amConfig("alertname", s.URL+"/webhook")})
			// Alerts that start now: Alertmanager v0.34 flushes a group
			// of older alerts at once, before it may have all of them.
			since := time.Now()

			require.NoError(t, am.PostAlerts(hostAlert("host-a", since, false), hostAlert("host-b", since, false)))
			msgs := waitMessages(t, fs, 1, 10*time.Second)
			require.Contains(t, msgs[0].Text, "[FIRING:2] HighCPU")

			require.NoError(t, am.PostAlerts(hostAlert("host-c", since, false)))
			msgs = waitMessages(t, fs, 2, 10*time.Second)
			require.Contains(t, msgs[1].Text, "[FIRING:3] HighCPU")

			require.NoError(t, am.PostAlerts(hostAlert("host-a", since, true)))
			msgs = waitMessages(t, fs, 3, 10*time.Second)
			require.Contains(t, msgs[2].Text, "1 resolved, 2 still firing")

			require.NoError(t, am.PostAlerts(hostAlert("host-b", since, true), hostAlert("host-c", since, true)))
			msgs = waitMessages(t, fs, 4, 10*time.Second)
			require.Contains(t, msgs[3].Text, "[RESOLVED] HighCPU")
			for _, m := range msgs {
				require.Equal(t, "oc_infra", m.TargetID)
			}
			for _, m := range msgs[1:] {
				require.Equal(t, msgs[0].ID, m.RootID, "one chain")
			}
		})
	}
}

// max_alerts: Alertmanager sends the first alerts and the count of the
// rest, and the message says how many are not shown.
func TestAlertmanagerMaxAlerts(t *testing.T) {
	fs := feishutest.New(t)
	s := start(t, setup(t, fs, "oc_infra"))
	amcfg := amConfig("alertname", s.URL+"/webhook") + "        max_alerts: 1\n"
	am := amtest.Run(t, amtest.Options{Binary: alertmanagerBinary(t), Config: amcfg})
	// As in TestAlertmanagerGroupLifecycle: alerts that start now.
	since := time.Now()
	require.NoError(t, am.PostAlerts(hostAlert("host-a", since, false), hostAlert("host-b", since, false), hostAlert("host-c", since, false)))
	msgs := waitMessages(t, fs, 1, 10*time.Second)
	require.Contains(t, msgs[0].Text, "[FIRING:1] HighCPU")
	require.Contains(t, msgs[0].Text, "and 2 more alerts not shown")
}

// Alertmanager authenticating: a bearer token from http_config's
// authorization (checked by the service), and basic auth (checked by
// exporter-toolkit through --web.config.file). Without them: 401, nothing
// sent.
func TestAlertmanagerAuthenticates(t *testing.T) {
	t.Run("bearer", func(t *testing.T) {
		fs := feishutest.New(t)
		cfg := setup(t, fs, "oc_infra")
		dir := filepath.Dir(cfg)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte("am-token-123\n"), 0o600))
		appendConfig(t, cfg, "intake: {bearer_token_file: token}\n")
		s := start(t, cfg, "--web.enable-lifecycle")
		requireOnlyWith(t, fs, s.URL, "authorization: {credentials: am-token-123}")

		// Neither the token nor the app secret, both read from files,
		// shows in the log, the metrics or a reload's answer.
		_, metrics := get(t, s.URL+"/metrics")
		// A reload asks for the intake's token too.
		refused, _ := post(t, s.URL+"/-/reload", nil)
		require.Equal(t, http.StatusUnauthorized, refused)
		req, err := http.NewRequest(http.MethodPost, s.URL+"/-/reload", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer am-token-123")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		reloaded, reloadBody := resp.StatusCode, string(b)
		require.Equal(t, http.StatusOK, reloaded, reloadBody)
		for _, secret := range []string{"am-token-123", feishutest.AppSecret} {
			require.NotContains(t, s.Logs(), secret)
			require.NotContains(t, metrics, secret)
			require.NotContains(t, reloadBody, secret)
		}
	})
	t.Run("basic", func(t *testing.T) {
		fs := feishutest.New(t)
		cfg := setup(t, fs, "oc_infra")
		hash, err := bcrypt.GenerateFromPassword([]byte("am-password"), bcrypt.MinCost)
		require.NoError(t, err)
		webcfg := filepath.Join(filepath.Dir(cfg), "web.yml")
		require.NoError(t, os.WriteFile(webcfg, fmt.Appendf(nil, "basic_auth_users:\n  alertmanager: %s\n", hash), 0o600))
		s, err := servicetest.StartNotReady(bin, "--config.file="+cfg, "--web.config.file="+webcfg)
		require.NoError(t, err)
		stopAtCleanup(t, s)
		requireOnlyWith(t, fs, s.URL, "basic_auth: {username: alertmanager, password: am-password}")
	})
}

// requireOnlyWith checks that a webhook to the service at url without
// credentials is refused, and that an Alertmanager whose http_config holds
// credentials (one YAML line) gets its notification delivered.
func requireOnlyWith(t *testing.T, fs *feishutest.Server, url, credentials string) {
	t.Helper()
	code, body := post(t, url+"/webhook", payload(t, "firing-DiskFull-default.json"))
	require.Equal(t, http.StatusUnauthorized, code, body)

	amcfg := amConfig("alertname", url+"/webhook") + "        http_config:\n          " + credentials + "\n"
	am := amtest.Run(t, amtest.Options{Binary: alertmanagerBinary(t), Config: amcfg})
	require.NoError(t, am.PostAlerts(hostAlert("host-a", time.Now(), false)))
	waitMessages(t, fs, 1, 10*time.Second)
}

func appendConfig(t *testing.T, path, more string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, append(b, more...), 0o600))
}

// Feishu down (502 on every send) for a while: the service's retries and
// then Alertmanager's end in exactly one message once Feishu is back.
func TestAlertmanagerThroughFeishuOutage(t *testing.T) {
	fs := feishutest.New(t)
	fs.FailTarget("oc_infra", feishutest.Fault{Status: http.StatusBadGateway})
	// Short bounds, so that the service gives up inside the outage and
	// Alertmanager's own retries are exercised too.
	s := start(t, setup(t, fs, "oc_infra"), "--delivery.timeout=500ms", "--delivery.max-delay=1s")
	am := amtest.Run(t, amtest.Options{Binary: alertmanagerBinary(t), Config: amConfig("alertname", s.URL+"/webhook")})
	require.NoError(t, am.PostAlerts(hostAlert("host-a", time.Now(), false)))

	require.Eventually(t, func() bool {
		v, err := metricValue(s.URL, `alertmanager_feishu_notifications_total{receiver="infra",status="failed"}`)
		return err == nil && v >= 2
	},
		15*time.Second, 50*time.Millisecond, "Alertmanager tried more than once during the outage")
	require.Empty(t, fs.Messages())
	fs.ClearTarget("oc_infra")

	waitMessages(t, fs, 1, 20*time.Second)
	// Alertmanager records the success and stops: nothing more comes in
	// the few group intervals that follow.
	requireQuiet(t, fs, 1, 3*time.Second)
	t.Logf("%d send attempts for 1 message", fs.Sends())
}

// The route tree means what Alertmanager means: for a table of label sets,
// the receivers it reaches agree with amtool's answer on an equivalent
// alertmanager.yml.
func TestRoutesAgreeWithAmtool(t *testing.T) {
	dir, err := amtest.Binaries()
	require.NoError(t, err)
	cfg, err := config.Load(filepath.Join("..", "testdata", "routes", "routing.yaml"))
	require.NoError(t, err)
	tree := route.New(cfg.Route)
	amYML := filepath.Join("..", "testdata", "routes", "alertmanager.yml")

	for _, labels := range []map[string]string{
		{"alertname": "X"},
		{"alertname": "X", "team": "infra"},
		{"alertname": "X", "team": "infra", "service": "db"},
		{"alertname": "X", "team": "infra", "service": "db", "env": "dev"},
		{"alertname": "X", "team": "infra", "severity": "critical"},
		{"alertname": "X", "team": "dba", "severity": "page"},
		{"alertname": "X", "severity": "pager"},
		{"alertname": "DiskFull"},
		{"alertname": "DiskFull", "team": "infra"},
		{"alertname": "DiskFull", "team": "dba"},
		{"alertname": "Disk", "team": "net"},
		{"service.name": "checkout"},
		{"service.name": "checkout", "severity": "critical", "team": "infra"},
		{"alertname": "Latency", "service.name": "checkout-v2"},
		{"alertname": "Ünïcode", "team": "ïnfra"},
	} {
		args := []string{"config", "routes", "test", "--config.file=" + amYML}
		ls := model.LabelSet{}
		for k, v := range labels {
			args = append(args, fmt.Sprintf("%s=%q", k, v))
			ls[model.LabelName(k)] = model.LabelValue(v)
		}
		out, err := exec.Command(filepath.Join(dir, "amtool"), args...).Output()
		require.NoError(t, err, "amtool %v", args)
		want := strings.TrimSpace(string(out))
		require.Equal(t, want, strings.Join(tree.Receivers(ls), ","), "labels %v", labels)
	}
}
