package webhook

import (
	"bytes"
	"testing"
)

// BenchmarkDecode decodes and validates a captured three-alert body.
func BenchmarkDecode(b *testing.B) {
	body := readPayload(b, "firing-HighCPU-seq2-new-alerts-added.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNotificationKey derives the dedupe key of the same body.
func BenchmarkNotificationKey(b *testing.B) {
	p, err := Decode(bytes.NewReader(readPayload(b, "firing-HighCPU-seq2-new-alerts-added.json")))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		NotificationKey("infra", p)
	}
}
