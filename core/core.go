// Package core is the incident core: it owns an incident's life. Each entry
// point (the webhook intake today; card actions and timers next) decodes
// and authenticates its input and hands the core one event; under the
// chain's lock the core loads the incident record, decides, renders, sends
// and commits, and classifies how it went for the entry point's answer.
package core

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/alertmanager-feishu/alertmanager-feishu/state"
)

// Core delivers notifications and keeps their incidents.
type Core struct {
	store    state.Store
	pipeline atomic.Pointer[Pipeline]
	logger   *slog.Logger
	now      func() time.Time

	// Work that goes on after its event was answered (a card updated, an
	// action recorded in the chain); Shutdown waits for it.
	background sync.WaitGroup
	base       context.Context
	cancel     context.CancelFunc

	notifications *prometheus.CounterVec
	failures      *prometheus.CounterVec
	unresolved    *prometheus.CounterVec
	degraded      *prometheus.CounterVec
	rootUpdates   *prometheus.CounterVec
	actions       *prometheus.CounterVec
	escalations   *prometheus.CounterVec
	buzzRefused   *prometheus.CounterVec

	stepRetries stepRetries
	heldSteps   heldSteps
}

// Options configure a Core.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock; nil is time.Now. Tests that replay old state set it.
	Now func() time.Time
}

// New returns a core that keeps incidents in store and delivers with p
// until SetPipeline replaces it.
func New(store state.Store, p *Pipeline, o Options) *Core {
	c := &Core{
		store:  store,
		logger: o.Logger,
		now:    o.Now,
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
			Help: "People a message should have mentioned but named in plain text instead, per receiver and reason: not_found (Feishu knows no user by that email), lookup_failed, no_app (custom bots without an app to look emails up with), refused (Feishu refused the message for its mentions, sent again without them) or all_refused (likewise @all, dropped).",
		}, []string{"receiver", "reason"}),
		degraded: promauto.With(o.Registerer).NewCounterVec(prometheus.CounterOpts{
			Name: "alertmanager_feishu_degraded_total",
			Help: "Notifications delivered in a lesser form after Feishu refused them, per receiver and reason: size (refused for its size, sent again cut smaller), root_gone (the reply to the chain's root refused, sent as a new root) or uuid_reused (an im/v1 resend after a lost answer refused, taken as delivered with its message ID unknown; the group's next notification starts a new root). Mentions Feishu refused are counted in alertmanager_feishu_mentions_unresolved_total.",
		}, []string{"receiver", "reason"}),
		rootUpdates: promauto.With(o.Registerer).NewCounterVec(prometheus.CounterOpts{
			Name: "alertmanager_feishu_root_updates_total",
			Help: "Root cards updated in place to show their group resolved, per receiver and result (updated, failed).",
		}, []string{"receiver", "result"}),
		actions: promauto.With(o.Registerer).NewCounterVec(prometheus.CounterOpts{
			Name: "alertmanager_feishu_actions_total",
			Help: "Clicks of card buttons, per action (ack, silence, unsilence; unknown when refused before the action was known) and result: done, duplicate (done before, nothing changed), refused (not allowed, not valid, the incident resolved, or Alertmanager refused or did not answer; nothing done) or failed (the incident stayed busy, or the state failed; the action not recorded; the clicker may try again).",
		}, []string{"action", "result"}),
		escalations: promauto.With(o.Registerer).NewCounterVec(prometheus.CounterOpts{
			Name: "alertmanager_feishu_escalations_total",
			Help: "Escalation steps fired, per receiver and step (from 1): each step of an incident fires once.",
		}, []string{"receiver", "step"}),
		buzzRefused: promauto.With(o.Registerer).NewCounterVec(prometheus.CounterOpts{
			Name: "alertmanager_feishu_escalation_buzz_refused_total",
			Help: "People an escalation step should have buzzed but Feishu did not (not in the chat, outside the app's availability, quota used up, or the call failed), per receiver and kind (app, sms, phone). They are still mentioned.",
		}, []string{"receiver", "kind"}),
	}
	c.base, c.cancel = context.WithCancel(context.Background())
	if c.now == nil {
		c.now = time.Now
	}
	promauto.With(o.Registerer).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "alertmanager_feishu_chains",
		Help: "Open reply chains in the state store.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := c.store.Chains(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	if o.Registerer != nil {
		o.Registerer.MustRegister(incidentsCollector{c})
	}
	c.pipeline.Store(p)
	return c
}

// incidentsCollector is alertmanager_feishu_incidents{state}: the store's
// census, read once per scrape.
type incidentsCollector struct{ c *Core }

var incidentsDesc = prometheus.NewDesc("alertmanager_feishu_incidents",
	"Open incidents by state: silenced (a silence from the card in force), else acknowledged, else firing.",
	[]string{"state"}, nil)

func (ic incidentsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- incidentsDesc }

func (ic incidentsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	census, err := ic.c.store.Census(ctx, ic.c.now())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(incidentsDesc, err)
		return
	}
	for state, n := range map[string]int{"firing": census.Firing, "acknowledged": census.Acknowledged, "silenced": census.Silenced} {
		ch <- prometheus.MustNewConstMetric(incidentsDesc, prometheus.GaugeValue, float64(n), state)
	}
}

// Pipeline is the pipeline that events arriving now are handled with.
func (c *Core) Pipeline() *Pipeline { return c.pipeline.Load() }

// SetPipeline makes p the pipeline for events that arrive from now on. The
// timers of open incidents whose receiver's escalation it changes (every
// receiver's with an escalation, on the first) follow it, in the
// background.
func (c *Core) SetPipeline(p *Pipeline) {
	old := c.pipeline.Swap(p)
	if changed := escalationsChanged(old, p); len(changed) > 0 {
		c.background.Go(func() { c.retimeReceivers(c.base, changed) })
	}
}

// Shutdown waits for the work that goes on after its event was answered,
// until ctx is done; then it cancels the rest and returns ctx's error.
func (c *Core) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() { c.background.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		c.cancel()
		<-done
		return ctx.Err()
	}
}

// Ping reports whether the core's state is usable.
func (c *Core) Ping(ctx context.Context) error { return c.store.Ping(ctx) }
