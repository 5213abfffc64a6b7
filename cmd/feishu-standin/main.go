// Command feishu-standin runs the project's Feishu stand-in (package
// feishutest) as a process on loopback, for manual runs, demos and load
// tests. It never talks to Feishu. GET /_feishutest/messages lists what it
// received.
package main

import (
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kingpin/v2"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
)

func main() {
	app := kingpin.New("feishu-standin", "A stand-in for the Feishu Open Platform, on loopback.")
	listen := app.Flag("listen", "Address to listen on.").Default("127.0.0.1:9099").String()
	appID := app.Flag("app-id", "The app ID it accepts.").Default(feishutest.AppID).String()
	secret := app.Flag("app-secret", "The app secret it accepts.").Default(feishutest.AppSecret).String()
	ttl := app.Flag("token-ttl", "Lifetime of the tenant tokens it issues.").Default("2h").Duration()
	latency := app.Flag("latency", "Delay before each answer to a send.").Default("0s").Duration()
	perChat := app.Flag("chat-rate-limit", "Sends per second accepted per chat or user; 0 = no limit.").Default("0").Int()
	perApp := app.Flag("app-rate-limit", "Sends per second accepted for the whole app, answered 429 beyond; 0 = no limit.").Default("0").Int()
	failEvery := app.Flag("fail-every", "Answer every nth send with HTTP 500; 0 = never.").Default("0").Int()
	kingpin.MustParse(app.Parse(os.Args[1:]))

	s, err := feishutest.Start(*listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "feishu-standin:", err)
		os.Exit(1)
	}
	s.SetCredentials(*appID, *secret)
	s.SetTokenTTL(*ttl)
	s.SetLatency(*latency)
	s.SetChatRateLimit(*perChat)
	s.SetAppRateLimit(*perApp)
	s.FailEvery(*failEvery, feishutest.Fault{Status: http.StatusInternalServerError, Code: 2200, Msg: "internal error"})
	fmt.Println("feishu-standin listening on", s.URL)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	s.Close()
}
