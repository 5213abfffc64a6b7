// Package app is the service: Run builds its parts from routing.yaml (the
// state store, the pacer, the pipeline, the incident core, the intake and
// the HTTP server), serves until its context ends, reloads when told, and
// stops within its grace period. main calls it with the flags; tests embed
// it to run the whole service in-process on a free port.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"reflect"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/core"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/ratelimit"
	"github.com/alertmanager-feishu/alertmanager-feishu/receiver"
	"github.com/alertmanager-feishu/alertmanager-feishu/state"
)

// Name is the service's name, in logs and the version.
const Name = "alertmanager-feishu"

// Options are the service's settings besides routing.yaml: its flags.
type Options struct {
	ConfigFile   string
	MaxBodyBytes int64
	// Timeout is how long a webhook waits for its deliveries before it is
	// answered 503 for those still under way; MaxDelay bounds a delivery.
	Timeout, MaxDelay time.Duration
	// Grace is how long in-flight notifications may take once ctx is done.
	Grace time.Duration
	// Web is the exporter-toolkit's listen addresses and web config.
	Web *web.FlagConfig
	// Listeners, when set, are served instead of Web's addresses (whose
	// web config still applies): a test listens on a free port first.
	Listeners []net.Listener
	// Reload asks for routing.yaml to be read again (main sends SIGHUP's).
	Reload <-chan struct{}
	// EnableLifecycle serves POST /-/reload, as Prometheus's
	// --web.enable-lifecycle does; without it the endpoint answers 403.
	EnableLifecycle bool
	// EnablePprof serves Go's profiles under /debug/pprof/; without it they
	// are not there (404).
	EnablePprof bool
	Logger      *slog.Logger
}

// Run runs the service until ctx is done, then finishes the notifications
// in flight within o.Grace. It returns an error if the service could not
// start, serving failed, or the grace period ran out.
func Run(ctx context.Context, o Options) error {
	logger := o.Logger
	logger.Info("starting "+Name, "version", version.Info())
	logger.Info("build context", "build_context", version.BuildContext())

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("alertmanager_feishu"),
	)
	coordinator := config.NewCoordinator(o.ConfigFile, reg, logger)
	cfg, err := config.Load(o.ConfigFile)
	if err != nil {
		return fmt.Errorf("load configuration %s: %w", o.ConfigFile, err)
	}
	store, err := state.Open(cfg.State, logger)
	if err != nil {
		return fmt.Errorf("open state: %w", err)
	}
	defer store.Close()

	// One pacer for the process: Feishu's limits are per app and per chat,
	// whatever the configuration's generation.
	metrics := feishu.NewMetrics(reg)
	pacer := feishu.NewPacer(cfg.Feishu.RateLimit, metrics)
	if shared, ok := store.(interface{ RateLimits() ratelimit.Shared }); ok {
		pacer.Share(shared.RateLimits(), logger) // replicas on one Redis count the limits together
	}
	incidents := core.New(store, nil, core.Options{Logger: logger, Registerer: reg})
	clicks := newCallbacks(incidents, reg, logger)
	defer func() {
		// A no-op after a shutdown, which stops it first; on an early
		// return, the grace still bounds it.
		ctx, cancel := context.WithTimeout(context.Background(), o.Grace)
		defer cancel()
		_ = clicks.stop(ctx)
	}()
	creds := &credentials{metrics: metrics, logger: logger}
	defer creds.stop()
	coordinator.Subscribe(
		clicks.check, // first: what can fail, before anything takes the configuration
		func(next *config.Config) error {
			p, err := core.NewPipeline(next, core.PipelineOptions{Metrics: metrics, Pacer: pacer, Logger: logger})
			if err != nil {
				return err
			}
			incidents.SetPipeline(p)
			creds.check(p)
			return nil
		},
		func(next *config.Config) error {
			pacer.SetLimits(next.Feishu.RateLimit)
			return nil
		},
		func(next *config.Config) error {
			if !reflect.DeepEqual(next.State, cfg.State) {
				logger.Warn("state settings changed; they take effect on restart")
			}
			return nil
		},
		clicks.apply,
	)
	if err := coordinator.Reload(); err != nil {
		return fmt.Errorf("load configuration %s: %w", o.ConfigFile, err)
	}
	// Escalation steps fire on every replica's timers; the store gives
	// each due step to one of them.
	timers, stopTimers := context.WithCancel(context.Background())
	timersDone := make(chan struct{})
	go func() { incidents.RunTimers(timers); close(timersDone) }()
	defer func() { stopTimers(); <-timersDone }()

	intake := receiver.New(incidents, receiver.Options{
		MaxBodyBytes: o.MaxBodyBytes, Timeout: o.Timeout, MaxDelay: o.MaxDelay, Logger: logger, Registerer: reg,
	})
	mux := http.NewServeMux()
	intake.Register(mux)
	mux.Handle("POST /feishu/callback", intake.Instrument("/feishu/callback", http.HandlerFunc(clicks.serveHTTP)))
	registerOperations(mux, reg, incidents, coordinator, intake.RequireToken, o)

	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() {
		if o.Listeners != nil {
			serveErr <- web.ServeMultiple(o.Listeners, srv, o.Web, logger)
			return
		}
		serveErr <- web.ListenAndServe(srv, o.Web, logger)
	}()

	for {
		select {
		case err := <-serveErr:
			if !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve: %w", err)
			}
			return nil
		case <-o.Reload:
			_ = coordinator.Reload()
		case <-ctx.Done():
			logger.Info("stopping, finishing in-flight notifications", "grace_period", o.Grace)
			stop, cancel := context.WithTimeout(context.Background(), o.Grace)
			// Every part is stopped whatever the others did: a delivery
			// left running past the grace would outlive the store it
			// records in. Each cancels what is left once the grace is up.
			// The long connection stops beside the HTTP server, as both
			// take no new work and finish what they hold, clicks included.
			clicked := make(chan error, 1)
			go func() { clicked <- clicks.stop(stop) }()
			served := srv.Shutdown(stop)
			err := errors.Join(served, <-clicked, intake.Shutdown(stop), incidents.Shutdown(stop))
			cancel()
			if err != nil {
				srv.Close()
				return fmt.Errorf("shutdown did not finish in time: %w", err)
			}
			logger.Info("stopped")
			return nil
		}
	}
}

// registerOperations adds the endpoints of the people and programs that
// run the service: metrics, health, readiness, and where o allows them,
// reload and profiles. The web config's TLS and basic auth cover them all;
// reload and profiles, which change or expose the process, are under
// guard too (the intake's bearer token), while metrics, health and
// readiness stay open to Prometheus and the kubelet's probes.
//
// Readiness does not depend on Feishu: a replica that cannot obtain a token
// still takes webhooks and answers each 503 naming the cause, which
// Alertmanager logs and retries, where a replica taken out of its Service
// would only be "connection refused".
func registerOperations(mux *http.ServeMux, reg *prometheus.Registry, c *core.Core, coordinator *config.Coordinator, guard func(http.Handler) http.Handler, o Options) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if o.EnablePprof {
		// Profiles, as Prometheus and Alertmanager serve them, for finding
		// where the time goes under load.
		mux.Handle("/debug/pprof/", guard(http.HandlerFunc(pprof.Index)))
		mux.Handle("/debug/pprof/profile", guard(http.HandlerFunc(pprof.Profile)))
		mux.Handle("/debug/pprof/trace", guard(http.HandlerFunc(pprof.Trace)))
	}
	mux.HandleFunc("/-/healthy", getOrHead(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "OK")
	}))
	mux.HandleFunc("/-/ready", getOrHead(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := c.Ping(ctx); err != nil {
			http.Error(w, "state store unavailable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "OK")
	}))
	mux.Handle("POST /-/reload", guard(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !o.EnableLifecycle {
			// Prometheus's answer: the endpoint exists, and is off.
			http.Error(w, "Lifecycle API is not enabled (start with --web.enable-lifecycle; SIGHUP always reloads).", http.StatusForbidden)
			return
		}
		if err := coordinator.Reload(); err != nil {
			http.Error(w, "failed to reload config: "+err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "OK")
	})))
}

func getOrHead(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h(w, r)
	}
}
