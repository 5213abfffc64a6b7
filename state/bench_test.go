package state

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/redistest"
)

// BenchmarkStore measures one notification's state work as the receiver
// does it, 32 groups at a time: lock, load, begin, commit, unlock. The
// record carries a webhook body of 2 KB, as the receiver's will. The file
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
			last := bytes.Repeat([]byte("x"), 2<<10)
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
