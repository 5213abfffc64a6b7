package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
// resolved a moment ago. Prometheus sends each Alertmanager the same start,
// which makes the members' notifications alike.
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
// message each, and the resolved ones replying to their roots.
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
	for _, am := range []*amtest.Alertmanager{am1, am2} {
		require.NoError(t, am.PostAlerts(alerts(n, since, false)...))
	}
	waitForChains(t, fs, n, 1, 10*time.Second)
	for _, am := range []*amtest.Alertmanager{am1, am2} {
		require.NoError(t, am.PostAlerts(alerts(n, since, true)...))
	}
	waitForChains(t, fs, n, 2, 10*time.Second)

	// Nothing more comes: a few more group intervals pass quietly.
	time.Sleep(3 * time.Second)
	requireChains(t, fs, n, 2)

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
	_, body := get(t, url+"/metrics")
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err, line)
			return f
		}
	}
	return 0
}
