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
)

// running is a LongConnection under test.
type running struct {
	lc     *LongConnection
	up     prometheus.Gauge
	logs   *logBuffer
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
	logger, logs := newLogger()
	r := &running{
		up:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "alertmanager_feishu_callback_connection_up"}),
		logs:   logs,
		client: &http.Client{Transport: &http.Transport{}},
		done:   make(chan error, 1),
	}
	cfg := LongConnectionConfig{
		BaseURL: s.URL, AppID: feishutest.AppID, AppSecret: feishutest.AppSecret,
		HTTPClient: r.client, Logger: logger, Up: r.up,
	}
	edit(&cfg)
	r.lc = NewLongConnection(cfg, append([]Option{WithFirstJitterCap(50 * time.Millisecond)}, opts...)...)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.lc.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and returns how long it took to return.
func (r *running) stop(t *testing.T) time.Duration {
	t.Helper()
	began := time.Now()
	r.cancel()
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

// fast makes the stand-in hand out short intervals, for reconnects in
// seconds rather than minutes.
func fast(s *feishutest.Server) {
	s.SetClientConfig(feishutest.ClientConfig{ReconnectCount: -1, ReconnectInterval: 1, ReconnectNonce: 1, PingInterval: 1})
}

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

func TestLongConnectionHandlerDeadline(t *testing.T) {
	s := feishutest.New(t)
	card := sendCard(t, s)
	left := make(chan time.Duration, 1)
	r := start(t, s, feishutest.AppSecret, HandlerFunc(func(ctx context.Context, _ Callback) Answer {
		d, _ := ctx.Deadline()
		left <- time.Until(d)
		return Answer{}
	}))
	connected(t, s, 1, r)
	_, err := s.Click(context.Background(), card, "ou_alice", ack())
	require.NoError(t, err)
	d := <-left
	require.Greater(t, d, 2*time.Second)
	require.LessOrEqual(t, d, handlerBudget)
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
	require.Equal(t, 1, r.logs.count("level=ERROR", "boom"))
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

func TestLongConnectionReconnectsAfterDrop(t *testing.T) {
	s := feishutest.New(t)
	fast(s)
	card := sendCard(t, s)
	r := start(t, s, feishutest.AppSecret, &recorder{answer: Answer{Toast: &Toast{Type: ToastInfo, Content: "ok"}}})
	connected(t, s, 1, r)
	for range 2 {
		s.DropConnections()
		require.Eventually(t, func() bool { return !r.isUp() }, 5*time.Second, time.Millisecond, "gauge 0 while down")
		connected(t, s, 1, r)
		a, err := s.Click(context.Background(), card, "ou_alice", ack())
		require.NoError(t, err)
		require.Equal(t, "ok", a.Toast.Content)
	}
	require.Equal(t, 3, s.Bootstraps())
	require.Equal(t, 2, r.logs.count("level=WARN", "reconnecting"))
}

// A server that stops answering pings behind an open socket is left for a
// new connection.
func TestLongConnectionReconnectsWhenServerSilent(t *testing.T) {
	s := feishutest.New(t)
	fast(s)
	r := start(t, s, feishutest.AppSecret, &recorder{})
	connected(t, s, 1, r)
	s.SetSilent(true)
	require.Eventually(t, func() bool { return s.Bootstraps() >= 2 }, 6*time.Second, 10*time.Millisecond)
	require.Equal(t, 1, r.logs.count("server silent"))
	s.SetSilent(false)
	connected(t, s, 1, r)
}

// waitAttempts waits for n attempts counted by count and returns how long
// they took from the first.
func waitAttempts(t *testing.T, count func() int, n int) time.Duration {
	t.Helper()
	require.Eventually(t, func() bool { return count() >= 1 }, 5*time.Second, time.Millisecond)
	first := time.Now()
	require.Eventually(t, func() bool { return count() >= n }, 10*time.Second, time.Millisecond)
	return time.Since(first)
}

func TestLongConnectionBadCredentialsBackOff(t *testing.T) {
	s := feishutest.New(t)
	const backoff = 150 * time.Millisecond
	r := start(t, s, "wrong-secret", &recorder{}, WithFatalBackoff(backoff))
	took := waitAttempts(t, s.Bootstraps, 4)
	require.GreaterOrEqual(t, took, 3*backoff, "bootstraps are spaced by the backoff")
	r.stop(t)
	n := s.Bootstraps()
	require.LessOrEqual(t, float64(n), float64(took+3*backoff)/float64(backoff)+2)
	require.GreaterOrEqual(t, r.logs.count("level=ERROR", "code 10014"), n-1, "an error per attempt, naming Feishu's code")
	require.False(t, r.isUp())
	require.NotContains(t, r.logs.String(), "wrong-secret")
	require.Zero(t, s.Handshakes())
}

func TestLongConnectionHandshakeRefused(t *testing.T) {
	t.Run("too many connections is fatal", func(t *testing.T) {
		s := feishutest.New(t)
		s.SetMaxConnections(0)
		const backoff = 150 * time.Millisecond
		r := start(t, s, feishutest.AppSecret, &recorder{}, WithFatalBackoff(backoff))
		took := waitAttempts(t, s.Handshakes, 4)
		require.GreaterOrEqual(t, took, 3*backoff)
		require.GreaterOrEqual(t, r.logs.count("level=ERROR", "1000040350"), 3)
		require.False(t, r.isUp())
		require.NotContains(t, r.logs.String(), "ticket=", "the dial URL's ticket stays out of the logs")
	})
	t.Run("forbidden is fatal", func(t *testing.T) {
		s := feishutest.New(t)
		s.RefuseHandshakes(&feishutest.HandshakeRefusal{Status: feishutest.HandshakeForbidden, Msg: "forbidden"})
		r := start(t, s, feishutest.AppSecret, &recorder{}, WithFatalBackoff(time.Hour))
		require.Eventually(t, func() bool { return r.logs.count("level=ERROR", "status 403") == 1 }, 5*time.Second, time.Millisecond)
		require.Equal(t, 1, s.Handshakes())
	})
	t.Run("others wait the reconnect interval", func(t *testing.T) {
		s := feishutest.New(t)
		fast(s)
		s.RefuseHandshakes(&feishutest.HandshakeRefusal{Status: 500, Msg: "busy"})
		r := start(t, s, feishutest.AppSecret, &recorder{}, WithFatalBackoff(time.Hour))
		took := waitAttempts(t, s.Handshakes, 3)
		// The first retry is jittered (≤ 50 ms here), the next waits the
		// server's ReconnectInterval of 1 s.
		require.GreaterOrEqual(t, took, time.Second)
		require.Zero(t, r.logs.count("level=ERROR"))
		s.RefuseHandshakes(nil)
		connected(t, s, 1, r)
	})
}

// Run ends within a second of its context, with a close frame, and leaves
// no goroutine behind; a new LongConnection with new credentials takes
// over, as a reload does.
func TestLongConnectionStopAndReload(t *testing.T) {
	s := feishutest.New(t)
	card := sendCard(t, s)
	baseline := runtime.NumGoroutine()

	old := start(t, s, feishutest.AppSecret, &recorder{answer: Answer{Toast: &Toast{Type: ToastInfo, Content: "old"}}})
	connected(t, s, 1, old)
	s.SetCredentials(feishutest.AppID, "rotated-secret")
	took := old.stop(t)
	require.Less(t, took, time.Second)
	require.False(t, old.isUp())
	require.Eventually(t, func() bool { return s.CleanCloses() == 1 }, time.Second, time.Millisecond, "closed with a close frame")
	require.Eventually(t, func() bool { return s.Connections() == 0 }, time.Second, time.Millisecond)

	next := start(t, s, "rotated-secret", &recorder{answer: Answer{Toast: &Toast{Type: ToastInfo, Content: "new"}}})
	connected(t, s, 1, next)
	a, err := s.Click(context.Background(), card, "ou_alice", ack())
	require.NoError(t, err)
	require.Equal(t, "new", a.Toast.Content)
	require.Less(t, next.stop(t), time.Second)

	settled(t, baseline)
}

// Stopping while the server does not answer the close frame still ends
// within the close timeout.
func TestLongConnectionStopBoundedWhenServerSilent(t *testing.T) {
	s := feishutest.New(t)
	r := start(t, s, feishutest.AppSecret, &recorder{}, WithCloseTimeout(200*time.Millisecond))
	connected(t, s, 1, r)
	require.Less(t, r.stop(t), time.Second)
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
