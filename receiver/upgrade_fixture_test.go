package receiver_test

// This file writes testdata/upgrade/: the state that this release leaves
// behind, for the next release's upgrade test. It runs only when asked:
//
//	AMFEISHU_WRITE_UPGRADE_FIXTURES=1 go test ./receiver -run TestWriteUpgradeFixtures

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/redistest"
	"github.com/alertmanager-feishu/alertmanager-feishu/receiver"
	"github.com/alertmanager-feishu/alertmanager-feishu/state"
)

const upgradeRouting = `
feishu:
  base_url: %s
  app_id: cli_feishutest
  app_secret: feishutest-secret
  api: im_v1
receivers:
  - {name: infra, chat_id: oc_infra}
  - {name: bot, webhook_url: '%s'}
route:
  receiver: infra
`

type redisKey struct {
	Key   string             `json:"key"`
	Type  string             `json:"type"`
	Value string             `json:"value,omitempty"`
	ZSet  map[string]float64 `json:"zset,omitempty"`
	PTTL  int64              `json:"pttl_ms"` // -1: none
}

func TestWriteUpgradeFixtures(t *testing.T) {
	if os.Getenv("AMFEISHU_WRITE_UPGRADE_FIXTURES") == "" {
		t.Skip("writes fixtures only when AMFEISHU_WRITE_UPGRADE_FIXTURES is set")
	}
	out := filepath.Join("..", "testdata", "upgrade")
	logger := promslog.NewNopLogger()
	opts := state.Options{ChainTTL: 168 * time.Hour, DedupeWindow: 10 * time.Minute}

	for _, backend := range []string{"file", "redis"} {
		fs := feishutest.New(t)
		fs.AddBot("tok", "")
		cfg, err := config.Parse(fmt.Appendf(nil, upgradeRouting, fs.URL, fs.BotURL("tok")))
		require.NoError(t, err)
		var store state.Store
		var srv *redistest.Server
		dbPath := filepath.Join(t.TempDir(), "state.db")
		if backend == "file" {
			store, err = state.OpenFile(dbPath, opts, logger)
		} else {
			srv = redistest.Start(t)
			store, err = state.OpenRedis(state.RedisOptions{Addresses: []string{srv.Addr}, KeyPrefix: "amfeishu:"}, opts, logger)
		}
		require.NoError(t, err)
		reg := prometheus.NewRegistry()
		metrics := feishu.NewMetrics(reg)
		pacer := feishu.NewPacer(cfg.Feishu.RateLimit, metrics)
		p, err := receiver.NewPipeline(cfg, metrics, pacer, logger)
		require.NoError(t, err)
		h := receiver.New(p, receiver.Options{Store: store, MaxBodyBytes: 1 << 20, Timeout: 3 * time.Second, MaxDelay: 2 * time.Second, Logger: logger, Registerer: reg})
		mux := http.NewServeMux()
		h.Register(mux)
		hs := httptest.NewServer(mux)

		post := func(path, name string, want int) {
			resp, err := http.Post(hs.URL+path, "application/json", bytes.NewReader(payload(t, name)))
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, want, resp.StatusCode, name)
		}
		post("/webhook/infra", "firing-HighCPU-seq1-first-notification.json", 200)
		post("/webhook/infra", "firing-DiskFull-default.json", 200)
		post("/webhook/infra", "resolved-DiskFull-default.json", 200)
		post("/webhook/bot", "firing-HighCPU-infra.json", 200)
		fs.FailEvery(1, feishutest.Fault{Status: 500, Code: 1500, Msg: "internal error"})
		post("/webhook/infra", "firing-HighCPU-critical-max_alerts1.json", 503)
		fs.FailEvery(0, feishutest.Fault{})
		hs.Close()
		require.NoError(t, h.Shutdown(context.Background()))

		written := time.Now().UTC()
		if backend == "file" {
			require.NoError(t, store.Close())
			b, err := os.ReadFile(dbPath)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(out, "state.db"), b, 0o644))
		} else {
			rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
			ctx := context.Background()
			keys, err := rc.Keys(ctx, "*").Result()
			require.NoError(t, err)
			sort.Strings(keys)
			var dump []redisKey
			for _, k := range keys {
				typ, err := rc.Type(ctx, k).Result()
				require.NoError(t, err)
				rk := redisKey{Key: k, Type: typ}
				switch typ {
				case "string":
					rk.Value, err = rc.Get(ctx, k).Result()
				case "zset":
					var zs []redis.Z
					zs, err = rc.ZRangeWithScores(ctx, k, 0, -1).Result()
					rk.ZSet = map[string]float64{}
					for _, z := range zs {
						rk.ZSet[z.Member.(string)] = z.Score
					}
				}
				require.NoError(t, err)
				d, err := rc.PTTL(ctx, k).Result()
				require.NoError(t, err)
				rk.PTTL = d.Milliseconds()
				dump = append(dump, rk)
			}
			rc.Close()
			require.NoError(t, store.Close())
			writeJSONFile(t, filepath.Join(out, "redis-keys.json"), dump)
		}
		writeJSONFile(t, filepath.Join(out, backend+"-messages.json"), fs.Messages())
		writeJSONFile(t, filepath.Join(out, backend+"-written.json"), map[string]any{"written": written, "dedupe_window": "10m", "chain_ttl": "168h"})
	}
}

func writeJSONFile(t *testing.T, path string, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, append(b, '\n'), 0o644))
}
