package receiver_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/amtest"
)

// BenchmarkHandler posts new five-alert groups through the whole service in
// process: HTTP intake, decode, route, render, the file store (synced), and
// the send to the stand-in over loopback HTTP, 32 at a time, with no rate
// limit. Each op is one notification delivered.
func BenchmarkHandler(b *testing.B) {
	for _, api := range []string{config.APIIMv1, config.APIv4} {
		b.Run(api, func(b *testing.B) {
			e := newEnv(b, api, feishutest.AppSecret)
			unlimited := strings.Replace(routing, "  api: %s\n", "  api: %s\n  rate_limit: {per_chat: 0, per_app: 0, per_app_minute: 0}\n", 1)
			cfg, err := config.Parse(fmt.Appendf(nil, unlimited, e.feishu.URL, feishutest.AppSecret, api))
			if err != nil {
				b.Fatal(err)
			}
			e.setConfig(b, cfg)
			bodies := amtest.NewStamper(5, map[string]string{"team": "infra"}, false)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var n atomic.Int64
			b.SetParallelism(16)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Post(e.server.URL+"/webhook", "application/json", bytes.NewReader(bodies.Group(int(n.Add(1)))))
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Fatalf("status %d", resp.StatusCode)
					}
				}
			})
			b.StopTimer()
			if got := len(e.feishu.Messages()); got != int(n.Load()) {
				b.Fatalf("%d messages for %d notifications", got, n.Load())
			}
		})
	}
}
