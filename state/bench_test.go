package state

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/redistest"
)

// BenchmarkStore measures one notification's state work as the receiver
// does it, 32 groups at a time: lock, load, begin, commit, unlock. The
// record is a real one's size: it keeps the webhook body, about 4 KB for a
// group of five alerts. The file
// store syncs each write batch to disk; Redis runs on loopback with its
// append-only file synced every second, as deployed.
func BenchmarkStore(b *testing.B) {
	for _, be := range []struct {
		name string
		open func(b *testing.B) Store
	}{
		{"file", func(b *testing.B) Store {
			f, err := OpenFile(filepath.Join(b.TempDir(), "state.db"), opts, promslog.NewNopLogger())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { f.Close() })
			return f
		}},
		{"redis", func(b *testing.B) Store {
			return openRedis(b, redistest.Start(b, "--appendfsync", "everysec").Addr, opts)
		}},
	} {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			last := fiveAlerts()
			ctx := context.Background()
			b.SetParallelism(16)
			b.ReportAllocs()
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					chain := fmt.Sprintf("chain-%d", i%1000)
					key := fmt.Sprintf("n-%d", i)
					unlock, err := s.Lock(ctx, chain)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := s.Load(ctx, chain, key); err != nil {
						b.Fatal(err)
					}
					if err := s.Begin(ctx, chain, key, "uuid", time.Now()); err != nil {
						b.Fatal(err)
					}
					in := incident.New(chain, time.Now())
					in.Receiver, in.Target, in.GroupKey = "infra", "chat_id oc_infra", `{}/{team="infra"}:{alertname="HighCPU"}`
					in.GroupLabels = map[string]string{"alertname": "HighCPU"}
					in.CommonLabels = map[string]string{"alertname": "HighCPU", "job": "node", "severity": "critical", "team": "infra"}
					in.Root, in.Last = "om_1", last
					if err := s.Commit(ctx, Write{Incident: in, Notification: key, At: in.Updated}); err != nil {
						b.Fatal(err)
					}
					unlock()
				}
			})
		})
	}
}

// fiveAlerts is the webhook body of a firing group of five alerts, as
// Alertmanager posts it.
func fiveAlerts() []byte {
	var alerts []string
	for i := range 5 {
		alerts = append(alerts, fmt.Sprintf(`{"status":"firing","labels":{"alertname":"HighCPU","instance":"host-%d.prod.example.com:9100","job":"node","severity":"critical","team":"infra"},`+
			`"annotations":{"summary":"CPU usage above 90%% on host-%d","description":"CPU usage has been above 90%% for 10 minutes on host-%d.prod.example.com:9100.","runbook_url":"https://runbooks.example.com/node/high-cpu"},`+
			`"startsAt":"2026-11-24T23:07:03.805Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus-0.prometheus.monitoring.svc:9090/graph?g0.expr=100+-+avg+by%%28instance%%29%%28rate%%28node_cpu_seconds_total%%7Bmode%%3D%%22idle%%22%%7D%%5B5m%%5D%%29%%29+%%2A+100+%%3E+90&g0.tab=1","fingerprint":"%016x"}`, i, i, i, uint64(i+1)*0x9e3779b97f4a7c15))
	}
	return []byte(`{"receiver":"feishu-infra","status":"firing","alerts":[` + strings.Join(alerts, ",") + `],"groupLabels":{"alertname":"HighCPU"},` +
		`"commonLabels":{"alertname":"HighCPU","job":"node","severity":"critical","team":"infra"},"commonAnnotations":{"runbook_url":"https://runbooks.example.com/node/high-cpu"},` +
		`"externalURL":"http://alertmanager-0.alertmanager.monitoring.svc:9093","version":"4","groupKey":"{}/{team=\"infra\"}:{alertname=\"HighCPU\"}","truncatedAlerts":0}`)
}
