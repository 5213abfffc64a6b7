package app

import (
	"context"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"

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

	mu      sync.Mutex
	running *connection // the long connection, if any
	wg      sync.WaitGroup
}

// connection is a running long connection and what it was made from.
type connection struct {
	settings connectionSettings
	cancel   context.CancelFunc
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

// apply follows a configuration loaded and accepted.
func (cb *callbacks) apply(cfg *config.Config) error {
	a := cfg.Actions
	if a == nil || a.Transport != config.TransportHTTP {
		cb.http.Store(nil)
	}
	if a == nil || a.Transport != config.TransportLongConnection {
		cb.stop()
	}
	switch {
	case a == nil:
		return nil
	case a.Transport == config.TransportHTTP:
		token, key, err := a.Secrets()
		if err != nil {
			return err
		}
		cb.http.Store(actions.NewHTTPCallback(token, key, cb.core, cb.logger, cb.core.RefusedCallback))
		return nil
	}
	secret, err := cfg.Feishu.Secret()
	if err != nil {
		return err
	}
	s := connectionSettings{BaseURL: cfg.Feishu.BaseURL, AppID: cfg.Feishu.AppID, Secret: secret, HTTPConfig: cfg.Feishu.HTTPConfig}
	cb.mu.Lock()
	same := cb.running != nil && reflect.DeepEqual(cb.running.settings, s)
	cb.mu.Unlock()
	if same {
		return nil
	}
	hc, err := commoncfg.NewClientFromConfig(s.HTTPConfig, "feishu-callbacks",
		commoncfg.WithUserAgent(version.ComponentUserAgent(Name)))
	if err != nil {
		return err
	}
	cb.stop()
	lc := actions.NewLongConnection(actions.LongConnectionConfig{
		BaseURL: s.BaseURL, AppID: s.AppID, AppSecret: s.Secret, HTTPClient: hc,
		Logger: cb.logger, Up: cb.up, Handler: cb.core, Refused: cb.core.RefusedCallback,
	})
	ctx, cancel := context.WithCancel(context.Background())
	conn := &connection{settings: s, cancel: cancel, done: make(chan struct{})}
	cb.mu.Lock()
	cb.running = conn
	cb.mu.Unlock()
	cb.wg.Go(func() {
		defer close(conn.done)
		if err := lc.Run(ctx); err != nil {
			cb.logger.Error("card callbacks over the long connection stopped", "err", err)
		}
	})
	return nil
}

// stop closes the long connection, if there is one, and waits for it.
func (cb *callbacks) stop() {
	cb.mu.Lock()
	conn := cb.running
	cb.running = nil
	cb.mu.Unlock()
	if conn != nil {
		conn.cancel()
		<-conn.done
	}
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
