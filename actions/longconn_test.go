package actions

import (
	"context"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/logtest"
)

// running is a LongConnection under test.
type running struct {
	lc     *LongConnection
	up     prometheus.Gauge
	logs   *logtest.Buffer
	client *http.Client
	cancel context.CancelFunc
	done   chan error
}

// start runs a LongConnection against s until the test ends (or stop).
func start(t *testing.T, s *feishutest.Server, secret string, h Handler, opts ...Option) *running {
	t.Helper()
	return startWith(t, s, func(c *LongConnectionConfig) { c.AppSecret, c.Handler = secret, h }, opts...)
}

// startWith is start with the configuration edited by edit.
func startWith(t *testing.T, s *feishutest.Server, edit func(*LongConnectionConfig), opts ...Option) *running {
	t.Helper()
	return startOn(t, s, &http.Client{Transport: &http.Transport{}}, edit,
		append([]Option{WithFirstJitterCap(50 * time.Millisecond)}, opts...)...)
}

// startOn is startWith reaching s through client (newMemNet's, in a
// synctest bubble), with the default first jitter.
func startOn(t *testing.T, s *feishutest.Server, client *http.Client, edit func(*LongConnectionConfig), opts ...Option) *running {
	t.Helper()
	logger, logs := newLogger()
	r := &running{
		up:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "alertmanager_feishu_callback_connection_up"}),
		logs:   logs,
		client: client,
		done:   make(chan error, 1),
	}
	cfg := LongConnectionConfig{
		BaseURL: s.URL, AppID: feishutest.AppID, AppSecret: feishutest.AppSecret,
		HTTPClient: r.client, Logger: logger, Up: r.up,
	}
	edit(&cfg)
	r.lc = NewLongConnection(cfg, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.lc.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and returns how long it took to return (in a synctest
// bubble, on the bubble's clock).
func (r *running) stop(t *testing.T) time.Duration {
	t.Helper()
	began := time.Now()
	r.cancel()
	return r.wait(t, began)
}

// wait waits for Run to return, as stop does.
func (r *running) wait(t *testing.T, began time.Time) time.Duration {
	t.Helper()
	select {
	case err, ok := <-r.done:
		if ok {
			require.NoError(t, err)
			close(r.done)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5 s of cancel")
	}
	r.client.CloseIdleConnections()
	return time.Since(began)
}

func (r *running) isUp() bool { return testutil.ToFloat64(r.up) == 1 }

func connected(t *testing.T, s *feishutest.Server, n int, rs ...*running) {
	t.Helper()
	require.Eventually(t, func() bool {
		if s.Connections() != n {
			return false
		}
		for _, r := range rs {
			if !r.isUp() {
				return false
			}
		}
		return true
	}, 5*time.Second, 5*time.Millisecond)
}

func ack() map[string]string { return map[string]string{"action": "ack", "incident": "i1"} }

func TestLongConnectionClick(t *testing.T) {
	s := feishutest.New(t)
	card := sendCard(t, s)
	h := &recorder{answer: Answer{
		Toast: &Toast{Type: ToastSuccess, Content: "acknowledged", I18n: map[string]string{"zh_cn": "已确认", "en_us": "acknowledged"}},
		Card:  mustJSON(testCard("acked")),
	}}
	r := start(t, s, feishutest.AppSecret, h)
	connected(t, s, 1, r)

	before := time.Now()
	a, err := s.Click(context.Background(), card, "ou_alice", ack())
	require.NoError(t, err)
	require.Equal(t, 200, a.Status)
	require.Equal(t, 1, a.Conn)
	require.Equal(t, &feishutest.ClickToast{Type: "success", Content: "acknowledged",
		I18n: map[string]string{"zh_cn": "已确认", "en_us": "acknowledged"}}, a.Toast)
	require.JSONEq(t, string(mustJSON(testCard("acked"))), string(a.Card))
	m, _ := s.Message(card)
	require.Equal(t, 1, m.Updates)

	got := h.callbacks()
	require.Len(t, got, 1)
	require.Equal(t, a.EventID, got[0].EventID)
	require.Equal(t, "ou_alice", got[0].Operator.OpenID)
	require.Equal(t, card, got[0].MessageID)
	require.Equal(t, "oc_ops", got[0].ChatID)
	require.JSONEq(t, `{"action":"ack","incident":"i1"}`, string(got[0].Value))
	require.WithinRange(t, got[0].Created, before.Add(-time.Millisecond), time.Now())
	require.GreaterOrEqual(t, s.Pings(), 1, "a ping on connect")

	// An answer with neither toast nor card is {}.
	h.answer = Answer{}
	a, err = s.Click(context.Background(), card, "ou_alice", ack())
	require.NoError(t, err)
	require.JSONEq(t, `{}`, string(a.Raw))
	require.Nil(t, a.Toast)
}

func TestLongConnectionSplitFrames(t *testing.T) {
	s := feishutest.New(t)
	card := sendCard(t, s)
	h := &recorder{answer: Answer{Toast: &Toast{Type: ToastInfo, Content: "joined"}}}
	r := start(t, s, feishutest.AppSecret, h)
	connected(t, s, 1, r)
	s.SetSplit(3)
	long := strings.Repeat("x", 3000)
	a, err := s.Click(context.Background(), card, "ou_alice", map[string]string{"action": "ack", "pad": long})
	require.NoError(t, err)
	require.Equal(t, "joined", a.Toast.Content)
	require.Contains(t, string(h.callbacks()[0].Value), long)
}

func TestLongConnectionHandlerPanicAndStrangeEvents(t *testing.T) {
	s := feishutest.New(t)
	card := sendCard(t, s)
	var panics atomic.Bool
	panics.Store(true)
	refused := make(chan string, 10)
	r := startWith(t, s, func(c *LongConnectionConfig) {
		c.Handler = HandlerFunc(func(context.Context, Callback) Answer {
			if panics.Load() {
				panic("boom")
			}
			return Answer{Toast: &Toast{Type: ToastSuccess, Content: "ok"}}
		})
		c.Refused = func(reason string) { refused <- reason }
	})
	connected(t, s, 1, r)

	a, err := s.Click(context.Background(), card, "ou_alice", ack())
	require.NoError(t, err)
	require.Equal(t, 500, a.Status, "a panicking handler is acked 500")

	a, err = s.PushEvent(context.Background(), []byte(`{"schema":"2.0","header":{"event_id":"e","event_type":"im.message.receive_v1"},"event":{}}`))
	require.NoError(t, err)
	require.Equal(t, 500, a.Status, "an event that is not a callback is acked 500")
	require.Contains(t, <-refused, "im.message.receive_v1")

	panics.Store(false)
	a, err = s.Click(context.Background(), card, "ou_alice", ack())
	require.NoError(t, err)
	require.Equal(t, 200, a.Status, "the connection survives")
	require.Equal(t, 1, r.logs.Count("level=ERROR", "boom"))
}

func TestLongConnectionSeveralClients(t *testing.T) {
	s := feishutest.New(t)
	card := sendCard(t, s)
	h := &recorder{answer: Answer{Toast: &Toast{Type: ToastSuccess, Content: "ok"}}}
	r1 := start(t, s, feishutest.AppSecret, h)
	r2 := start(t, s, feishutest.AppSecret, h)
	connected(t, s, 2, r1, r2)
	seen := map[int]bool{}
	for i := 0; i < 100 && len(seen) < 2; i++ {
		a, err := s.Click(context.Background(), card, "ou_alice", ack())
		require.NoError(t, err)
		seen[a.Conn] = true
	}
	require.Len(t, seen, 2, "each click goes to one client at random")
}

// Run ends on its context with a close frame, and leaves no goroutine
// behind; a new LongConnection with new credentials takes over, as a
// reload does.
func TestLongConnectionStopAndReload(t *testing.T) {
	s := feishutest.New(t)
	card := sendCard(t, s)
	baseline := runtime.NumGoroutine()

	old := start(t, s, feishutest.AppSecret, &recorder{answer: Answer{Toast: &Toast{Type: ToastInfo, Content: "old"}}})
	connected(t, s, 1, old)
	s.SetCredentials(feishutest.AppID, "rotated-secret")
	old.stop(t)
	require.False(t, old.isUp())
	require.Eventually(t, func() bool { return s.CleanCloses() == 1 }, time.Second, time.Millisecond, "closed with a close frame")
	require.Eventually(t, func() bool { return s.Connections() == 0 }, time.Second, time.Millisecond)

	next := start(t, s, "rotated-secret", &recorder{answer: Answer{Toast: &Toast{Type: ToastInfo, Content: "new"}}})
	connected(t, s, 1, next)
	a, err := s.Click(context.Background(), card, "ou_alice", ack())
	require.NoError(t, err)
	require.Equal(t, "new", a.Toast.Content)
	next.stop(t)

	settled(t, baseline)
}

// settled waits for the goroutine count to fall back to baseline. It polls
// on the test goroutine: require.Eventually would add one of its own.
func settled(t *testing.T, baseline int) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Second)
	for runtime.NumGoroutine() > baseline {
		select {
		case <-tick.C:
		case <-deadline:
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines leaked: %d > %d\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
	}
}
