package route

import (
	"path/filepath"
	"testing"

	"github.com/prometheus/common/model"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

// BenchmarkReceivers routes label sets through the tree that the amtool
// cross-check uses: nested routes, regexps, continue.
func BenchmarkReceivers(b *testing.B) {
	cfg, err := config.Load(filepath.Join("..", "testdata", "routes", "routing.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	tree := New(cfg.Route)
	sets := []model.LabelSet{
		{"alertname": "X", "team": "infra", "service": "db", "severity": "critical"},
		{"alertname": "DiskFull", "team": "net", "instance": "host-1:9100"},
		{"service.name": "checkout-v2", "alertname": "Latency"},
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if len(tree.Receivers(sets[i%len(sets)])) == 0 {
			b.Fatal("no receiver")
		}
		i++
	}
}
