// Command alertmanager-feishu receives Alertmanager's webhook notifications
// and delivers them to Feishu (Lark) chats as reply chains.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"reflect"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	webflag "github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/alertmanager-feishu/alertmanager-feishu/cli"
	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/receiver"
	"github.com/alertmanager-feishu/alertmanager-feishu/state"

	_ "time/tzdata" // the tz template function and rotations need zone data in minimal images
)

const name = "alertmanager-feishu"

func main() {
	os.Exit(run())
}

func run() int {
	app := kingpin.New(name, "Delivers Alertmanager notifications to Feishu (Lark) chats as reply chains.")
	configFile := app.Flag("config.file", "Path to routing.yaml.").Default("routing.yaml").String()
	maxBody := app.Flag("web.max-body-bytes", "Largest webhook body accepted; a larger one is answered 413.").Default("10MiB").Bytes()
	timeout := app.Flag("delivery.timeout", "How long a webhook request waits for its deliveries before answering 503 for those still under way.").Default("8s").Duration()
	maxDelay := app.Flag("delivery.max-delay", "How long one delivery may take, waits for a send slot under Feishu's rate limits and retries included; Alertmanager's retries join it meanwhile.").Default("2m").Duration()
	grace := app.Flag("web.shutdown-grace-period", "On SIGTERM, how long in-flight notifications may take to finish.").Default("15s").Duration()
	webCfg := webflag.AddFlags(app, ":9098")
	logCfg := &promslog.Config{}
	promslogflag.AddFlags(app, logCfg)
	app.Version(version.Print(name))
	app.HelpFlag.Short('h')
	app.Command("serve", "Receive Alertmanager's webhooks and deliver them to Feishu (the default).").Default()
	checkCmd := app.Command("check-config", "Check routing.yaml as serve would load it, templates and secret files included; print a summary or every problem.")
	routeCmd := app.Command("route", "Routing tools.").Command("test", "Print the receivers a group with these labels reaches, as amtool config routes test does.")
	routeLabels := routeCmd.Arg("labels", "name=value pairs").Strings()
	routeVerify := routeCmd.Flag("verify.receivers", "Fail unless the receivers are exactly these, comma-separated.").String()
	renderCmd := app.Command("render", "Print the request each receiver would send to Feishu for a webhook body; sends nothing.")
	renderPayload := renderCmd.Flag("payload", "A webhook body as Alertmanager posts it.").Required().ExistingFile()
	renderReceiver := renderCmd.Flag("receiver", "Only this receiver, without routing.").String()
	oncallCmd := app.Command("oncall", "Show who is on call in each rotation, and whom each receiver would mention, at a time.")
	oncallAt := oncallCmd.Flag("at", "The time, RFC 3339, e.g. 2026-02-10T12:00:00+08:00; default now.").String()
	var tool error
	switch kingpin.MustParse(app.Parse(os.Args[1:])) {
	case checkCmd.FullCommand():
		if tool = cli.CheckConfig(os.Stdout, *configFile); tool != nil {
			fmt.Fprintf(os.Stderr, "Checking '%s'  FAILED:\n", *configFile)
		}
	case routeCmd.FullCommand():
		tool = cli.RouteTest(os.Stdout, *configFile, *routeLabels, *routeVerify)
	case renderCmd.FullCommand():
		tool = cli.Render(os.Stdout, *configFile, *renderPayload, *renderReceiver)
	case oncallCmd.FullCommand():
		tool = cli.OnCall(os.Stdout, *configFile, *oncallAt)
	default:
		return serve(serveOptions{
			configFile: *configFile, maxBody: int64(*maxBody), timeout: *timeout, maxDelay: *maxDelay,
			grace: *grace, web: webCfg, log: logCfg,
		})
	}
	if tool != nil {
		fmt.Fprintln(os.Stderr, tool)
		return 1
	}
	return 0
}

// serveOptions are serve's flags.
type serveOptions struct {
	configFile               string
	maxBody                  int64
	timeout, maxDelay, grace time.Duration
	web                      *web.FlagConfig
	log                      *promslog.Config
}

// serve runs the service until a signal ends it.
func serve(o serveOptions) int {

	logger := promslog.New(o.log)
	if os.Getenv("GOGC") == "" {
		// Each notification allocates a few hundred short-lived objects
		// (decode, templates, JSON); at Go's default the collector took a
		// sixth of the CPU under load, for a heap of a few MiB. GOGC in
		// the environment still decides.
		debug.SetGCPercent(200)
	}
	logger.Info("Starting "+name, "version", version.Info())
	logger.Info("Build context", "build_context", version.BuildContext())

	cfg, err := config.Load(o.configFile)
	if err != nil {
		logger.Error("Loading configuration failed", "file", o.configFile, "err", err)
		return 1
	}
	store, err := state.Open(cfg.State, logger)
	if err != nil {
		logger.Error("Opening state failed", "err", err)
		return 1
	}
	defer store.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("alertmanager_feishu"),
	)
	feishuMetrics := feishu.NewMetrics(reg)
	reloadOK := promauto.With(reg).NewGauge(prometheus.GaugeOpts{
		Name: "alertmanager_feishu_config_last_reload_successful",
		Help: "Whether the last configuration load succeeded.",
	})

	// One pacer for the process: Feishu's limits are per app and per chat,
	// whatever the configuration's generation.
	pacer := feishu.NewPacer(cfg.Feishu.RateLimit, feishuMetrics)
	pipeline, err := receiver.NewPipeline(cfg, feishuMetrics, pacer, logger)
	if err != nil {
		logger.Error("Loading configuration failed", "file", o.configFile, "err", err)
		return 1
	}
	reloadOK.Set(1)
	checkCredentials(pipeline, logger)

	handler := receiver.New(pipeline, receiver.Options{
		Store:        store,
		MaxBodyBytes: o.maxBody,
		Timeout:      o.timeout,
		MaxDelay:     o.maxDelay,
		Logger:       logger,
		Registerer:   reg,
	})

	var reloadMu sync.Mutex
	reload := func() error {
		reloadMu.Lock()
		defer reloadMu.Unlock()
		next, err := config.Load(o.configFile)
		if err == nil && !reflect.DeepEqual(next.State, cfg.State) {
			logger.Warn("state settings changed; they take effect on restart")
		}
		var p *receiver.Pipeline
		if err == nil {
			p, err = receiver.NewPipeline(next, feishuMetrics, pacer, logger)
		}
		if err != nil {
			reloadOK.Set(0)
			logger.Error("Reloading configuration failed, keeping the previous one", "file", o.configFile, "err", err)
			return err
		}
		handler.SetPipeline(p)
		pacer.SetLimits(next.Feishu.RateLimit)
		reloadOK.Set(1)
		logger.Info("Configuration reloaded", "file", o.configFile)
		return nil
	}

	mux := http.NewServeMux()
	handler.Register(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	// Profiles, as Prometheus and Alertmanager serve them, for finding
	// where the time goes under load.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		fmt.Fprintln(w, "OK")
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := store.Ping(ctx); err != nil {
			http.Error(w, "state store unavailable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "OK")
	})
	mux.HandleFunc("POST /-/reload", func(w http.ResponseWriter, _ *http.Request) {
		if err := reload(); err != nil {
			http.Error(w, "failed to reload config: "+err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "OK")
	})

	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- web.ListenAndServe(srv, o.web, logger) }()

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for {
		select {
		case err := <-serveErr:
			if !errors.Is(err, http.ErrServerClosed) {
				logger.Error("Serving failed", "err", err)
				return 1
			}
			return 0
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				_ = reload()
				continue
			}
			logger.Info("Received signal, finishing in-flight notifications", "signal", sig, "grace_period", o.grace)
			ctx, cancel := context.WithTimeout(context.Background(), o.grace)
			err := srv.Shutdown(ctx)
			if err == nil {
				err = handler.Shutdown(ctx)
			}
			cancel()
			if err != nil {
				logger.Error("Shutdown did not finish in time", "err", err)
				return 1
			}
			logger.Info("Stopped")
			return 0
		}
	}
}

// previewOnCall prints the on-call preview of the configuration file at a
// time.
// checkCredentials proves the app ID and secret in the background, so that
// a wrong secret shows in the log at start rather than at the first alert.
func checkCredentials(p *receiver.Pipeline, logger *slog.Logger) {
	client, ok := p.Sender.(*feishu.Client)
	if !ok || p.Config.Feishu.AppID == "" { // custom bots alone need no app
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := client.CheckCredentials(ctx); err != nil {
			logger.Error("Feishu did not issue a tenant token; check feishu.app_id and the app secret", "err", err)
			return
		}
		logger.Info("Feishu app credentials verified")
	}()
}
