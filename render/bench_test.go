package render

import (
	"testing"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/oncall"
)

// BenchmarkRender renders a captured three-alert group with the default
// templates, per message type, with one mention.
func BenchmarkRender(b *testing.B) {
	p := load(b, "firing-HighCPU-seq2-new-alerts-added.json")
	mentions := oncall.Mentions{IDs: []string{"ou_oncall"}}
	for _, typ := range []string{config.MsgText, config.MsgPost, config.MsgInteractive} {
		b.Run(typ, func(b *testing.B) {
			r := newRendererFor(b, config.APIIMv1)
			rc := &config.Receiver{Name: "infra", Language: "en", MsgType: typ}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Render(p, rc, mentions); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRenderHuge renders a group too big for one message, which is
// measured once per probe while it is cut to size.
func BenchmarkRenderHuge(b *testing.B) {
	for _, typ := range []string{config.MsgText, config.MsgPost, config.MsgInteractive} {
		b.Run(typ, func(b *testing.B) {
			r := newRendererFor(b, config.APIIMv1)
			rc := &config.Receiver{Name: "infra", Language: "en", MsgType: typ}
			p := hugePayload(400)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Render(p, rc, oncall.Mentions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
