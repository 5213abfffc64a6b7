package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/version"

	"github.com/alertmanager-feishu/alertmanager-feishu/actions"
	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/core"
)

// callbacks receives card clicks by the configured transport and hands them
// to the incident core: it keeps the long connection to Feishu up, or
// serves POST /feishu/callback, and follows reloads (a changed transport,
// app or secret replaces the connection; anything else leaves it be).
type callbacks struct {
	core   *core.Core
	logger *slog.Logger
	up     prometheus.Gauge

	http atomic.Pointer[actions.HTTPCallback] // nil unless transport http
	next *plan                                // check's, for apply; under the coordinator's lock

	mu      sync.Mutex
	running *connection // the long connection, if any
	wg      sync.WaitGroup
}

// reloadGrace is how long a reload that replaces the long connection lets
// the clicks in flight on the old one finish: Feishu waits 3 s for an
// answer, so none needs longer.
const reloadGrace = 3 * time.Second

// connection is a running long connection and what it was made from.
type connection struct {
	settings connectionSettings
	lc       *actions.LongConnection
	done     chan struct{}
}

// connectionSettings are what a long connection depends on: a reload that
// changes none of them keeps it.
type connectionSettings struct {
	BaseURL, AppID, Secret string
	HTTPConfig             commoncfg.HTTPClientConfig
}

func newCallbacks(c *core.Core, reg prometheus.Registerer, logger *slog.Logger) *callbacks {
	return &callbacks{
		core:   c,
		logger: logger,
		up: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "alertmanager_feishu_callback_connection_up",
			Help: "Whether the long connection that receives card callbacks from Feishu is up (1) or not (0); 0 too when actions are not on the long connection.",
		}),
	}
}

// plan is what apply does for a configuration, made by check beforehand:
// what can fail (reading the callback's secrets, the app secret, building
// the HTTP client) fails there, before any part of the service has taken
// the configuration, so that a refused reload leaves the callbacks as they
// were, as it leaves the pipeline.
type plan struct {
	http     *actions.HTTPCallback // transport http
	settings *connectionSettings   // the long connection
	client   *http.Client
}

// check prepares the plan for cfg; subscribed before every other
// subscriber.
func (cb *callbacks) check(cfg *config.Config) error {
	cb.next = nil
	a := cfg.Actions
	p := &plan{}
	switch {
	case a == nil:
	case a.Transport == config.TransportHTTP:
		token, key, err := a.Secrets()
		if err != nil {
			return err
		}
		p.http = actions.NewHTTPCallback(token, key, cb.core, cb.logger, cb.core.RefusedCallback)
	default:
		secret, err := cfg.Feishu.Secret()
		if err != nil {
			return err
		}
		p.settings = &connectionSettings{BaseURL: cfg.Feishu.BaseURL, AppID: cfg.Feishu.AppID, Secret: secret, HTTPConfig: cfg.Feishu.HTTPConfig}
		p.client, err = commoncfg.NewClientFromConfig(p.settings.HTTPConfig, "feishu-callbacks",
			commoncfg.WithUserAgent(version.ComponentUserAgent(Name)))
		if err != nil {
			return err
		}
	}
	cb.next = p
	return nil
}

// apply carries out the plan check made for the configuration accepted.
func (cb *callbacks) apply(*config.Config) error {
	p := cb.next
	cb.next = nil
	if p == nil {
		return errors.New("card callbacks: configuration applied without being checked")
	}
	cb.http.Store(p.http)
	if p.settings == nil {
		cb.replaced()
		return nil
	}
	cb.mu.Lock()
	same := cb.running != nil && reflect.DeepEqual(cb.running.settings, *p.settings)
	cb.mu.Unlock()
	if same {
		return nil
	}
	cb.replaced()
	s := *p.settings
	lc := actions.NewLongConnection(actions.LongConnectionConfig{
		BaseURL: s.BaseURL, AppID: s.AppID, AppSecret: s.Secret, HTTPClient: p.client,
		Logger: cb.logger, Up: cb.up, Handler: cb.core, Refused: cb.core.RefusedCallback,
	})
	conn := &connection{settings: s, lc: lc, done: make(chan struct{})}
	cb.mu.Lock()
	cb.running = conn
	cb.mu.Unlock()
	cb.wg.Go(func() {
		defer close(conn.done)
		if err := lc.Run(context.Background()); err != nil {
			cb.logger.Error("card callbacks over the long connection stopped", "err", err)
		}
	})
	return nil
}

// replaced stops the long connection a reload does away with, letting its
// clicks in flight finish.
func (cb *callbacks) replaced() {
	ctx, cancel := context.WithTimeout(context.Background(), reloadGrace)
	defer cancel()
	if err := cb.stop(ctx); err != nil {
		cb.logger.Warn("card callbacks cut short by the reload", "err", err)
	}
}

// stop closes the long connection, if there is one: the clicks being
// handled may finish and be answered until ctx ends, and are cancelled
// then, which the error tells. It returns once the connection is closed.
func (cb *callbacks) stop(ctx context.Context) error {
	cb.mu.Lock()
	conn := cb.running
	cb.running = nil
	cb.mu.Unlock()
	if conn == nil {
		return nil
	}
	err := conn.lc.Shutdown(ctx)
	<-conn.done
	return err
}

// serveHTTP is POST /feishu/callback: 404 unless the transport is http.
func (cb *callbacks) serveHTTP(w http.ResponseWriter, r *http.Request) {
	h := cb.http.Load()
	if h == nil {
		http.Error(w, "card callbacks are not configured for HTTP (actions.transport: http)", http.StatusNotFound)
		return
	}
	h.ServeHTTP(w, r)
}
