package core_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/alertmanager-feishu/alertmanager-feishu/actions"
	"github.com/alertmanager-feishu/alertmanager-feishu/core"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/amtest"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// BenchmarkCallback is the path of one click over HTTP: verify the
// signature, decrypt, decode, find the incident under its lock, acknowledge
// it, commit (file store, synced), render the card for the answer, and
// answer. Each op is one incident acknowledged; the reply the chain gets
// afterwards goes to the stand-in outside the timed answer, but within the
// benchmark's run.
func BenchmarkCallback(b *testing.B) {
	e := newActionEnv(b, "http://127.0.0.1:1", "  transport: http\n  verification_token: vtoken\n  encrypt_key: ekey")
	e.fs.SetCallback("http://service/feishu/callback", "vtoken", "ekey")
	stamper := amtest.NewStamper(5, map[string]string{"team": "infra"}, false)
	reqs := make([]*http.Request, b.N)
	for i := range b.N {
		body := stamper.Group(i)
		p, err := webhook.DecodeBytes(body)
		if err != nil {
			b.Fatal(err)
		}
		out := e.core.Notify(context.Background(), e.pl.Receiver("infra"), core.Notification{Payload: p, Key: webhook.NotificationKey("infra", p), Body: body})
		if out.Status != core.Sent {
			b.Fatal(out.Err)
		}
		msgs := e.fs.Messages()
		root := msgs[len(msgs)-1]
		var value map[string]string
		for _, v := range buttons(b, root.Content) {
			if v["action"] == core.ActionAck {
				value = v
			}
		}
		if reqs[i], err = e.fs.CallbackRequest(context.Background(), root.ID, "ou_alice", value); err != nil {
			b.Fatal(err)
		}
	}
	token, key, err := e.pl.Config.Actions.Secrets()
	if err != nil {
		b.Fatal(err)
	}
	h := actions.NewHTTPCallback(token, key, e.core, nil, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, reqs[i])
		if w.Code != http.StatusOK || !json.Valid(w.Body.Bytes()) {
			b.Fatalf("answer %d: %s", w.Code, w.Body)
		}
	}
	b.StopTimer()
	if err := e.core.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
	if got := e.count(core.ActionAck, "done"); got != float64(b.N) {
		b.Fatalf("%v acknowledged, want %d", got, b.N)
	}
}
