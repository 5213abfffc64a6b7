// Package receiver is the service's HTTP intake of Alertmanager's webhooks:
// it authenticates and decodes a notification, picks the receivers, hands
// each delivery to the incident core (a retry of a notification still
// under way joins it) and answers Alertmanager so that its retries do the
// right thing.
package receiver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/alertmanager-feishu/alertmanager-feishu/core"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// Options configure a Handler.
type Options struct {
	MaxBodyBytes int64
	// Timeout is how long a request waits for its deliveries before it
	// answers 503 for those still under way.
	Timeout time.Duration
	// MaxDelay bounds one delivery: its wait for the group's lock and for a
	// send slot under the rate limits, and its retries. A delivery runs
	// detached from the request that started it, so that a slot is not
	// given up when the request's Timeout passes: Alertmanager's retries of
	// the same notification join it, and learn how it went.
	MaxDelay time.Duration
	Logger   *slog.Logger
	// Registerer takes the intake's metrics; nil registers them nowhere.
	Registerer prometheus.Registerer
}

// Handler serves the webhook endpoints.
type Handler struct {
	core     *core.Core
	maxBody  int64
	timeout  time.Duration
	maxDelay time.Duration
	logger   *slog.Logger

	// Deliveries under way, by notification key (which names the
	// receiver): a retry joins the delivery instead of starting another.
	mu      sync.Mutex
	running map[string]*delivery
	wg      sync.WaitGroup
	base    context.Context // deliveries' parent; cancelled by Shutdown when its grace runs out
	cancel  context.CancelFunc

	requests *prometheus.CounterVec
	inFlight prometheus.Gauge
}

// New returns a handler that hands notifications to c.
func New(c *core.Core, o Options) *Handler {
	h := &Handler{
		core:     c,
		maxBody:  o.MaxBodyBytes,
		timeout:  o.Timeout,
		maxDelay: max(o.MaxDelay, o.Timeout),
		logger:   o.Logger,
		running:  map[string]*delivery{},
		requests: promauto.With(o.Registerer).NewCounterVec(prometheus.CounterOpts{
			Name: "alertmanager_feishu_intake_requests_total",
			Help: "Requests answered on the intake's paths (/webhook, /webhook/{receiver}, /feishu/callback), by path and HTTP status code.",
		}, []string{"path", "code"}),
		inFlight: promauto.With(o.Registerer).NewGauge(prometheus.GaugeOpts{
			Name: "alertmanager_feishu_deliveries_in_flight",
			Help: "Deliveries of a notification to a receiver under way: waiting for the group, a send slot or a retry, or sending. A retry of the same notification joins its delivery and is not counted again.",
		}),
	}
	h.base, h.cancel = context.WithCancel(context.Background())
	return h
}

// Shutdown waits for the deliveries under way to finish, until ctx is done;
// then it cancels the rest and returns ctx's error. Alertmanager has not
// had a 200 for those, so its retries deliver them after the restart.
func (h *Handler) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		h.cancel()
		<-done
		return ctx.Err()
	}
}

// Register adds the webhook endpoints to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("POST /webhook", h.Instrument("/webhook", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.serve(w, r, "")
	})))
	// The path label is the pattern, not the receiver's name: a client
	// posting to made-up names must not make up series.
	mux.Handle("POST /webhook/{receiver}", h.Instrument("/webhook/{receiver}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.serve(w, r, r.PathValue("receiver"))
	})))
}

// Instrument counts next's answers in alertmanager_feishu_intake_requests_total
// under path, which must be one of a few fixed names.
func (h *Handler) Instrument(path string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		h.requests.WithLabelValues(path, strconv.Itoa(sw.code)).Inc()
	})
}

// statusWriter remembers the status code of the answer it writes.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// RequireToken refuses requests to next that lack the intake's bearer
// token, when the configuration sets one, as the webhook does: whoever may
// not post alerts may not reload the configuration or profile the process
// either.
func (h *Handler) RequireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !authorized(r, h.core.Pipeline().Token) {
			h.logger.Warn("rejected request: missing or wrong bearer token", "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="alertmanager-feishu"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// result is the outcome of one notification at one receiver.
type result struct {
	receiver string
	target   feishu.Target
	status   string // sent, deduped, failed; pending if still under way when answered
	core.Outcome
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, name string) {
	pl := h.core.Pipeline()
	if !authorized(r, pl.Token) {
		h.logger.Warn("rejected webhook: missing or wrong bearer token", "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Bearer realm="alertmanager-feishu"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	if r.ContentLength > h.maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes is over the limit of %d", r.ContentLength, h.maxBody))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	var p *webhook.Payload
	if err == nil {
		p, err = webhook.DecodeBytes(body)
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		var invalid *webhook.InvalidError
		switch {
		case errors.As(err, &tooLarge):
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is over the limit of %d bytes", h.maxBody))
		case errors.As(err, &invalid):
			h.logger.Warn("rejected webhook", "err", err, "remote", r.RemoteAddr)
			writeError(w, http.StatusBadRequest, invalid.Error())
		default:
			writeError(w, http.StatusBadRequest, "read body: "+err.Error())
		}
		return
	}

	var receivers []*core.Receiver
	if name != "" {
		rc := pl.Receiver(name)
		if rc == nil {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no receiver %q", name))
			return
		}
		receivers = []*core.Receiver{rc}
	} else {
		receivers = pl.Routed(pl.Route.Receivers(p.CommonLabelSet()))
	}

	// Receivers are independent (each has its own chains and dedupe
	// keys): one waiting for its chat's slot or retrying must not spend
	// the others' time.
	deliveries := make([]*delivery, len(receivers))
	for i, rc := range receivers {
		deliveries[i] = h.start(rc, p, body)
	}
	wait, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	results := make([]result, len(receivers))
	for i, d := range deliveries {
		select {
		case <-d.done:
			results[i] = d.res
		case <-wait.Done():
			results[i] = d.pending()
		}
	}
	h.answer(w, results)
}

// delivery is one notification on its way to one receiver.
type delivery struct {
	receiver string
	target   feishu.Target
	attempts feishu.Attempts // its calls to Feishu that failed so far
	done     chan struct{}
	res      result // set before done is closed
}

// pending is the result of a delivery still under way. It names why the
// delivery's last call to Feishu failed, if one did: the answer is all
// Alertmanager logs of a delivery that is slow because Feishu is down or
// refuses.
func (d *delivery) pending() result {
	err := errors.New("still being delivered (waiting for the group, a send slot under the rate limits, or a retry); a retry of this notification will wait for it")
	if last := d.attempts.Last(); last != nil {
		err = fmt.Errorf("still being delivered (retrying; a retry of this notification will wait for it); last attempt: %w", last)
	}
	return result{
		receiver: d.receiver, target: d.target, status: "pending",
		Outcome: core.Outcome{Status: core.Failed, Err: err},
	}
}

// start begins delivering p to rc, or joins the delivery of the same
// notification already under way.
func (h *Handler) start(rc *core.Receiver, p *webhook.Payload, body []byte) *delivery {
	key := webhook.NotificationKey(rc.Name(), p)
	h.mu.Lock()
	defer h.mu.Unlock()
	if d, ok := h.running[key]; ok {
		return d
	}
	d := &delivery{receiver: rc.Name(), target: rc.Target, done: make(chan struct{})}
	h.running[key] = d
	h.inFlight.Inc()
	h.wg.Go(func() {
		ctx, cancel := context.WithTimeout(feishu.WithAttempts(h.base, &d.attempts), h.maxDelay)
		out := h.core.Notify(ctx, rc, core.Notification{Payload: p, Key: key, Body: body})
		cancel()
		d.res = result{receiver: d.receiver, target: d.target, status: string(out.Status), Outcome: out}
		h.mu.Lock()
		delete(h.running, key)
		h.mu.Unlock()
		h.inFlight.Dec()
		close(d.done)
	})
	return d
}

// answer tells Alertmanager how it went: 200 if every receiver has the
// notification; 503 if any failure may pass, so that Alertmanager retries
// soon; 422 if the only failures are permanent, so that it does not hammer
// but re-sends at its next group_interval. A failure names the receiver,
// the target and Feishu's code and message, which Alertmanager logs.
func (h *Handler) answer(w http.ResponseWriter, results []result) {
	code := http.StatusOK
	var errs []string
	var failures []failure
	summary := map[string]string{}
	for _, r := range results {
		summary[r.receiver] = r.status
		if r.Err == nil {
			continue
		}
		class := "transient"
		if r.Permanent {
			class = "permanent"
		}
		f := failure{Receiver: r.receiver, Target: r.target.String(), Class: class, Error: r.Err.Error()}
		var fe *feishu.Error
		if errors.As(r.Err, &fe) {
			f.Code, f.Msg = fe.Code, fe.Msg
		}
		failures = append(failures, f)
		errs = append(errs, fmt.Sprintf("receiver %s (%s): %v", r.receiver, r.target, r.Err))
		switch {
		case r.Permanent && code == http.StatusOK:
			code = http.StatusUnprocessableEntity
		case !r.Permanent:
			code = http.StatusServiceUnavailable
		}
	}
	if code != http.StatusOK {
		writeJSON(w, code, map[string]any{"error": strings.Join(errs, "; "), "failures": failures, "receivers": summary})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"receivers": summary})
}

// failure is one receiver's failure in an answer.
type failure struct {
	Receiver string `json:"receiver"`
	Target   string `json:"target"`
	Class    string `json:"class"` // transient or permanent
	Code     int    `json:"code,omitempty"`
	Msg      string `json:"msg,omitempty"`
	Error    string `json:"error"`
}

// authorized reports whether r carries token as its bearer token (the
// scheme's name in any case, as HTTP has it). The two are compared as
// hashes in constant time, so that the answer's timing tells nothing of the
// token, its length included.
func authorized(r *http.Request, token string) bool {
	if token == "" {
		return true
	}
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	want, have := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(have[:], want[:]) == 1
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
