package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// EndpointPath is where the long connection bootstraps, under the base URL.
const EndpointPath = "/callback/ws/endpoint"

// Codes of the long connection's refusals that the client tells apart.
const (
	codeBusy             = 1          // bootstrap: system busy, retry
	codeInternal         = 1000040343 // bootstrap: internal error, retry
	handshakeAuthFailed  = 514
	handshakeForbidden   = 403
	codeTooManyConns     = 1000040350 // with 514: over the app's 50 connections
	defaultFatalBackoff  = time.Minute
	defaultJitterCap     = 5 * time.Second
	heldFor              = time.Minute // up this long, a connection's drop is a first failure again
	defaultCloseTimeout  = time.Second
	requestTimeout       = 10 * time.Second
	writeTimeout         = 5 * time.Second
	partsTimeout         = 5 * time.Second
	maxFrameBytes        = 4 << 20
	ackCodeOK            = 200
	ackCodeHandlerFailed = 500
)

// LongConnectionConfig is what a LongConnection needs.
type LongConnectionConfig struct {
	BaseURL   string // feishu.base_url
	AppID     string
	AppSecret string
	// HTTPClient makes the bootstrap request and the WebSocket dial; built
	// by the caller from feishu.http_config. Its Timeout is ignored (every
	// request has its own), as the WebSocket library requires.
	HTTPClient *http.Client
	Logger     *slog.Logger
	// Up is alertmanager_feishu_callback_connection_up: 1 only while a
	// connection is established. It may be nil.
	Up      prometheus.Gauge
	Handler Handler
	Refused Refusal // may be nil
}

// Option tunes a LongConnection, mostly for tests.
type Option func(*LongConnection)

// WithFatalBackoff sets how long to wait after Feishu refused the
// credentials or the connection for good (default a minute). A service
// keeps trying: the console may be fixed without a restart.
func WithFatalBackoff(d time.Duration) Option { return func(l *LongConnection) { l.fatalBackoff = d } }

// WithFirstJitterCap caps the random wait before the first reconnect after
// a drop (default 5 s). The server's ReconnectNonce (30 s at Feishu's
// defaults) asks for up to that much, to spread many clients' reconnects;
// the cap keeps a click after a drop working within seconds, and 5 s still
// spreads an app's at most 50 connections. A negative cap leaves the
// server's nonce alone.
func WithFirstJitterCap(d time.Duration) Option { return func(l *LongConnection) { l.jitterCap = d } }

// WithCloseTimeout bounds the close handshake when Run's context ends
// (default 1 s).
func WithCloseTimeout(d time.Duration) Option { return func(l *LongConnection) { l.closeTimeout = d } }

// LongConnection receives card callbacks over Feishu's long connection: it
// dials out, so the service needs no public URL. Feishu hands each callback
// to one of an app's connections at random, so every replica may run one.
//
// To change credentials, Shutdown (or cancel Run's context), wait for Run to
// return, and run a new LongConnection.
type LongConnection struct {
	cfg          LongConnectionConfig
	logger       *slog.Logger
	fatalBackoff time.Duration
	jitterCap    time.Duration
	closeTimeout time.Duration

	quit    context.Context // ends when Shutdown is called
	quitNow context.CancelFunc
	started atomic.Bool
	done    chan struct{} // closed when Run returns

	mu        sync.Mutex
	client    ClientConfig
	grace     context.Context // Shutdown's; nil before it is called
	cancelled int             // callbacks cancelled when the grace ran out
}

// NewLongConnection builds the client; Run starts it.
func NewLongConnection(cfg LongConnectionConfig, opts ...Option) *LongConnection {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	l := &LongConnection{
		cfg:          cfg,
		logger:       cfg.Logger,
		fatalBackoff: defaultFatalBackoff,
		jitterCap:    defaultJitterCap,
		closeTimeout: defaultCloseTimeout,
		client:       DefaultClientConfig,
		done:         make(chan struct{}),
	}
	l.quit, l.quitNow = context.WithCancel(context.Background())
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	for _, o := range opts {
		o(l)
	}
	return l
}

// fatalError is a refusal that retrying soon will not change: bad
// credentials, a forbidden app, too many connections.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func fatalf(format string, args ...any) error { return &fatalError{fmt.Errorf(format, args...)} }

func (l *LongConnection) setUp(v float64) {
	if l.cfg.Up != nil {
		l.cfg.Up.Set(v)
	}
}

func (l *LongConnection) config() ClientConfig {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.client
}

func (l *LongConnection) apply(c ClientConfig) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.client = l.client.merge(c)
}

// Run keeps a connection up until Shutdown is called or ctx ends,
// reconnecting after drops and refusals; it returns nil then, having closed
// the connection with a close frame and waited for its goroutines. The end
// of ctx cancels the callbacks being handled at once; Shutdown lets them
// finish first. Run never gives up by itself: a refusal that retrying will
// not fix is logged as an error at each attempt and tried again after a
// long wait, so a fix in Feishu's console needs no restart.
func (l *LongConnection) Run(ctx context.Context) error {
	if l.cfg.Handler == nil {
		return errors.New("long connection: no handler")
	}
	if !l.started.CompareAndSwap(false, true) {
		return errors.New("long connection: already run")
	}
	defer close(l.done)
	l.setUp(0)
	defer l.setUp(0)
	failures := 0
	for {
		if l.quit.Err() != nil {
			return nil
		}
		upFor, err := l.connect(ctx)
		if ctx.Err() != nil || l.quit.Err() != nil {
			return nil
		}
		cfg := l.config()
		if upFor >= min(cfg.interval(), heldFor) {
			// Only a connection that held counts as a success: one the
			// server drops at once must not earn a fresh short jitter
			// each time, or the client would spin.
			failures = 0
		}
		var wait time.Duration
		var fatal *fatalError
		switch {
		case errors.As(err, &fatal):
			wait, failures = l.fatalBackoff, 0
			l.logger.Error("feishu long connection refused; retrying later", "err", err, "retry_in", wait)
		case cfg.ReconnectCount >= 0 && failures >= max(cfg.ReconnectCount, 1):
			// The server's ReconnectCount is spent: rest, then start over.
			wait, failures = l.fatalBackoff, 0
			l.logger.Error("feishu long connection lost; reconnect attempts exhausted, retrying later", "err", err, "attempts", cfg.ReconnectCount, "retry_in", wait)
		default:
			if failures == 0 {
				// Spread the replicas' first reconnects, as Feishu asks.
				jitter := cfg.nonce()
				if l.jitterCap >= 0 {
					jitter = min(jitter, l.jitterCap)
				}
				if jitter > 0 {
					wait = rand.N(jitter)
				}
			} else {
				wait = cfg.interval()
			}
			failures++
			l.logger.Warn("feishu long connection lost; reconnecting", "err", err, "retry_in", wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-l.quit.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Shutdown stops Run gracefully, as a service's shutdown or a reload does:
// callbacks that arrive from now on are left unanswered (Feishu gives up on
// them, and the clicker may click again), those being handled may finish
// and be acked until ctx ends, and are cancelled then; then the connection
// is closed with a close frame, and Shutdown returns once Run has. So a
// click in flight is done whole, or, once the grace is over, not at all:
// no half-made silence, no action done and never acked. It tells, with
// ctx's error, if callbacks had to be cancelled. A Run called after
// Shutdown returns at once.
func (l *LongConnection) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	if l.grace == nil {
		l.grace = ctx
	}
	l.mu.Unlock()
	l.quitNow()
	if l.started.Load() {
		<-l.done
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancelled > 0 {
		return fmt.Errorf("long connection: %d callbacks cancelled at shutdown: %w", l.cancelled, context.Cause(ctx))
	}
	return nil
}

// graceContext is Shutdown's context, which bounds the wait for callbacks
// being handled.
func (l *LongConnection) graceContext() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.grace == nil {
		return context.Background()
	}
	return l.grace
}

// connect bootstraps, dials and serves one connection until it ends, and
// tells how long it was up (0 if it never was).
func (l *LongConnection) connect(ctx context.Context) (upFor time.Duration, err error) {
	// Shutdown abandons a connection not yet made; one made is served with
	// ctx, which tells a graceful end from a hard one.
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(l.quit, cancel)()
	wsURL, err := l.bootstrap(dctx)
	if err != nil {
		return 0, err
	}
	u, err := url.Parse(wsURL)
	if err != nil {
		return 0, errors.New("long connection: bootstrap answered a bad URL")
	}
	// service_id is an int32 on the wire; a URL without one is answered 0.
	service, _ := strconv.ParseInt(u.Query().Get("service_id"), 10, 32)
	conn, err := l.dial(dctx, wsURL)
	if err != nil {
		return 0, err
	}
	l.setUp(1)
	defer l.setUp(0)
	l.logger.Info("feishu long connection up", "device_id", u.Query().Get("device_id"))
	began := time.Now()
	err = l.serve(ctx, conn, int32(service))
	return max(time.Since(began), time.Nanosecond), err
}

// bootstrap asks for the WebSocket URL and the client's tuning.
func (l *LongConnection) bootstrap(ctx context.Context) (string, error) {
	body, _ := json.Marshal(map[string]string{"AppID": l.cfg.AppID, "AppSecret": l.cfg.AppSecret})
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, l.cfg.BaseURL+EndpointPath, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("long connection bootstrap: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("locale", "zh")
	resp, err := l.httpClient().Do(req)
	if err != nil {
		// The URL and the transport's words, never the body sent.
		return "", fmt.Errorf("long connection bootstrap: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("long connection bootstrap: http %d", resp.StatusCode)
	}
	var a struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
		Data struct {
			URL          string        `json:"URL"`
			ClientConfig *ClientConfig `json:"ClientConfig"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return "", fmt.Errorf("long connection bootstrap: answer is not JSON")
	}
	switch {
	case a.Code == codeBusy || a.Code == codeInternal:
		return "", fmt.Errorf("long connection bootstrap: code %d: %s", a.Code, a.Msg)
	case a.Code != 0:
		return "", fatalf("long connection bootstrap: code %d: %s", a.Code, a.Msg)
	case a.Data.URL == "":
		return "", errors.New("long connection bootstrap: answer has no URL")
	}
	if a.Data.ClientConfig != nil {
		l.apply(*a.Data.ClientConfig)
	}
	return a.Data.URL, nil
}

// httpClient is the caller's HTTP client without a Timeout, which the
// WebSocket library refuses; each request has its own deadline.
func (l *LongConnection) httpClient() *http.Client {
	c := *l.cfg.HTTPClient
	c.Timeout = 0
	return &c
}

// dial opens the WebSocket and classifies a refused handshake by the
// Handshake-* headers Feishu answers with.
func (l *LongConnection) dial(ctx context.Context, wsURL string) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	conn, resp, err := websocket.Dial(dctx, wsURL, &websocket.DialOptions{HTTPClient: l.httpClient()})
	if err == nil {
		conn.SetReadLimit(maxFrameBytes)
		return conn, nil
	}
	if resp == nil {
		// The URL carries a ticket: do not log it.
		return nil, fmt.Errorf("long connection dial: %v", redact(err, wsURL))
	}
	status, _ := strconv.Atoi(resp.Header.Get("Handshake-Status"))
	auth, _ := strconv.Atoi(resp.Header.Get("Handshake-Autherrcode"))
	msg := resp.Header.Get("Handshake-Msg")
	switch {
	case status == handshakeAuthFailed && auth == codeTooManyConns:
		return nil, fatalf("long connection handshake refused: status %d, code %d (too many connections): %s", status, auth, msg)
	case status == handshakeForbidden:
		return nil, fatalf("long connection handshake refused: status %d: %s", status, msg)
	case status != 0:
		return nil, fmt.Errorf("long connection handshake refused: status %d, code %d: %s", status, auth, msg)
	}
	return nil, fmt.Errorf("long connection handshake refused: http %d", resp.StatusCode)
}

// redact removes the dialled URL's query (device, ticket) from an error.
func redact(err error, rawURL string) string {
	s := err.Error()
	if u, perr := url.Parse(rawURL); perr == nil && u.RawQuery != "" {
		s = strings.ReplaceAll(s, u.RawQuery, "…")
	}
	return s
}

// serve runs one established connection: it pings, reads, dispatches
// callbacks and acks them, until the connection drops, the server falls
// silent, Shutdown is called, or ctx ends.
func (l *LongConnection) serve(ctx context.Context, conn *websocket.Conn, service int32) error {
	// Reads use their own context: cancelling a read closes the connection
	// at once, and on shutdown the close handshake comes first.
	rctx, stopRead := context.WithCancel(context.Background())
	defer stopRead()
	// Handlers end with Run's context, when Shutdown's grace is over, or
	// when this connection ends (their acks could not be sent).
	hctx, stopHandlers := context.WithCancel(ctx)
	defer stopHandlers()
	s := &session{l: l, conn: conn, service: service, hctx: hctx,
		parts: map[string]*parts{}, changed: make(chan struct{}, 1)}
	s.heard.Store(time.Now().UnixNano())

	readErr := make(chan error, 1)
	go func() { readErr <- s.read(rctx) }()
	// All goroutines of this connection end before serve returns.
	defer s.handlers.Wait()

	if err := s.ping(); err != nil {
		drop(conn, readErr)
		return err
	}
	interval := l.config().ping()
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			stopHandlers()
			l.close(conn, stopRead, l.closeTimeout)
			_ = readEnd(readErr) // the read ends with the close we asked for
			return nil
		case <-l.quit.Done():
			grace := l.graceContext()
			s.drain(ctx, grace, stopHandlers)
			wait := l.closeTimeout
			if d, ok := grace.Deadline(); ok {
				wait = min(wait, time.Until(d))
			}
			l.close(conn, stopRead, wait)
			_ = readEnd(readErr)
			return nil
		case err := <-readErr:
			_ = conn.CloseNow() // the read's error is the one that counts
			return fmt.Errorf("long connection read: %w", err)
		case <-s.changed:
			if n := l.config().ping(); n != interval {
				interval = n
				t.Reset(interval)
			}
		case <-t.C:
			// A server that misses two pongs in a row is gone, even if the
			// socket looks open.
			if since := time.Since(time.Unix(0, s.heard.Load())); since > 2*interval {
				drop(conn, readErr)
				return fmt.Errorf("long connection: server silent for %s", since.Round(time.Millisecond))
			}
			if err := s.ping(); err != nil {
				drop(conn, readErr)
				return err
			}
			t.Reset(interval)
		}
	}
}

// drop closes the connection at once and waits for the read to end.
func drop(conn *websocket.Conn, readErr <-chan error) {
	_ = conn.CloseNow() // a socket already closed is fine
	_ = readEnd(readErr)
}

// readEnd waits for the read goroutine. Once serve has closed the
// connection, the read's error only echoes that close, so callers drop it.
func readEnd(readErr <-chan error) error { return <-readErr }

// close sends a close frame and waits for the server's, at most wait;
// then it drops the connection.
func (l *LongConnection) close(conn *websocket.Conn, stopRead context.CancelFunc, wait time.Duration) {
	if wait <= 0 {
		stopRead()
		_ = conn.CloseNow() // no time left for the handshake
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = conn.Close(websocket.StatusNormalClosure, "")
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		stopRead()          // cancelling the read closes the socket
		_ = conn.CloseNow() // given up on: its close error tells nothing more
		<-done
	}
}

// session is one established connection.
type session struct {
	l       *LongConnection
	conn    *websocket.Conn
	service int32
	hctx    context.Context
	heard   atomic.Int64 // when the server was last heard, UnixNano
	changed chan struct{}
	parts   map[string]*parts // split payloads by message_id; read goroutine only

	mu       sync.Mutex // orders draining against handlers.Add
	draining bool       // Shutdown was called: take no more callbacks
	handlers sync.WaitGroup
	running  atomic.Int32 // callbacks being handled
}

// drain waits for the callbacks being handled to be acked, until grace or
// ctx ends; then it cancels those left, and waits for them to end.
func (s *session) drain(ctx, grace context.Context, cancel context.CancelFunc) {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	idle := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(idle)
	}()
	select {
	case <-idle:
		return
	case <-grace.Done():
	case <-ctx.Done():
	}
	n := int(s.running.Load())
	if n > 0 {
		s.l.logger.Warn("feishu long connection: shutdown grace over, cancelling the callbacks still being handled", "callbacks", n)
		s.l.mu.Lock()
		s.l.cancelled += n
		s.l.mu.Unlock()
	}
	cancel()
	<-idle
}

// parts collects a payload Feishu split into several frames.
type parts struct {
	got     [][]byte
	n       int
	arrived time.Time
}

func (s *session) write(f *frame) error {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if err := s.conn.Write(ctx, websocket.MessageBinary, f.Marshal()); err != nil {
		return fmt.Errorf("long connection write: %w", err)
	}
	return nil
}

func (s *session) ping() error {
	return s.write(&frame{Service: s.service, Method: frameControl, Headers: []header{{"type", "ping"}}})
}

// read handles the server's frames until the connection fails.
func (s *session) read(ctx context.Context) error {
	for {
		typ, b, err := s.conn.Read(ctx)
		if err != nil {
			return err
		}
		arrived := time.Now()
		s.heard.Store(arrived.UnixNano())
		if typ != websocket.MessageBinary {
			continue
		}
		f, err := unmarshalFrame(b)
		if err != nil {
			s.l.logger.Warn("feishu long connection: bad frame", "err", err)
			continue
		}
		switch f.Method {
		case frameControl:
			if f.get("type") == "pong" {
				if c, ok := parseClientConfig(f.Payload); ok {
					s.l.apply(c)
					select {
					case s.changed <- struct{}{}:
					default:
					}
				}
			}
		case frameData:
			s.data(f, arrived)
		}
	}
}

// data joins a data frame's parts and hands a whole callback to the
// handler in its own goroutine, so that pings and other clicks go on.
func (s *session) data(f frame, arrived time.Time) {
	if f.get("type") != "event" {
		// Old-style "card" frames and anything newer are not ours.
		return
	}
	payload := f.Payload
	sum, _ := strconv.Atoi(f.get("sum"))
	if sum > 1 {
		for id, p := range s.parts {
			if arrived.Sub(p.arrived) > partsTimeout {
				delete(s.parts, id)
			}
		}
		seq, err := strconv.Atoi(f.get("seq"))
		id := f.get("message_id")
		if err != nil || seq < 0 || seq >= sum {
			s.l.logger.Warn("feishu long connection: bad part", "message_id", id, "seq", f.get("seq"), "sum", sum)
			return
		}
		p := s.parts[id]
		if p == nil || len(p.got) != sum {
			p = &parts{got: make([][]byte, sum), arrived: arrived}
			s.parts[id] = p
		}
		if p.got[seq] == nil {
			p.n++
		}
		p.got[seq] = f.Payload
		if p.n < sum {
			return
		}
		delete(s.parts, id)
		payload = bytes.Join(p.got, nil)
		arrived = p.arrived
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		// Unanswered, Feishu gives up on it and the clicker may click again
		// (reaching another replica, or this one restarted): better than
		// an action cut short.
		s.l.logger.Info("feishu long connection: callback arrived while stopping, left unanswered", "message_id", f.get("message_id"))
		return
	}
	s.handlers.Add(1)
	s.running.Add(1)
	go func() {
		defer s.handlers.Done()
		defer s.running.Add(-1)
		s.handle(f, payload, arrived)
	}()
}

// handle runs the handler on one callback and acks its frame.
func (s *session) handle(f frame, payload []byte, arrived time.Time) {
	start := time.Now()
	code, data := ackCodeOK, []byte(nil)
	cb, _, err := decodeCallback(payload)
	if err != nil {
		s.l.logger.Warn("feishu long connection: callback refused", "message_id", f.get("message_id"), "err", err)
		s.l.cfg.Refused.tell(err.Error())
		code = ackCodeHandlerFailed
	} else {
		ctx, cancel := context.WithDeadline(s.hctx, arrived.Add(handlerBudget))
		a, err := call(ctx, s.l.cfg.Handler, cb)
		cancel()
		if err == nil {
			data, err = encodeAnswer(a)
		}
		if err != nil {
			s.l.logger.Error("feishu long connection: card callback failed", "event_id", cb.EventID, "err", err)
			code, data = ackCodeHandlerFailed, nil
		}
	}
	ack := struct {
		Code    int               `json:"code"`
		Headers map[string]string `json:"headers"`
		Data    []byte            `json:"data"` // base64 in JSON, as Feishu reads it
	}{code, nil, data}
	f.Payload, _ = json.Marshal(ack)
	f.Headers = append(append([]header{}, f.Headers...), header{"biz_rt", strconv.FormatInt(time.Since(start).Milliseconds(), 10)})
	if err := s.write(&f); err != nil && s.hctx.Err() == nil {
		s.l.logger.Warn("feishu long connection: ack not sent", "message_id", f.get("message_id"), "err", err)
	}
}
