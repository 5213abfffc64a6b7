// Command alertmanager-feishu receives Alertmanager's webhook notifications
// and delivers them to Feishu (Lark) chats as reply chains.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	webflag "github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/alertmanager-feishu/alertmanager-feishu/cli"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/app"

	_ "time/tzdata" // the tz template function and rotations need zone data in minimal images
)

func main() {
	os.Exit(run())
}

func run() int {
	fillVersion()
	a := kingpin.New(app.Name, "Delivers Alertmanager notifications to Feishu (Lark) chats as reply chains.")
	configFile := a.Flag("config.file", "Path to routing.yaml.").Default("routing.yaml").String()
	maxBody := a.Flag("web.max-body-bytes", "Largest webhook body accepted; a larger one is answered 413.").Default("10MiB").Bytes()
	timeout := a.Flag("delivery.timeout", "How long a webhook request waits for its deliveries before answering 503 for those still under way.").Default("8s").Duration()
	maxDelay := a.Flag("delivery.max-delay", "How long one delivery may take, waits for a send slot under Feishu's rate limits and retries included; Alertmanager's retries join it meanwhile.").Default("2m").Duration()
	grace := a.Flag("web.shutdown-grace-period", "On SIGTERM, how long in-flight notifications may take to finish.").Default("15s").Duration()
	lifecycle := a.Flag("web.enable-lifecycle", "Serve POST /-/reload; without it the endpoint answers 403 (SIGHUP always reloads).").Bool()
	pprof := a.Flag("web.enable-pprof", "Serve Go's profiles under /debug/pprof/.").Bool()
	webCfg := webflag.AddFlags(a, ":9098")
	logCfg := &promslog.Config{}
	promslogflag.AddFlags(a, logCfg)
	a.Version(version.Print(app.Name))
	a.HelpFlag.Short('h')
	a.Command("serve", "Receive Alertmanager's webhooks and deliver them to Feishu (the default).").Default()
	checkCmd := a.Command("check-config", "Check routing.yaml as serve would load it, templates and secret files included; print a summary or every problem.")
	routeCmd := a.Command("route", "Routing tools.").Command("test", "Print the receivers a group with these labels reaches, as amtool config routes test does.")
	routeLabels := routeCmd.Arg("labels", "name=value pairs").Strings()
	routeVerify := routeCmd.Flag("verify.receivers", "Fail unless the receivers are exactly these, comma-separated.").String()
	renderCmd := a.Command("render", "Print the request each receiver would send to Feishu for a webhook body; sends nothing.")
	renderPayload := renderCmd.Flag("payload", "A webhook body as Alertmanager posts it.").Required().ExistingFile()
	renderReceiver := renderCmd.Flag("receiver", "Only this receiver, without routing.").String()
	renderEscalation := renderCmd.Flag("escalation", "Also print the reply of each escalation step of a receiver whose escalation applies to the group.").Bool()
	sendCmd := a.Command("send-test", "Send a test notification to Feishu through the whole pipeline, as serve would deliver one: to a receiver, or where the route tree sends the test alert. Its chain is kept in a temporary state store of its own, not the configured one, so it runs beside a running service.")
	sendReceiver := sendCmd.Flag("receiver", "The receiver to send to, without routing; default: route the test alert's labels.").String()
	sendResolved := sendCmd.Flag("resolved", "Then send the group's resolved notification, a reply to the first message, which is updated in place on im/v1.").Bool()
	sendLabels := sendCmd.Flag("label", "A name=value label for the test alert, besides alertname="+cli.TestAlertName+" and severity=info (which it may replace); repeatable.").Strings()
	sendTimeout := sendCmd.Flag("timeout", "How long each notification may take, waits under the rate limits and retries included.").Default("30s").Duration()
	oncallCmd := a.Command("oncall", "Show who is on call in each rotation, and whom each receiver would mention, at a time.")
	oncallAt := oncallCmd.Flag("at", "The time, RFC 3339, e.g. 2026-02-10T12:00:00+08:00; default now.").String()

	var err error
	switch kingpin.MustParse(a.Parse(os.Args[1:])) {
	case checkCmd.FullCommand():
		if err = cli.CheckConfig(os.Stdout, *configFile); err != nil {
			fmt.Fprintf(os.Stderr, "Checking '%s'  FAILED:\n", *configFile)
		}
	case routeCmd.FullCommand():
		err = cli.RouteTest(os.Stdout, *configFile, *routeLabels, *routeVerify)
	case renderCmd.FullCommand():
		err = cli.Render(os.Stdout, *configFile, *renderPayload, *renderReceiver, *renderEscalation)
	case sendCmd.FullCommand():
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		err = cli.SendTest(ctx, os.Stdout, cli.SendTestOptions{
			ConfigFile: *configFile, Receiver: *sendReceiver, Labels: *sendLabels, Resolved: *sendResolved, Timeout: *sendTimeout,
			Logger: promslog.New(logCfg),
		})
	case oncallCmd.FullCommand():
		err = cli.OnCall(os.Stdout, *configFile, *oncallAt)
	default:
		logger := promslog.New(logCfg)
		if os.Getenv("GOGC") == "" {
			// Each notification allocates a few hundred short-lived objects
			// (decode, templates, JSON); at Go's default the collector took a
			// sixth of the CPU under load, for a heap of a few MiB. GOGC in
			// the environment still decides.
			debug.SetGCPercent(200)
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		reload := make(chan struct{}, 1)
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		go func() {
			for range hup {
				select {
				case reload <- struct{}{}:
				default: // a reload is pending already
				}
			}
		}()
		err = app.Run(ctx, app.Options{
			ConfigFile: *configFile, MaxBodyBytes: int64(*maxBody), Timeout: *timeout, MaxDelay: *maxDelay,
			Grace: *grace, Web: webCfg, Reload: reload, EnableLifecycle: *lifecycle, EnablePprof: *pprof, Logger: logger,
		})
		if err != nil {
			logger.Error("service failed", "err", err)
			return 1
		}
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
