package actions

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	commoncfg "github.com/prometheus/common/config"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/alertmanager-feishu/alertmanager-feishu/internal/amtest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/freeport"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/logtest"
)

// amConfig routes team="infra" and team="db" apart, grouped by groupBy, to
// a receiver that sends nothing: the tests look at the API only.
func amConfig(groupBy string) string {
	return fmt.Sprintf(`route:
  receiver: none
  group_by: [%[1]s]
  routes:
    - matchers: ['team="infra"']
      group_by: [%[1]s]
    - matchers: ['team="db"']
      group_by: [%[1]s]
receivers:
  - name: none
`, groupBy)
}

// alertmanagers are the releases a silence must work on: the pinned one
// and Debian's 0.25, the older peer of the e2e tests.
func alertmanagers(t *testing.T) map[string]string {
	dir, err := amtest.Binaries()
	require.NoError(t, err)
	return map[string]string{amtest.Version: dir + "/alertmanager", "debian-0.25": amtest.DebianAlertmanager}
}

func runAM(t *testing.T, bin, groupBy string) *amtest.Alertmanager {
	t.Helper()
	return amtest.Run(t, amtest.Options{Binary: bin, Config: amConfig(groupBy)})
}

func newSilencer(t *testing.T, hc commoncfg.HTTPClientConfig, urls ...string) (*Silencer, *logtest.Buffer) {
	t.Helper()
	logger, logs := newLogger()
	s, err := NewSilencer(urls, hc, logger)
	require.NoError(t, err)
	return s, logs
}

func cpuAlert(host, team string) amtest.Alert {
	return amtest.Alert{
		Labels:   map[string]string{"alertname": "HighCPU", "team": team, "instance": host + ":9100", "job": "node"},
		StartsAt: time.Now().Add(-time.Minute),
	}
}

// silencedBy maps each alert's instance to the silences that mute it.
func silencedBy(t *testing.T, am *amtest.Alertmanager) map[string][]string {
	t.Helper()
	alerts, err := am.Alerts()
	require.NoError(t, err)
	out := map[string][]string{}
	for _, a := range alerts {
		out[a.Labels["instance"]] = a.Status.SilencedBy
	}
	return out
}

// suppressed tells which instances' HighCPU alerts Alertmanager mutes.
func suppressed(t *testing.T, am *amtest.Alertmanager) map[string]bool {
	t.Helper()
	alerts, err := am.Alerts()
	require.NoError(t, err)
	out := map[string]bool{}
	for _, a := range alerts {
		if a.Labels["alertname"] == "HighCPU" {
			out[a.Labels["instance"]] = a.Status.State == "suppressed"
		}
	}
	return out
}

func testSilence(ms []Matcher) Silence {
	return Silence{
		Matchers:  ms,
		EndsAt:    time.Now().Add(4 * time.Hour),
		CreatedBy: "Alice (ou_alice)",
		Comment:   "alertmanager-feishu: incident 7f3a, card om_123 in chat oc_infra",
	}
}

func budget(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// A group's silence, made from its group labels, mutes that group's alerts
// and no other's, until it is expired; expiring it again, or expiring a
// silence Alertmanager never had, is done too.
func TestSilencerGroupLabels(t *testing.T) {
	for name, bin := range alertmanagers(t) {
		t.Run(name, func(t *testing.T) {
			am := runAM(t, bin, "alertname, team")
			s, _ := newSilencer(t, commoncfg.DefaultHTTPClientConfig, am.URL)
			require.NoError(t, am.PostAlerts(cpuAlert("a", "infra"), cpuAlert("b", "infra"), cpuAlert("c", "db")))

			ms := SilenceMatchers(
				map[string]string{"alertname": "HighCPU", "team": "infra"},
				map[string]string{"alertname": "HighCPU", "team": "infra", "job": "node"})
			sl := testSilence(ms)
			start := time.Now()
			id, err := s.Create(budget(t, 2500*time.Millisecond), sl)
			require.NoError(t, err)
			t.Logf("created in %v", time.Since(start))

			got, err := am.Silence(id)
			require.NoError(t, err)
			require.Equal(t, "active", got.Status.State)
			require.Equal(t, []amtest.Matcher{
				{Name: "alertname", Value: "HighCPU", IsEqual: true},
				{Name: "team", Value: "infra", IsEqual: true},
			}, got.Matchers)
			require.Equal(t, sl.CreatedBy, got.CreatedBy)
			require.Equal(t, sl.Comment, got.Comment)
			require.WithinDuration(t, sl.EndsAt, got.EndsAt, time.Millisecond)

			require.NoError(t, am.PostAlerts(cpuAlert("d", "infra")))
			muted := silencedBy(t, am)
			require.Len(t, muted, 4)
			for _, host := range []string{"a:9100", "b:9100", "d:9100"} {
				require.Equal(t, []string{id}, muted[host], host)
			}
			require.Empty(t, muted["c:9100"], "another group's alert")

			start = time.Now()
			require.NoError(t, s.Expire(budget(t, 2500*time.Millisecond), id))
			t.Logf("expired in %v", time.Since(start))
			got, err = am.Silence(id)
			require.NoError(t, err)
			require.Equal(t, "expired", got.Status.State)
			require.Empty(t, silencedBy(t, am)["a:9100"])

			require.NoError(t, s.Expire(budget(t, 2500*time.Millisecond), id), "expired twice")
			require.NoError(t, s.Expire(budget(t, 2500*time.Millisecond), "6f9619ff-8b86-4d01-b42d-00cf4fc964ff"), "never known")
		})
	}
}

// group_by: []: the group has no group labels, and its common labels
// select its alerts and not those of a group on another route.
func TestSilencerCommonLabels(t *testing.T) {
	for name, bin := range alertmanagers(t) {
		t.Run(name, func(t *testing.T) {
			am := runAM(t, bin, "")
			s, _ := newSilencer(t, commoncfg.DefaultHTTPClientConfig, am.URL)
			require.NoError(t, am.PostAlerts(cpuAlert("a", "infra"), cpuAlert("b", "infra"), cpuAlert("c", "db")))

			// As Alertmanager sends the infra group: no group labels, the
			// labels a and b share as common labels.
			ms := SilenceMatchers(map[string]string{},
				map[string]string{"alertname": "HighCPU", "team": "infra", "job": "node"})
			id, err := s.Create(budget(t, 2500*time.Millisecond), testSilence(ms))
			require.NoError(t, err)

			muted := silencedBy(t, am)
			require.Equal(t, []string{id}, muted["a:9100"])
			require.Equal(t, []string{id}, muted["b:9100"])
			require.Empty(t, muted["c:9100"])
		})
	}
}

// Muted says whether Alertmanager mutes a group: no while an alert of it
// is active, no for a group it holds no alert of (resolved, or another
// cluster's: a wrong URL must not hold escalations), yes while a silence
// made in Alertmanager mutes them all, no again once it is expired.
// Values with quotes and backslashes are matched as they are.
func TestSilencerMuted(t *testing.T) {
	for name, bin := range alertmanagers(t) {
		t.Run(name, func(t *testing.T) {
			am := runAM(t, bin, "alertname, team")
			s, _ := newSilencer(t, commoncfg.DefaultHTTPClientConfig, am.URL)
			odd := cpuAlert("e", "infra")
			odd.Labels["alertname"] = `Disk "C:\" full`
			require.NoError(t, am.PostAlerts(cpuAlert("a", "infra"), cpuAlert("b", "infra"), odd))
			infra := SilenceMatchers(map[string]string{"alertname": "HighCPU", "team": "infra"}, nil)
			oddGroup := SilenceMatchers(map[string]string{"alertname": odd.Labels["alertname"]}, nil)
			muted := func(ms []Matcher) bool {
				t.Helper()
				ok, err := s.Muted(budget(t, 2500*time.Millisecond), ms)
				require.NoError(t, err)
				return ok
			}
			require.False(t, muted(infra))
			require.False(t, muted(SilenceMatchers(map[string]string{"alertname": "HighCPU", "team": "db"}, nil)), "a group Alertmanager holds no alert of")
			require.False(t, muted(oddGroup))

			id, err := s.Create(budget(t, 2500*time.Millisecond), testSilence(infra))
			require.NoError(t, err)
			require.True(t, muted(infra), "silenced")
			require.False(t, muted(oddGroup), "another group, not silenced")
			oddID, err := s.Create(budget(t, 2500*time.Millisecond), testSilence(oddGroup))
			require.NoError(t, err)
			require.True(t, muted(oddGroup), "an escaped value selects its alert")

			require.NoError(t, s.Expire(budget(t, 2500*time.Millisecond), id))
			require.False(t, muted(infra), "the silence expired")
			require.NoError(t, s.Expire(budget(t, 2500*time.Millisecond), oddID))
		})
	}
}

// An inhibited group is muted too: a host down inhibits its HighCPU
// alerts, and once both are, the group has none that would notify.
func TestSilencerMutedByInhibition(t *testing.T) {
	for name, bin := range alertmanagers(t) {
		t.Run(name, func(t *testing.T) {
			am := amtest.Run(t, amtest.Options{Binary: bin, Config: amConfig("alertname, team") + `inhibit_rules:
  - source_matchers: ['alertname="NodeDown"']
    target_matchers: ['alertname="HighCPU"']
    equal: [instance]
`})
			s, _ := newSilencer(t, commoncfg.DefaultHTTPClientConfig, am.URL)
			require.NoError(t, am.PostAlerts(cpuAlert("a", "infra"), cpuAlert("b", "infra")))
			infra := SilenceMatchers(map[string]string{"alertname": "HighCPU", "team": "infra"}, nil)
			muted := func() bool {
				ok, err := s.Muted(budget(t, 2500*time.Millisecond), infra)
				require.NoError(t, err)
				return ok
			}
			require.False(t, muted())
			down := func(host string) amtest.Alert {
				a := cpuAlert(host, "infra")
				a.Labels["alertname"] = "NodeDown"
				return a
			}
			require.NoError(t, am.PostAlerts(down("a")))
			require.Eventually(t, func() bool { return suppressed(t, am)["a:9100"] }, 5*time.Second, 50*time.Millisecond, "host a's HighCPU inhibited")
			require.False(t, muted(), "host b's alert still notifies")
			require.NoError(t, am.PostAlerts(down("b")))
			require.Eventually(t, muted, 5*time.Second, 50*time.Millisecond, "both inhibited")
		})
	}
}

// A matcher is written as Alertmanager parses filters: the value escaped,
// a name quoted only when the classic parser would not take it.
func TestMatcherString(t *testing.T) {
	require.Equal(t, `alertname="HighCPU"`, Matcher{Name: "alertname", Value: "HighCPU"}.String())
	require.Equal(t, `path="C:\\ \"x\"\n"`, Matcher{Name: "path", Value: "C:\\ \"x\"\n"}.String())
	require.Equal(t, `"service.name"="api"`, Matcher{Name: "service.name", Value: "api"}.String())
	require.Equal(t, `"1st"="a"`, Matcher{Name: "1st", Value: "a"}.String())
	require.Equal(t, `a_1:b="a"`, Matcher{Name: "a_1:b", Value: "a"}.String())
}

// An Alertmanager that cannot be reached is an error, not a "no".
func TestSilencerMutedUnreachable(t *testing.T) {
	s, _ := newSilencer(t, commoncfg.DefaultHTTPClientConfig, "http://127.0.0.1:1")
	_, err := s.Muted(budget(t, 2500*time.Millisecond), []Matcher{{Name: "alertname", Value: "HighCPU"}})
	var unreachable *UnreachableError
	require.ErrorAs(t, err, &unreachable)
}

func TestSilenceMatchers(t *testing.T) {
	common := map[string]string{"alertname": "X", "team": "infra", "job": ""}
	for _, tc := range []struct {
		name          string
		group, common map[string]string
		want          []Matcher
	}{
		{"group labels win", map[string]string{"team": "infra", "alertname": "X"}, common,
			[]Matcher{{"alertname", "X"}, {"team", "infra"}}},
		{"no group labels", nil, common, []Matcher{{"alertname", "X"}, {"team", "infra"}}},
		{"only empty group labels", map[string]string{"env": ""}, common, []Matcher{{"alertname", "X"}, {"team", "infra"}}},
		{"nothing", nil, map[string]string{"env": ""}, []Matcher{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, SilenceMatchers(tc.group, tc.common))
		})
	}
}

// closedURL is a loopback URL where nothing listens: connections are
// refused at once.
func closedURL(t *testing.T) string {
	port, err := freeport.Get()
	require.NoError(t, err)
	return "http://127.0.0.1:" + strconv.Itoa(port)
}

// blackholeURL takes connections (the kernel does, into the backlog) and
// never answers: a member that hangs.
func blackholeURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return "http://" + l.Addr().String()
}

// counted is a reverse proxy in front of target that counts requests.
func counted(t *testing.T, target string) (string, *atomic.Int32) {
	u, err := url.Parse(target)
	require.NoError(t, err)
	var n atomic.Int32
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

func requireActive(t *testing.T, am *amtest.Alertmanager, id string) {
	t.Helper()
	got, err := am.Silence(id)
	require.NoError(t, err)
	require.Equal(t, "active", got.Status.State)
}

// The first URL that answers makes the silence; a 4xx ends the search.
func TestSilencerURLs(t *testing.T) {
	dir, err := amtest.Binaries()
	require.NoError(t, err)
	am := runAM(t, dir+"/alertmanager", "alertname")
	ms := []Matcher{{"alertname", "HighCPU"}}

	t.Run("first refuses connections", func(t *testing.T) {
		proxied, n := counted(t, am.URL)
		s, logs := newSilencer(t, commoncfg.DefaultHTTPClientConfig, closedURL(t), proxied)
		start := time.Now()
		id, err := s.Create(budget(t, 2500*time.Millisecond), testSilence(ms))
		require.NoError(t, err)
		t.Logf("created past a closed port in %v", time.Since(start))
		requireActive(t, am, id)
		require.EqualValues(t, 1, n.Load())
		require.Equal(t, 1, logs.Count("trying the next url", "connection refused"))
	})
	t.Run("first answers 503", func(t *testing.T) {
		unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}))
		t.Cleanup(unavailable.Close)
		s, _ := newSilencer(t, commoncfg.DefaultHTTPClientConfig, unavailable.URL, am.URL)
		id, err := s.Create(budget(t, 2500*time.Millisecond), testSilence(ms))
		require.NoError(t, err)
		requireActive(t, am, id)
	})
	t.Run("first hangs", func(t *testing.T) {
		// Half the budget each: the hanging member cannot take it all.
		s, logs := newSilencer(t, commoncfg.DefaultHTTPClientConfig, blackholeURL(t), am.URL)
		id, err := s.Create(budget(t, 2500*time.Millisecond), testSilence(ms))
		require.NoError(t, err, "the second had time left")
		require.Equal(t, 1, logs.Count("trying the next url", "no answer within"), "the first was given up on its share")
		requireActive(t, am, id)
	})
	t.Run("4xx is not tried elsewhere", func(t *testing.T) {
		proxied, n := counted(t, am.URL)
		s, _ := newSilencer(t, commoncfg.DefaultHTTPClientConfig, am.URL, proxied)
		sl := testSilence(ms)
		sl.StartsAt, sl.EndsAt = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
		_, err := s.Create(budget(t, 2500*time.Millisecond), sl)
		var refused *RefusedError
		require.ErrorAs(t, err, &refused)
		require.Equal(t, http.StatusBadRequest, refused.Status)
		require.Equal(t, "Failed to create silence: end time can't be in the past", refused.Message)
		require.EqualError(t, err, "create silence: alertmanager "+am.URL+" refused with status 400: "+refused.Message)
		require.Zero(t, n.Load(), "the second url")

		// No matchers: API v2's schema refuses it with a JSON object.
		_, err = s.Create(budget(t, 2500*time.Millisecond), testSilence(nil))
		require.ErrorAs(t, err, &refused)
		require.Equal(t, http.StatusUnprocessableEntity, refused.Status)
		require.Equal(t, "matchers in body should have at least 1 items", refused.Message)
		require.Zero(t, n.Load(), "the second url")
	})
	t.Run("all refuse connections", func(t *testing.T) {
		urls := []string{closedURL(t), "http://alice:s3cret@" + closedURL(t)[len("http://"):], closedURL(t)}
		s, _ := newSilencer(t, commoncfg.DefaultHTTPClientConfig, urls...)
		_, err := s.Create(budget(t, 2500*time.Millisecond), testSilence(ms))
		var unreachable *UnreachableError
		require.ErrorAs(t, err, &unreachable)
		t.Logf("%v", err)
		require.Equal(t, 3, strings.Count(err.Error(), "connection refused"), "each tried, none waited for")
		require.NotContains(t, err.Error(), "s3cret")
		require.NotContains(t, err.Error(), "alice")
		require.Contains(t, err.Error(), urls[2])
		require.Contains(t, err.Error(), "connection refused")
		require.NotErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("all hang", func(t *testing.T) {
		s, _ := newSilencer(t, commoncfg.DefaultHTTPClientConfig, blackholeURL(t), blackholeURL(t))
		_, err := s.Create(budget(t, 1500*time.Millisecond), testSilence(ms))
		var unreachable *UnreachableError
		require.ErrorAs(t, err, &unreachable)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		t.Logf("%v", err)
		require.Equal(t, 1, strings.Count(err.Error(), "no answer within"), "the first was given up on its share of the budget")
		require.NotContains(t, err.Error(), "not tried", "the second had the rest")
	})
}

// Expiring asks past a member that does not know the silence (one that
// restarted without its data, say) for one that does.
func TestSilencerExpirePastUnknowing(t *testing.T) {
	dir, err := amtest.Binaries()
	require.NoError(t, err)
	fresh, holder := runAM(t, dir+"/alertmanager", "alertname"), runAM(t, dir+"/alertmanager", "alertname")
	only, _ := newSilencer(t, commoncfg.DefaultHTTPClientConfig, holder.URL)
	id, err := only.Create(budget(t, 2500*time.Millisecond), testSilence([]Matcher{{"alertname", "HighCPU"}}))
	require.NoError(t, err)

	both, _ := newSilencer(t, commoncfg.DefaultHTTPClientConfig, fresh.URL, holder.URL)
	require.NoError(t, both.Expire(budget(t, 2500*time.Millisecond), id))
	got, err := holder.Silence(id)
	require.NoError(t, err)
	require.Equal(t, "expired", got.Status.State)
}

// http_config's credentials reach an Alertmanager behind basic auth, and
// without them it refuses; the password shows in no error.
func TestSilencerBasicAuth(t *testing.T) {
	dir, err := amtest.Binaries()
	require.NoError(t, err)
	hash, err := bcrypt.GenerateFromPassword([]byte("am-password"), bcrypt.MinCost)
	require.NoError(t, err)
	am := amtest.Run(t, amtest.Options{
		Binary:    dir + "/alertmanager",
		Config:    amConfig("alertname"),
		WebConfig: fmt.Sprintf("basic_auth_users:\n  feishu: %s\n", hash),
	})
	ms := []Matcher{{"alertname", "HighCPU"}}

	anonymous, _ := newSilencer(t, commoncfg.DefaultHTTPClientConfig, am.URL)
	_, err = anonymous.Create(budget(t, 2500*time.Millisecond), testSilence(ms))
	var refused *RefusedError
	require.ErrorAs(t, err, &refused)
	require.Equal(t, http.StatusUnauthorized, refused.Status)

	wrong := commoncfg.DefaultHTTPClientConfig
	wrong.BasicAuth = &commoncfg.BasicAuth{Username: "feishu", Password: "not-it"}
	s, _ := newSilencer(t, wrong, am.URL)
	_, err = s.Create(budget(t, 2500*time.Millisecond), testSilence(ms))
	require.ErrorAs(t, err, &refused)
	require.NotContains(t, err.Error(), "not-it")

	hc := commoncfg.DefaultHTTPClientConfig
	hc.BasicAuth = &commoncfg.BasicAuth{Username: "feishu", Password: "am-password"}
	s, _ = newSilencer(t, hc, am.URL)
	id, err := s.Create(budget(t, 2500*time.Millisecond), testSilence(ms))
	require.NoError(t, err)
	require.NoError(t, s.Expire(budget(t, 2500*time.Millisecond), id))
}

func TestNewSilencerRefusesBadSetup(t *testing.T) {
	logger, _ := newLogger()
	for _, tc := range []struct {
		urls []string
		hc   commoncfg.HTTPClientConfig
		want string
	}{
		{nil, commoncfg.DefaultHTTPClientConfig, "alertmanager: no url"},
		{[]string{"alertmanager:9093"}, commoncfg.DefaultHTTPClientConfig, `alertmanager url "alertmanager:9093": not an absolute http(s) url`},
		{[]string{"http://bob:pw@am:port"}, commoncfg.DefaultHTTPClientConfig, `alertmanager url "http://am:port": invalid`},
		{[]string{"http://am:9093"}, commoncfg.HTTPClientConfig{
			BasicAuth: &commoncfg.BasicAuth{Username: "u", Password: "p", PasswordFile: "f"},
		}, "alertmanager http_config: "},
	} {
		_, err := NewSilencer(tc.urls, tc.hc, logger)
		require.ErrorContains(t, err, tc.want)
	}
}

// Alertmanager's text reaches an error on one bounded line.
func TestAlertmanagerMessage(t *testing.T) {
	require.Equal(t, "end time can't be in the past", message([]byte("\"end time can't be in the past\"\n")))
	require.Equal(t, "matchers in body is required", message([]byte(`{"code":602,"message":"matchers in body is required"}`)))
	require.Equal(t, "Unauthorized", message([]byte("Unauthorized\n")))
	require.Equal(t, "no reason given", message(nil))
	long := message([]byte("a\nb " + strings.Repeat("é", 1000)))
	require.True(t, strings.HasPrefix(long, "a b éé"))
	require.Equal(t, maxMessageRunes, utf8.RuneCountInString(long))
	require.NotContains(t, long, "\n")
}
