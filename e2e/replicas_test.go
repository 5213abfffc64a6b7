package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/amtest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/redistest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/servicetest"
)

const redisRouting = `
feishu:
  base_url: %s
  app_id: cli_feishutest
  app_secret_file: secret
  api: %s
  rate_limit: {per_chat: 0, per_app: 0, per_app_minute: 0}
state:
  backend: redis
  redis:
    addresses: [%s]
receivers:
  - {name: infra, chat_id: oc_infra}
route:
  receiver: infra
`

// setupRedis writes a routing.yaml for replicas sharing the Redis at addr.
func setupRedis(t *testing.T, fs *feishutest.Server, api, addr string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte(feishutest.AppSecret+"\n"), 0o600))
	writeConfig(t, dir, fmt.Sprintf(redisRouting, fs.URL, api, addr))
	return filepath.Join(dir, "routing.yaml")
}

// postAll posts every body to every URL at once, each retried as
// Alertmanager retries, as an HA pair sends each notification to the
// service once per Alertmanager.
func postAll(t *testing.T, bodies [][]byte, urls ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(bodies)*len(urls))
	for _, body := range bodies {
		for _, url := range urls {
			wg.Go(func() {
				if _, err := amtest.Post(ctx, http.DefaultClient, url+"/webhook", body); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// requireChains checks that each of n groups has exactly the given number
// of messages, every one after the first replying to the first.
func requireChains(t *testing.T, fs *feishutest.Server, n, each int) {
	t.Helper()
	byGroup := perGroup(t, fs.Messages())
	require.Len(t, byGroup, n)
	for g, msgs := range byGroup {
		require.Len(t, msgs, each, "group %d: %s", g, ids(msgs))
		for _, m := range msgs[1:] {
			require.Equal(t, msgs[0].ID, m.RootID, "group %d: a later message replies to the root", g)
		}
	}
}

func ids(msgs []feishutest.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID + " root=" + m.RootID
	}
	return out
}

// Two replicas on one Redis, each notification sent to both at once: one
// message per notification, chains continuing at whichever replica gets the
// next one, and a Redis outage answered 503 until Redis is back.
func TestTwoReplicasOnOneRedis(t *testing.T) {
	for _, api := range apis {
		t.Run(api, func(t *testing.T) {
			srv := redistest.Start(t)
			fs := feishutest.New(t)
			cfg := setupRedis(t, fs, api, srv.Addr)
			a, b := start(t, cfg), start(t, cfg)

			const n = 40
			firing, resolved := make([][]byte, n), make([][]byte, n)
			for i := range n {
				firing[i] = amtest.Group(i, nil, false)
				resolved[i] = amtest.Group(i, nil, true)
			}
			postAll(t, firing, a.URL, b.URL)
			requireChains(t, fs, n, 1)

			// The next notification of half the groups reaches the
			// other replica only.
			postAll(t, resolved[:n/2], b.URL)
			byGroup := perGroup(t, fs.Messages())
			for i := range n / 2 {
				require.Len(t, byGroup[i], 2, "group %d", i)
			}

			// Redis away: a quick 503, nothing sent, both not ready.
			srv.Stop()
			before := fs.Sends()
			began := time.Now()
			status, body := post(t, a.URL+"/webhook", resolved[n/2])
			took := time.Since(began)
			require.Equal(t, http.StatusServiceUnavailable, status, body)
			require.Contains(t, body, "redis")
			t.Logf("answer with Redis away: %d after %v: %s", status, took, body)
			for _, s := range []*servicetest.Service{a, b} {
				status, _ := get(t, s.URL+"/-/ready")
				require.Equal(t, http.StatusServiceUnavailable, status)
			}
			require.Equal(t, before, fs.Sends(), "nothing is sent without state")

			// Redis back, with what it held (append-only file): the
			// replicas are ready again by themselves and the open chains
			// continue, at a replica started meanwhile too.
			srv.Restart(t)
			for _, s := range []*servicetest.Service{a, b} {
				require.Eventually(t, func() bool { return ready(s.URL) }, 10*time.Second, 50*time.Millisecond)
			}
			stop(t, a)
			c := start(t, cfg)
			postAll(t, resolved[n/2:], b.URL, c.URL)
			requireChains(t, fs, n, 2)
		})
	}
}

// A replica started while Redis is away runs, not ready, and becomes ready
// once Redis answers.
func TestStartsNotReadyWithoutRedis(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop()
	fs := feishutest.New(t)
	cfg := setupRedis(t, fs, "im_v1", srv.Addr)
	s, err := servicetest.StartNotReady(bin, "--config.file="+cfg)
	require.NoError(t, err)
	stopAtCleanup(t, s)
	status, _ := get(t, s.URL+"/-/ready")
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Contains(t, s.Logs(), "redis does not answer yet")

	srv.Restart(t)
	require.Eventually(t, func() bool { return ready(s.URL) }, 10*time.Second, 50*time.Millisecond)
	status, body := post(t, s.URL+"/webhook", amtest.Group(1, nil, false))
	require.Equal(t, http.StatusOK, status, body)
	require.Len(t, fs.Messages(), 1)
}

// The storm of TestStorm through two replicas on one Redis, half the
// webhooks to each: the replicas count the chats' and the app's limits
// together in Redis, so the storm takes about the bound one replica alone
// takes, with no more refusals, and one message per group.
func TestStormThroughTwoReplicas(t *testing.T) {
	for _, counting := range countings(t, feishutest.SlidingWindow) {
		t.Run(counting.String(), func(t *testing.T) {
			const groupsN, chats, perChat = 200, 4, 5
			srv := redistest.Start(t)
			fs := feishutest.New(t)
			fs.SetCounting(counting)
			fs.SetChatRateLimit(perChat)
			fs.SetAppRateLimit(50)
			cfg := setupChatsState(t, fs, config.APIIMv1, chats, "",
				fmt.Sprintf("state:\n  backend: redis\n  redis:\n    addresses: [%s]\n", srv.Addr))
			a, b := start(t, cfg), start(t, cfg)

			elapsed, attempts := burstTo(t, []string{a.URL, b.URL}, groups(groupsN, chats, false))
			requireOncePerGroup(t, fs, groupsN)
			requireFewRefusals(t, fs, groupsN)
			for _, s := range []*servicetest.Service{a, b} {
				_, metrics := get(t, s.URL+"/metrics")
				require.Contains(t, metrics, "\nalertmanager_feishu_rate_limit_shared 1\n", "the limits are counted in Redis")
			}
			bound := time.Duration(groupsN/chats/perChat) * time.Second
			t.Logf("storm through two replicas (%s): %d groups into %d chats at %d/s per chat: %.2fs, %.3fx the %v lower bound; %d webhook attempts; %d sends refused by Feishu",
				counting, groupsN, chats, perChat, elapsed.Seconds(), elapsed.Seconds()/bound.Seconds(), bound, attempts, fs.Refused())
		})
	}
}
