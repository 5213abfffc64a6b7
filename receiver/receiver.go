// Package receiver is the service's HTTP intake: it decodes and validates
// Alertmanager's webhook, picks the receivers, delivers the notification to
// each one exactly once (dedupe, per-group locking, reply chains) and
// answers Alertmanager so that its retries do the right thing.
package receiver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/oncall"
	"github.com/alertmanager-feishu/alertmanager-feishu/render"
	"github.com/alertmanager-feishu/alertmanager-feishu/route"
	"github.com/alertmanager-feishu/alertmanager-feishu/state"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// Sender delivers messages to Feishu.
type Sender interface {
	// Send delivers one message and returns its message ID.
	Send(ctx context.Context, m feishu.Message) (string, error)
	// UpdateCard replaces a sent card in place (im/v1).
	UpdateCard(ctx context.Context, messageID string, card feishu.Card) error
}

// Pipeline is everything built from one routing.yaml. A reload replaces it
// whole; a notification uses the one it started with to the end.
type Pipeline struct {
	Config   *config.Config
	Route    *route.Route
	Renderer *render.Renderer
	Sender   Sender
	Mentions *oncall.Policy
	// Token is the bearer token a webhook must carry; "" accepts any.
	Token string
	// Bots are the custom bot receivers' webhooks, by receiver name, read
	// when the configuration is loaded.
	Bots map[string]feishu.Webhook
}

// NewPipeline builds the pipeline of one configuration. Everything that can
// fail is done here, so that a bad file is refused before it is used: the
// templates of every receiver are executed once against a sample group.
// The metrics and the pacer outlive the pipeline: a reload keeps them.
func NewPipeline(cfg *config.Config, m *feishu.Metrics, pacer *feishu.Pacer, logger *slog.Logger) (*Pipeline, error) {
	renderer, err := render.New(cfg.Templates, cfg.Feishu.API, logger)
	if err != nil {
		return nil, err
	}
	if err := renderer.Check(cfg.Receivers); err != nil {
		return nil, err
	}
	secret, err := cfg.Feishu.Secret()
	if err != nil {
		return nil, err
	}
	token, err := cfg.Intake.Token()
	if err != nil {
		return nil, err
	}
	client, err := feishu.New(cfg.Feishu, secret, m, pacer, logger)
	if err != nil {
		return nil, err
	}
	var lookup oncall.Lookup = client
	if cfg.Feishu.AppID == "" {
		lookup = nil // custom bots alone: nothing to look emails up with
	}
	mentions, err := oncall.NewPolicy(cfg.OnCall, lookup, logger)
	if err != nil {
		return nil, err
	}
	bots := map[string]feishu.Webhook{}
	for _, rc := range cfg.Receivers {
		if !rc.IsBot() {
			continue
		}
		url, secret, err := rc.Webhook()
		if err != nil {
			return nil, err
		}
		bots[rc.Name] = feishu.Webhook{URL: url, Secret: secret}
	}
	return &Pipeline{Config: cfg, Route: route.New(cfg.Route), Renderer: renderer, Sender: client, Mentions: mentions, Token: token, Bots: bots}, nil
}

// Options configure a Handler.
type Options struct {
	Store        state.Store
	MaxBodyBytes int64
	// Timeout is how long a request waits for its deliveries before it
	// answers 503 for those still under way.
	Timeout time.Duration
	// MaxDelay bounds one delivery: its wait for the group's lock and for a
	// send slot under the rate limits, and its retries. A delivery runs
	// detached from the request that started it, so that a slot is not
	// given up when the request's Timeout passes: Alertmanager's retries of
	// the same notification join it, and learn how it went.
	MaxDelay   time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Handler serves the webhook endpoints.
type Handler struct {
	pipeline atomic.Pointer[Pipeline]
	store    state.Store
	maxBody  int64
	timeout  time.Duration
	maxDelay time.Duration
	logger   *slog.Logger
	now      func() time.Time

	// Deliveries under way, by notification key (which names the
	// receiver): a retry joins the delivery instead of starting another.
	mu      sync.Mutex
	running map[string]*delivery
	wg      sync.WaitGroup
	base    context.Context // deliveries' parent; cancelled by Shutdown when its grace runs out
	cancel  context.CancelFunc

	notifications *prometheus.CounterVec
	failures      *prometheus.CounterVec
	unresolved    *prometheus.CounterVec
	rootUpdates   *prometheus.CounterVec
}

// New returns a handler that delivers with p until SetPipeline replaces it.
func New(p *Pipeline, o Options) *Handler {
	h := &Handler{
		store:    o.Store,
		maxBody:  o.MaxBodyBytes,
		timeout:  o.Timeout,
		maxDelay: max(o.MaxDelay, o.Timeout),
		logger:   o.Logger,
		now:      time.Now,
		running:  map[string]*delivery{},
		notifications: promauto.With(o.Registerer).NewCounterVec(prometheus.CounterOpts{
			Name: "alertmanager_feishu_notifications_total",
			Help: "Notifications handled per receiver: sent, deduped (an exact repeat of one already delivered) or failed.",
		}, []string{"receiver", "status"}),
		failures: promauto.With(o.Registerer).NewCounterVec(prometheus.CounterOpts{
			Name: "alertmanager_feishu_notification_failures_total",
			Help: "Notifications not delivered to a receiver, by class: transient (answered 503, Alertmanager retries) or permanent (answered 422, needs the operator).",
		}, []string{"receiver", "class"}),
		unresolved: promauto.With(o.Registerer).NewCounterVec(prometheus.CounterOpts{
			Name: "alertmanager_feishu_mentions_unresolved_total",
			Help: "People a message should have mentioned but named in plain text instead, per receiver and reason: not_found (Feishu knows no user by that email), lookup_failed, or no_app (custom bots without an app to look emails up with).",
		}, []string{"receiver", "reason"}),
		rootUpdates: promauto.With(o.Registerer).NewCounterVec(prometheus.CounterOpts{
			Name: "alertmanager_feishu_root_updates_total",
			Help: "Root cards updated in place to show their group resolved, per receiver and result (updated, failed).",
		}, []string{"receiver", "result"}),
	}
	promauto.With(o.Registerer).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "alertmanager_feishu_chains",
		Help: "Open reply chains in the state store.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := h.store.Chains(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	h.base, h.cancel = context.WithCancel(context.Background())
	h.pipeline.Store(p)
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

// SetPipeline makes p the pipeline for notifications that arrive from now on.
func (h *Handler) SetPipeline(p *Pipeline) { h.pipeline.Store(p) }

// Register adds the webhook endpoints to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /webhook", func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, "") })
	mux.HandleFunc("POST /webhook/{receiver}", func(w http.ResponseWriter, r *http.Request) {
		h.serve(w, r, r.PathValue("receiver"))
	})
}

// result is the outcome of one notification at one receiver.
type result struct {
	receiver string
	target   feishu.Target
	status   string // sent, deduped, failed; pending if still under way when answered
	class    feishu.Class
	err      error
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, name string) {
	pl := h.pipeline.Load()
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
	p, err := webhook.Decode(http.MaxBytesReader(w, r.Body, h.maxBody))
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

	var receivers []*config.Receiver
	if name != "" {
		rc := pl.Config.Receiver(name)
		if rc == nil {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no receiver %q", name))
			return
		}
		receivers = []*config.Receiver{rc}
	} else {
		for _, n := range pl.Route.Receivers(p.CommonLabelSet()) {
			receivers = append(receivers, pl.Config.Receiver(n))
		}
	}

	// Receivers are independent (each has its own chains and dedupe
	// keys): one waiting for its chat's slot or retrying must not spend
	// the others' time.
	deliveries := make([]*delivery, len(receivers))
	for i, rc := range receivers {
		deliveries[i] = h.start(pl, rc, p)
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
	done     chan struct{}
	res      result // set before done is closed
}

// pending is the result of a delivery still under way.
func (d *delivery) pending() result {
	return result{
		receiver: d.receiver, target: d.target, status: "pending", class: feishu.Transient,
		err: errors.New("still being delivered (waiting for the group, a send slot under the rate limits, or a retry); a retry of this notification will wait for it"),
	}
}

// start begins delivering p to rc, or joins the delivery of the same
// notification already under way.
func (h *Handler) start(pl *Pipeline, rc *config.Receiver, p *webhook.Payload) *delivery {
	key := webhook.NotificationKey(rc.Name, p)
	kind, id := rc.Target()
	target := feishu.Target{Kind: kind, ID: id}
	h.mu.Lock()
	defer h.mu.Unlock()
	if d, ok := h.running[key]; ok {
		return d
	}
	d := &delivery{receiver: rc.Name, target: target, done: make(chan struct{})}
	h.running[key] = d
	h.wg.Go(func() {
		ctx, cancel := context.WithTimeout(h.base, h.maxDelay)
		d.res = h.deliver(ctx, pl, rc, p, key, target)
		cancel()
		h.mu.Lock()
		delete(h.running, key)
		h.mu.Unlock()
		close(d.done)
	})
	return d
}

// deliver sends notification key, p to rc's target, unless it was
// delivered already, keeping the group's reply chain.
func (h *Handler) deliver(ctx context.Context, pl *Pipeline, rc *config.Receiver, p *webhook.Payload, key string, target feishu.Target) (res result) {
	chain := state.ChainKey(rc.Name, target.String(), p.GroupKey)
	logger := h.logger.With("receiver", rc.Name, "group_key", p.GroupKey, "status", p.Status)
	defer func() {
		h.notifications.WithLabelValues(rc.Name, res.status).Inc()
		if res.err != nil {
			h.failures.WithLabelValues(rc.Name, res.class.String()).Inc()
			attrs := []any{"target", target.String(), "class", res.class, "err", res.err}
			var fe *feishu.Error
			if errors.As(res.err, &fe) {
				attrs = append(attrs, "code", fe.Code, "log_id", fe.LogID)
			}
			logger.Error("notification not delivered", attrs...)
		}
	}()
	fail := func(class feishu.Class, err error) result {
		return result{receiver: rc.Name, target: target, status: "failed", class: class, err: err}
	}

	// One notification of a group at a time: two concurrent first
	// notifications must not both become a root.
	unlock, err := h.store.Lock(ctx, chain)
	if err != nil {
		return fail(feishu.Transient, fmt.Errorf("lock group: %w", err))
	}
	defer unlock()

	rec, err := h.store.Load(ctx, chain, key)
	if err != nil {
		return fail(feishu.Transient, err)
	}
	if rec.Delivered {
		logger.Debug("notification already delivered")
		return result{receiver: rc.Name, target: target, status: "deduped"}
	}
	var resolution string
	if p.Resolved() {
		resolution = webhook.ResolutionKey(rc.Name, p)
		if rec.Root == "" && rec.Closed.Root != "" {
			if rec.Closed.Resolution == resolution {
				logger.Debug("group already resolved by the same alerts with another endsAt")
				return result{receiver: rc.Name, target: target, status: "deduped"}
			}
			// A late resolution of other alerts still belongs to the
			// incident it ends.
			rec.Root = rec.Closed.Root
		}
	}

	mentions := pl.Mentions.For(ctx, rc, p)
	for _, u := range mentions.Unresolved {
		h.unresolved.WithLabelValues(rc.Name, u.Reason).Inc()
	}
	// A custom bot cannot reply: its "chain" only remembers when the
	// group's first message went, which later messages name instead.
	bot := rc.IsBot()
	var first time.Time
	if bot {
		first = botFirstSent(rec.Root)
	}
	msg, err := pl.Renderer.RenderAfter(p, rc, mentions, first)
	if err != nil {
		return fail(feishu.Permanent, err)
	}
	msg.Target = target
	switch {
	case bot:
		msg.Webhook = pl.Bots[rc.Name]
	case pl.Config.Feishu.API == config.APIIMv1:
		msg.RootID = rec.Root
		// The uuid is remembered before the send, so that a retry after a
		// crash or a timeout, when Feishu may have the message already,
		// sends with the same one and Feishu keeps a single message.
		msg.UUID = rec.Attempt
		if msg.UUID == "" {
			msg.UUID = attemptUUID(key)
			if err := h.store.Begin(ctx, chain, key, msg.UUID, h.now()); err != nil {
				return fail(feishu.Transient, err)
			}
		}
	default:
		msg.RootID = rec.Root
	}
	msgID, err := pl.Sender.Send(ctx, msg)
	if msg.RootID != "" && feishu.Classify(err) == feishu.RootGone {
		logger.Info("chain root is gone on Feishu's side, starting a new chain", "root", rec.Root, "err", err)
		msg.RootID = ""
		msgID, err = pl.Sender.Send(ctx, msg)
	}
	if err != nil {
		class := feishu.Classify(err)
		if class == feishu.TokenRejected || class == feishu.RootGone {
			// A second token rejection, or a root missing without a
			// chain: neither is the operator's to fix; let Alertmanager
			// retry.
			class = feishu.Transient
		}
		return fail(class, err)
	}

	root := msg.RootID
	switch {
	case bot && rec.Root != "":
		root = rec.Root
	case bot:
		root = botRoot(h.now())
	case root == "":
		root = msgID
	}
	err = h.store.Commit(ctx, state.Delivery{
		Chain: chain, Notification: key, Root: root, Close: p.Resolved(), Resolution: resolution, At: h.now(),
	})
	if err != nil {
		// Feishu has the message but the state does not. A 200 now would
		// leave the chain and the dedupe key unrecorded for good; a 503
		// lets Alertmanager's retry record them, at the risk of a second
		// copy of this message on v4, which has no idempotency key.
		return fail(feishu.Transient, fmt.Errorf("message %s sent but not recorded: %w", msgID, err))
	}
	logger.Debug("notification delivered", "message_id", msgID, "root", root)
	if p.Resolved() && root != msgID && !bot {
		h.updateRoot(ctx, pl, rc, root, msg, logger)
	}
	return result{receiver: rc.Name, target: target, status: "sent"}
}

// botSentPrefix marks what a custom bot's chain holds instead of a root
// message: when the group's first message was sent.
const botSentPrefix = "custom-bot-first-sent:"

func botRoot(t time.Time) string { return botSentPrefix + t.UTC().Format(time.RFC3339Nano) }

// botFirstSent reads botRoot's time; zero for none.
func botFirstSent(root string) time.Time {
	s, ok := strings.CutPrefix(root, botSentPrefix)
	if !ok {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// updateRoot shows a resolved group on its chain's root card, so that the
// chat shows at a glance which incidents are still open. It is a courtesy:
// the notification is delivered whether it works or not.
func (h *Handler) updateRoot(ctx context.Context, pl *Pipeline, rc *config.Receiver, root string, msg feishu.Message, logger *slog.Logger) {
	card, ok := msg.Content.(feishu.Card)
	if !ok || pl.Config.Feishu.API != config.APIIMv1 {
		return
	}
	if err := pl.Sender.UpdateCard(ctx, root, card); err != nil {
		h.rootUpdates.WithLabelValues(rc.Name, "failed").Inc()
		logger.Warn("root card not updated to resolved", "root", root, "err", err)
		return
	}
	h.rootUpdates.WithLabelValues(rc.Name, "updated").Inc()
}

// attemptUUID is the idempotency key of one attempt at a notification: the
// start of the notification key, so that logs and Feishu's side can be
// matched up, and a random part, so that a later repeat of the same
// notification (after the dedupe window) is a new message to Feishu.
func attemptUUID(key string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return key[:32] + "-" + hex.EncodeToString(b)
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
		if r.err == nil {
			continue
		}
		f := failure{Receiver: r.receiver, Target: r.target.String(), Class: r.class.String(), Error: r.err.Error()}
		var fe *feishu.Error
		if errors.As(r.err, &fe) {
			f.Code, f.Msg = fe.Code, fe.Msg
		}
		failures = append(failures, f)
		errs = append(errs, fmt.Sprintf("receiver %s (%s): %v", r.receiver, r.target, r.err))
		switch {
		case r.class == feishu.Permanent && code == http.StatusOK:
			code = http.StatusUnprocessableEntity
		case r.class != feishu.Permanent:
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
