package actions

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
)

// The tests here run in a testing/synctest bubble against the stand-in
// served in memory (newMemNet), so that the backoffs, jitters and intervals
// are those of the bubble's clock: time.Sleep moves that clock on, at once
// and exactly, once every goroutine of the bubble waits; nothing depends on
// how fast the machine is.

// upIn asserts that, once the bubble is idle, n connections are up and r's
// gauge says so.
func upIn(t *testing.T, s *feishutest.Server, n int, r *running) {
	t.Helper()
	synctest.Wait()
	require.Equal(t, n, s.Connections())
	require.Equal(t, n > 0, r.isUp())
}

// Bad credentials: every attempt is one bootstrap and one error naming
// Feishu's code, a minute apart, the gauge at 0 throughout; over ten
// minutes that is eleven attempts, not a spin.
func TestLongConnectionBadCredentialsBackOff(t *testing.T) {
	s := feishutest.New(t)
	synctest.Test(t, func(t *testing.T) {
		r := startOn(t, s, s.Client(), func(c *LongConnectionConfig) { c.AppSecret, c.Handler = "wrong-secret", &recorder{} })
		for attempt := 1; attempt <= 11; attempt++ {
			synctest.Wait() // the attempt is made, and Run waits out its backoff
			require.Equal(t, attempt, s.Bootstraps(), "one attempt per backoff")
			require.Equal(t, attempt, r.logs.Count("level=ERROR", "long connection refused", "code 10014"), "one error per attempt")
			require.False(t, r.isUp(), "the gauge is 0 while the attempts go on")
			time.Sleep(defaultFatalBackoff)
		}
		require.Zero(t, r.logs.Count("level=WARN"))
		require.NotContains(t, r.logs.String(), "wrong-secret")
		require.Zero(t, s.Handshakes())
	})
}

func TestLongConnectionHandshakeRefused(t *testing.T) {
	t.Run("too many connections is fatal", func(t *testing.T) {
		s := feishutest.New(t)
		s.SetMaxConnections(0)
		synctest.Test(t, func(t *testing.T) {
			_, client := newMemNet(t, s)
			r := startOn(t, s, client, func(c *LongConnectionConfig) { c.Handler = &recorder{} })
			for attempt := 1; attempt <= 4; attempt++ {
				synctest.Wait()
				require.Equal(t, attempt, s.Handshakes(), "one attempt per backoff")
				require.Equal(t, attempt, r.logs.Count("level=ERROR", "1000040350"))
				require.False(t, r.isUp())
				time.Sleep(defaultFatalBackoff)
			}
			require.NotContains(t, r.logs.String(), "ticket=", "the dial URL's ticket stays out of the logs")
		})
	})
	t.Run("forbidden is fatal", func(t *testing.T) {
		s := feishutest.New(t)
		s.RefuseHandshakes(&feishutest.HandshakeRefusal{Status: feishutest.HandshakeForbidden, Msg: "forbidden"})
		synctest.Test(t, func(t *testing.T) {
			_, client := newMemNet(t, s)
			r := startOn(t, s, client, func(c *LongConnectionConfig) { c.Handler = &recorder{} }, WithFatalBackoff(time.Hour))
			synctest.Wait()
			require.Equal(t, 1, r.logs.Count("level=ERROR", "status 403"))
			time.Sleep(time.Hour - time.Second)
			require.Equal(t, 1, s.Handshakes(), "the backoff is an hour")
			time.Sleep(time.Second)
			synctest.Wait()
			require.Equal(t, 2, s.Handshakes())
		})
	})
	t.Run("others are retried at the server's pace", func(t *testing.T) {
		s := feishutest.New(t)
		s.RefuseHandshakes(&feishutest.HandshakeRefusal{Status: 500, Msg: "busy"})
		synctest.Test(t, func(t *testing.T) {
			_, client := newMemNet(t, s)
			r := startOn(t, s, client, func(c *LongConnectionConfig) { c.Handler = &recorder{} })
			synctest.Wait()
			require.Equal(t, 1, s.Handshakes())
			// The first retry within the capped jitter, the next after the
			// server's ReconnectInterval (120 s at Feishu's defaults).
			time.Sleep(defaultJitterCap)
			require.Equal(t, 2, s.Handshakes())
			time.Sleep(DefaultClientConfig.interval() - defaultJitterCap - time.Second)
			require.Equal(t, 2, s.Handshakes())
			time.Sleep(defaultJitterCap + time.Second)
			synctest.Wait()
			require.Equal(t, 3, s.Handshakes())
			require.Zero(t, r.logs.Count("level=ERROR"))
			require.Equal(t, 3, r.logs.Count("level=WARN", "feishu long connection lost; reconnecting", "status 500"))

			s.RefuseHandshakes(nil)
			time.Sleep(DefaultClientConfig.interval())
			upIn(t, s, 1, r)
		})
	})
}

// After a drop, at Feishu's default tuning (a nonce of 30 s), the next
// click works within seconds: the first retry's jitter is capped. A
// connection that held for a minute makes the next drop a first failure
// again; one dropped soon after it came back waits the server's interval.
func TestLongConnectionReconnectsAfterDrop(t *testing.T) {
	s := feishutest.New(t)
	card := sendCard(t, s)
	synctest.Test(t, func(t *testing.T) {
		_, client := newMemNet(t, s)
		r := startOn(t, s, client, func(c *LongConnectionConfig) {
			c.Handler = &recorder{answer: Answer{Toast: &Toast{Type: ToastInfo, Content: "ok"}}}
		})
		upIn(t, s, 1, r)
		for range 3 {
			time.Sleep(heldFor)
			s.DropConnections()
			synctest.Wait()
			require.False(t, r.isUp(), "the gauge is 0 while down")
			time.Sleep(defaultJitterCap)
			upIn(t, s, 1, r)
			a, err := s.Click(context.Background(), card, "ou_alice", ack())
			require.NoError(t, err)
			require.Equal(t, "ok", a.Toast.Content)
		}
		require.Equal(t, 4, s.Bootstraps())
		require.Equal(t, 3, r.logs.Count("level=WARN", "reconnecting"))

		// Dropped again soon after it came back: the interval, not another
		// short jitter.
		s.DropConnections()
		time.Sleep(DefaultClientConfig.interval() - time.Second)
		upIn(t, s, 0, r)
		time.Sleep(time.Second)
		upIn(t, s, 1, r)
	})
}

// A server that stops answering pings behind an open socket is left for a
// new connection once two pongs are missing.
func TestLongConnectionReconnectsWhenServerSilent(t *testing.T) {
	s := feishutest.New(t)
	synctest.Test(t, func(t *testing.T) {
		_, client := newMemNet(t, s)
		r := startOn(t, s, client, func(c *LongConnectionConfig) { c.Handler = &recorder{} })
		upIn(t, s, 1, r)
		s.SetSilent(true)
		ping := DefaultClientConfig.ping()
		time.Sleep(3*ping - time.Second)
		require.Equal(t, 3, s.Pings(), "pings go on, unanswered")
		require.Zero(t, r.logs.Count("server silent"))
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, 1, r.logs.Count("server silent for 6m0s"))
		s.SetSilent(false)
		time.Sleep(defaultJitterCap)
		upIn(t, s, 1, r)
		require.Equal(t, 2, s.Bootstraps())
	})
}

// A pong's ClientConfig applies to the connection it came on: a shorter
// PingInterval takes effect from the next ping.
func TestLongConnectionPongChangesPingInterval(t *testing.T) {
	s := feishutest.New(t)
	synctest.Test(t, func(t *testing.T) {
		_, client := newMemNet(t, s)
		r := startOn(t, s, client, func(c *LongConnectionConfig) { c.Handler = &recorder{} })
		upIn(t, s, 1, r)
		require.Equal(t, 1, s.Pings(), "a ping on connect")
		s.SetClientConfig(feishutest.ClientConfig{PingInterval: 10})
		// The first pong with it answers the ping at 120 s.
		time.Sleep(DefaultClientConfig.ping())
		synctest.Wait()
		require.Equal(t, 2, s.Pings())
		time.Sleep(10*time.Second - time.Millisecond)
		require.Equal(t, 2, s.Pings())
		time.Sleep(time.Millisecond)
		synctest.Wait()
		require.Equal(t, 3, s.Pings(), "10 s after the pong that said so")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Equal(t, 4, s.Pings())
		require.Equal(t, 1, s.Bootstraps(), "the same connection")
	})
}

// A handler has until 2.5 s after the click arrived.
func TestLongConnectionHandlerDeadline(t *testing.T) {
	s := feishutest.New(t)
	card := sendCard(t, s)
	synctest.Test(t, func(t *testing.T) {
		_, client := newMemNet(t, s)
		left := make(chan time.Duration, 1)
		r := startOn(t, s, client, func(c *LongConnectionConfig) {
			c.Handler = HandlerFunc(func(ctx context.Context, _ Callback) Answer {
				d, _ := ctx.Deadline()
				left <- time.Until(d)
				return Answer{}
			})
		})
		upIn(t, s, 1, r)
		_, err := s.Click(context.Background(), card, "ou_alice", ack())
		require.NoError(t, err)
		require.Equal(t, handlerBudget, <-left)
	})
}

// Stopping while the server reads nothing, not even the close frame, ends
// after the close timeout.
func TestLongConnectionStopBoundedWhenServerSilent(t *testing.T) {
	s := feishutest.New(t)
	synctest.Test(t, func(t *testing.T) {
		m, client := newMemNet(t, s)
		r := startOn(t, s, client, func(c *LongConnectionConfig) { c.Handler = &recorder{} }, WithCloseTimeout(200*time.Millisecond))
		upIn(t, s, 1, r)
		m.freeze()
		require.Equal(t, 200*time.Millisecond, r.stop(t))
		require.False(t, r.isUp())
		require.Zero(t, s.CleanCloses())
	})
}

// Shutdown against a server that reads nothing waits for the close
// handshake at most the close timeout, and never past the grace.
func TestLongConnectionShutdownBoundedWhenServerSilent(t *testing.T) {
	for _, tc := range []struct {
		name        string
		grace, took time.Duration
	}{
		{"the close timeout", 10 * time.Second, defaultCloseTimeout},
		{"the grace", 300 * time.Millisecond, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := feishutest.New(t)
			synctest.Test(t, func(t *testing.T) {
				m, client := newMemNet(t, s)
				r := startOn(t, s, client, func(c *LongConnectionConfig) { c.Handler = &recorder{} })
				upIn(t, s, 1, r)
				m.freeze()
				grace, cancel := context.WithTimeout(context.Background(), tc.grace)
				defer cancel()
				began := time.Now()
				require.NoError(t, r.lc.Shutdown(grace), "no callback was cut short")
				require.Equal(t, tc.took, time.Since(began))
				require.False(t, r.isUp())
			})
		})
	}
}

// blocking is a handler that holds each callback until release or its
// context ends, and tells how it ended.
type blocking struct {
	started chan struct{}
	release chan struct{}
	ended   chan error
}

func newBlocking() *blocking {
	return &blocking{started: make(chan struct{}, 10), release: make(chan struct{}), ended: make(chan error, 10)}
}

func (b *blocking) Callback(ctx context.Context, _ Callback) Answer {
	b.started <- struct{}{}
	select {
	case <-b.release:
		b.ended <- nil
		return Answer{Toast: &Toast{Type: ToastSuccess, Content: "done"}}
	case <-ctx.Done():
		b.ended <- ctx.Err()
		return Answer{Toast: &Toast{Type: ToastError, Content: "cut short"}}
	}
}

// click clicks in its own goroutine and hands back the answer.
func click(s *feishutest.Server, card string) <-chan clickResult {
	out := make(chan clickResult, 1)
	go func() {
		a, err := s.Click(context.Background(), card, "ou_alice", ack())
		out <- clickResult{a, err}
	}()
	return out
}

type clickResult struct {
	a   feishutest.ClickAnswer
	err error
}

// clickInFlight, in a synctest bubble, runs a long connection to s whose
// handler holds every click until released, clicks card, and returns the
// connection, the handler and the answer to come, once the handler holds
// the click.
func clickInFlight(t *testing.T, s *feishutest.Server, card string) (*running, *blocking, <-chan clickResult) {
	t.Helper()
	_, client := newMemNet(t, s)
	h := newBlocking()
	r := startOn(t, s, client, func(c *LongConnectionConfig) { c.Handler = h })
	upIn(t, s, 1, r)
	first := click(s, card)
	<-h.started
	return r, h, first
}

// Shutdown lets a click being handled finish and be acked, takes no new
// ones meanwhile, then closes with a close frame.
func TestLongConnectionShutdownFinishesClicksInFlight(t *testing.T) {
	s := feishutest.New(t)
	card := sendCard(t, s)
	synctest.Test(t, func(t *testing.T) {
		r, h, first := clickInFlight(t, s, card)

		grace, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		began := time.Now()
		stopped := make(chan error, 1)
		go func() { stopped <- r.lc.Shutdown(grace) }()
		synctest.Wait()
		require.Equal(t, 1, s.Connections(), "open while the click is handled")

		second := click(s, card)
		synctest.Wait()
		require.Empty(t, h.started, "no new click is taken while stopping")

		time.Sleep(time.Second)
		close(h.release)
		got := <-first
		require.NoError(t, got.err)
		require.Equal(t, "done", got.a.Toast.Content, "the click in flight was done whole, and acked")
		require.NoError(t, <-h.ended)
		require.NoError(t, <-stopped)
		require.Equal(t, time.Second, r.wait(t, began), "Run returns once the click is acked")
		require.Error(t, (<-second).err, "the click that came while stopping is not answered")
		require.Equal(t, 1, s.CleanCloses())
		require.Zero(t, s.Connections())
		require.False(t, r.isUp())
		require.Equal(t, 1, r.logs.Count("callback arrived while stopping, left unanswered"))
	})
}

// When the grace runs out first, the click is cancelled then (not at the
// end of its own 2.5 s), and Shutdown says so.
func TestLongConnectionShutdownCancelsClicksAfterTheGrace(t *testing.T) {
	s := feishutest.New(t)
	card := sendCard(t, s)
	synctest.Test(t, func(t *testing.T) {
		r, h, first := clickInFlight(t, s, card)

		grace, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		began := time.Now()
		err := r.lc.Shutdown(grace)
		require.ErrorContains(t, err, "1 callbacks cancelled at shutdown")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, <-h.ended, context.Canceled, "cancelled by the grace, before its own deadline")
		require.Equal(t, time.Second, time.Since(began))
		require.Equal(t, time.Second, r.wait(t, began))
		got := <-first
		require.NoError(t, got.err)
		require.Equal(t, "cut short", got.a.Toast.Content, "the handler's answer to its cancellation is acked")
		require.Zero(t, s.CleanCloses(), "no time was left for the close handshake")
		require.Equal(t, 1, r.logs.Count("level=WARN", "shutdown grace over", "callbacks=1"))
	})
}

// A Shutdown before Run, or while Run waits to reconnect, ends it at once.
func TestLongConnectionShutdownWhileDown(t *testing.T) {
	s := feishutest.New(t)
	synctest.Test(t, func(t *testing.T) {
		r := startOn(t, s, s.Client(), func(c *LongConnectionConfig) { c.AppSecret, c.Handler = "wrong-secret", &recorder{} })
		synctest.Wait()
		began := time.Now()
		require.NoError(t, r.lc.Shutdown(context.Background()))
		require.Zero(t, r.wait(t, began))
		require.Equal(t, 1, s.Bootstraps())

		lc := NewLongConnection(LongConnectionConfig{BaseURL: s.URL, HTTPClient: s.Client(), Handler: &recorder{}})
		require.NoError(t, lc.Shutdown(context.Background()))
		require.NoError(t, lc.Run(context.Background()))
		require.Equal(t, 1, s.Bootstraps(), "a Run after Shutdown does not connect")
	})
}
