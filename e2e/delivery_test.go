package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/amtest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/app"
)

// setupChats writes a routing.yaml with one receiver per chat, oc_chat_0 to
// oc_chat_<chats-1>, each picked by the label chat, and the given extra
// feishu settings.
func setupChats(t *testing.T, fs *feishutest.Server, api string, chats int, feishuExtra string) string {
	t.Helper()
	return setupChatsState(t, fs, api, chats, feishuExtra, "state:\n  path: state/state.db\n")
}

// setupChatsState is setupChats with the given state settings.
func setupChatsState(t *testing.T, fs *feishutest.Server, api string, chats int, feishuExtra, state string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte(feishutest.AppSecret+"\n"), 0o600))
	var b strings.Builder
	fmt.Fprintf(&b, "feishu:\n  base_url: %s\n  app_id: %s\n  app_secret_file: secret\n  api: %s\n%s", fs.URL, feishutest.AppID, api, feishuExtra)
	b.WriteString(state + "receivers:\n")
	for i := range chats {
		fmt.Fprintf(&b, "  - {name: chat-%d, chat_id: oc_chat_%d}\n", i, i)
	}
	b.WriteString("route:\n  receiver: chat-0\n  routes:\n")
	for i := range chats {
		fmt.Fprintf(&b, "    - {matchers: ['chat=\"oc_chat_%d\"'], receiver: chat-%d}\n", i, i)
	}
	writeConfig(t, dir, b.String())
	return filepath.Join(dir, "routing.yaml")
}

// groups makes the bodies of n groups spread over chats, firing or resolved.
func groups(n, chats int, resolved bool) [][]byte {
	bodies := make([][]byte, n)
	for i := range n {
		bodies[i] = amtest.Group(i, map[string]string{"chat": fmt.Sprintf("oc_chat_%d", i%chats)}, resolved)
	}
	return bodies
}

// burst posts every body at once, each retried as Alertmanager retries, and
// returns how long until the last was accepted and how many attempts it
// took in all.
func burst(t *testing.T, url string, bodies [][]byte) (time.Duration, int) {
	t.Helper()
	return burstTo(t, []string{url}, bodies)
}

// burstTo is burst with the bodies spread over urls, the ith to the
// (i mod len(urls))th.
func burstTo(t *testing.T, urls []string, bodies [][]byte) (time.Duration, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: len(bodies)}}
	defer c.CloseIdleConnections()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		attempts int
		errs     []error
	)
	start := time.Now()
	for i, body := range bodies {
		wg.Go(func() {
			o, err := amtest.Post(ctx, c, urls[i%len(urls)]+"/webhook", body)
			mu.Lock()
			defer mu.Unlock()
			attempts += o.Attempts
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	require.Empty(t, errs, "every notification is delivered")
	return elapsed, attempts
}

var groupNumber = regexp.MustCompile(`group=(\d+)`)

// perGroup sorts the stand-in's messages by the group they are about.
func perGroup(t *testing.T, msgs []feishutest.Message) map[int][]feishutest.Message {
	t.Helper()
	out := map[int][]feishutest.Message{}
	for _, m := range msgs {
		match := groupNumber.FindStringSubmatch(m.Text)
		require.NotNil(t, match, "message %s names its group: %s", m.ID, m.Text)
		n, _ := strconv.Atoi(match[1])
		out[n] = append(out[n], m)
	}
	return out
}

// requireOncePerGroup checks that each of n groups has exactly one message.
func requireOncePerGroup(t *testing.T, fs *feishutest.Server, n int) {
	t.Helper()
	byGroup := perGroup(t, fs.Messages())
	require.Len(t, byGroup, n)
	for g, msgs := range byGroup {
		require.Len(t, msgs, 1, "group %d", g)
	}
}

// countings are the ways of counting the stand-in's limits a pacing test
// runs under: those FEISHUTEST_COUNTING names (comma-separated, or "all"),
// else byDefault. Feishu does not say how it counts.
func countings(t *testing.T, byDefault ...feishutest.Counting) []feishutest.Counting {
	t.Helper()
	names := os.Getenv("FEISHUTEST_COUNTING")
	switch names {
	case "":
		return byDefault
	case "all":
		return feishutest.Countings
	}
	var out []feishutest.Counting
	for name := range strings.SplitSeq(names, ",") {
		c, ok := feishutest.ParseCounting(strings.TrimSpace(name))
		require.True(t, ok, "FEISHUTEST_COUNTING: no way of counting %q (sliding_window, token_bucket, fixed_window, all)", name)
		out = append(out, c)
	}
	return out
}

// refusalSlack is the share of sends Feishu may refuse in the storm and
// the flood. Alone on a quiet machine, under every way of counting, it is
// at most 1 % (docs/behaviour.md, "Rate limits"). On a loaded machine a
// send's goroutine or its request is at times later than the pacer's
// guard allows for, and is refused (then retried, and the guard widened):
// the tests allow for that, three times over with the race detector, and
// assert that every group still has exactly one message. A pacer that
// did not keep the limits would see most of a burst refused.
func refusalSlack() float64 {
	if raceDetector {
		return 0.15
	}
	return 0.05
}

// requireFewRefusals checks that Feishu refused at most refusalSlack of n
// sends.
func requireFewRefusals(t *testing.T, fs *feishutest.Server, n int) {
	t.Helper()
	require.LessOrEqual(t, fs.Refused(), int(refusalSlack()*float64(n)), "sends refused by Feishu")
}

// A storm: 200 groups into 4 chats at once, Feishu allowing 5 sends per
// second per chat. The pacer spaces the sends so that Feishu refuses none,
// and the storm takes about its lower bound of 200/4/5 = 10 s. The ratio is
// logged, not asserted: it is a measurement (docs/behaviour.md, "Rate limits").
func TestStorm(t *testing.T) {
	for _, counting := range countings(t, feishutest.SlidingWindow) {
		t.Run(counting.String(), func(t *testing.T) {
			const groupsN, chats, perChat = 200, 4, 5
			fs := feishutest.New(t)
			fs.SetCounting(counting)
			fs.SetChatRateLimit(perChat)
			s := serve(t, app.Options{ConfigFile: setupChats(t, fs, config.APIIMv1, chats, "")})

			elapsed, attempts := burst(t, s.URL, groups(groupsN, chats, false))
			requireOncePerGroup(t, fs, groupsN)
			requireFewRefusals(t, fs, groupsN)
			bound := time.Duration(groupsN/chats/perChat) * time.Second
			t.Logf("storm (%s): %d groups into %d chats at %d/s per chat: %.2fs, %.3fx the %v lower bound; %d webhook attempts; %d sends refused by Feishu",
				counting, groupsN, chats, perChat, elapsed.Seconds(), elapsed.Seconds()/bound.Seconds(), bound, attempts, fs.Refused())
		})
	}
}

// A flood: 600 groups into 20 chats, where the app's 50 sends per second
// binds (the lower bound is 600/50 = 12 s) and Feishu's gateway answers 429
// beyond it. Refusals are bounded as in TestStorm.
func TestFlood(t *testing.T) {
	for _, counting := range countings(t, feishutest.SlidingWindow) {
		t.Run(counting.String(), func(t *testing.T) {
			const groupsN, chats, perApp = 600, 20, 50
			fs := feishutest.New(t)
			fs.SetCounting(counting)
			fs.SetChatRateLimit(5)
			fs.SetAppRateLimit(perApp)
			fs.SetAppMinuteRateLimit(1000)
			s := serve(t, app.Options{ConfigFile: setupChats(t, fs, config.APIIMv1, chats, "")})

			elapsed, attempts := burst(t, s.URL, groups(groupsN, chats, false))
			requireOncePerGroup(t, fs, groupsN)
			requireFewRefusals(t, fs, groupsN)
			bound := time.Duration(groupsN/perApp) * time.Second
			t.Logf("flood (%s): %d groups into %d chats at %d/s per app: %.2fs, %.3fx the %v lower bound; %d webhook attempts; %d sends refused by Feishu",
				counting, groupsN, chats, perApp, elapsed.Seconds(), elapsed.Seconds()/bound.Seconds(), bound, attempts, fs.Refused())
		})
	}
}

// Feishu is stricter than the configuration says (other bots in the chats
// share the limits, or the tenant's are lower): its refusals pause and
// slow the pacer, the gateway's reset header included, and nothing is
// lost or doubled, however Feishu counts.
func TestRefusalsSlowThePacer(t *testing.T) {
	for _, counting := range countings(t, feishutest.Countings...) {
		t.Run(counting.String(), func(t *testing.T) {
			const groupsN, chats = 60, 2
			fs := feishutest.New(t)
			fs.SetCounting(counting)
			fs.SetChatRateLimit(5)
			fs.SetAppRateLimit(8)
			s := serve(t, app.Options{ConfigFile: setupChats(t, fs, config.APIIMv1, chats, "  rate_limit: {per_chat: 20, per_app: 100}\n")})

			elapsed, _ := burst(t, s.URL, groups(groupsN, chats, false))
			requireOncePerGroup(t, fs, groupsN)
			require.Positive(t, fs.RefusedByApp(), "the gateway's limit was met")
			// Were the sends waiting all to try at once after a refusal,
			// most of them would be refused in turn. About one a second
			// is (the limit is 8/s where 100/s is configured), more with
			// the race detector on a loaded machine.
			most := groupsN / 4
			if raceDetector {
				most = groupsN / 2
			}
			require.Less(t, fs.Refused(), most, "a refusal slows every send down; the sends waiting do not all try at once")
			_, metrics := get(t, s.URL+"/metrics")
			require.Regexp(t, `alertmanager_feishu_feishu_retries_total\{endpoint="im/v1/messages",reason="rate_limited"\} [1-9]`, metrics)
			require.Regexp(t, `alertmanager_feishu_feishu_requests_total\{code="99991400",endpoint="im/v1/messages"\} [1-9]`, metrics)
			t.Logf("refusals (%s): %d groups, configured 100/s, Feishu allows 8/s: %.2fs (%.2fx the %.1fs lower bound); %d sends refused by the stand-in (%d by the app limit)",
				counting, groupsN, elapsed.Seconds(), elapsed.Seconds()/7.5, 7.5, fs.Refused(), fs.RefusedByApp())
		})
	}
}

// The fault test: every 3rd send fails, tokens live 2 s and all expire
// between the firing and the resolved notifications, and 30 groups fire
// then resolve, each retried as Alertmanager does. Every group ends with
// exactly one firing message and one resolved reply to it.
func TestFaultsLoseAndDuplicateNothing(t *testing.T) {
	const groupsN, chats = 30, 3
	for _, api := range apis {
		t.Run(api, func(t *testing.T) {
			fs := feishutest.New(t)
			fs.SetTokenTTL(2 * time.Second)
			fs.FailEvery(3, feishutest.Fault{Status: http.StatusInternalServerError, Code: 2200, Msg: "internal error"})
			s := serve(t, app.Options{ConfigFile: setupChats(t, fs, api, chats, "")})

			firing, firingAttempts := burst(t, s.URL, groups(groupsN, chats, false))
			// The tokens the firing burst used expire before the service
			// knows: its next sends meet Feishu's invalid-token answer.
			tokens := fs.TokenRequests()
			fs.ExpireTokens()
			resolved, resolvedAttempts := burst(t, s.URL, groups(groupsN, chats, true))
			t.Logf("firing: %.2fs, %d webhook attempts; resolved: %.2fs, %d webhook attempts; %d sends, %d token requests",
				firing.Seconds(), firingAttempts, resolved.Seconds(), resolvedAttempts, fs.Sends(), fs.TokenRequests())

			byGroup := perGroup(t, fs.Messages())
			require.Len(t, byGroup, groupsN)
			for g, msgs := range byGroup {
				require.Len(t, msgs, 2, "group %d: one firing, one resolved", g)
				if api == config.APIIMv1 {
					// The root card was updated in place to show the
					// group resolved.
					require.Equal(t, 1, msgs[0].Updates, "group %d", g)
				} else {
					require.NotContains(t, msgs[0].Text, "RESOLVED", "group %d", g)
				}
				require.Contains(t, msgs[1].Text, "RESOLVED", "group %d", g)
				require.Empty(t, msgs[0].RootID, "group %d", g)
				require.Equal(t, msgs[0].ID, msgs[1].RootID, "group %d: one chain", g)
			}
			require.Greater(t, fs.TokenRequests(), tokens, "the expired token was replaced")
			_, metrics := get(t, s.URL+"/metrics")
			require.Regexp(t, `alertmanager_feishu_feishu_retries_total\{endpoint="[^"]+",reason="transient"\} [1-9]`, metrics)
		})
	}
}

// SIGKILL in the middle of a burst, then a restart and Alertmanager's
// retries: on im/v1 every group has exactly one message.
func TestKilledMidBurstThenRetried(t *testing.T) {
	const groupsN, chats = 30, 3
	fs := feishutest.New(t)
	fs.SetLatency(300 * time.Millisecond)
	cfg := setupChats(t, fs, config.APIIMv1, chats, "")
	s := start(t, cfg)
	bodies := groups(groupsN, chats, false)

	var wg sync.WaitGroup
	for _, body := range bodies {
		wg.Go(func() {
			if resp, err := http.Post(s.URL+"/webhook", "application/json", strings.NewReader(string(body))); err == nil {
				resp.Body.Close()
			}
		})
	}
	require.Eventually(t, func() bool { return len(fs.Messages()) >= groupsN/3 }, 10*time.Second, 5*time.Millisecond)
	s.Kill()
	wg.Wait()
	killedAt := len(fs.Messages())
	require.Less(t, killedAt, groupsN, "killed mid-burst")

	fs.SetLatency(0)
	s = start(t, cfg)
	burst(t, s.URL, bodies) // Alertmanager's retries reach the new process
	requireOncePerGroup(t, fs, groupsN)
	t.Logf("killed after %d of %d messages (%d sends received); after the retries: %d messages", killedAt, groupsN, fs.Sends(), len(fs.Messages()))
}
