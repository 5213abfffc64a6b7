// Command feishu-standin runs the project's Feishu stand-in (package
// feishutest) as a process on loopback, for manual runs, demos and load
// tests. It never talks to Feishu. It prints each message as it arrives,
// and each card updated in place, as a chat would show them; GET
// /_feishutest/messages lists what it received, as JSON.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

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
	quiet := app.Flag("quiet", "Do not print the messages as they arrive (for load tests).").Bool()
	perAppMinute := app.Flag("app-minute-rate-limit", "Sends per minute accepted for the whole app, answered 429 beyond; 0 = no limit.").Default("0").Int()
	counting := app.Flag("counting", "How the rate limits count: sliding_window (at most n in any period), token_bucket (a period's worth of burst) or fixed_window (n per calendar period).").
		Default(feishutest.SlidingWindow.String()).Enum(feishutest.SlidingWindow.String(), feishutest.TokenBucket.String(), feishutest.FixedWindow.String())
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
	c, _ := feishutest.ParseCounting(*counting)
	s.SetCounting(c)
	s.SetChatRateLimit(*perChat)
	s.SetAppRateLimit(*perApp)
	s.SetAppMinuteRateLimit(*perAppMinute)
	s.FailEvery(*failEvery, feishutest.Fault{Status: http.StatusInternalServerError, Code: 2200, Msg: "internal error"})
	fmt.Println("feishu-standin listening on", s.URL)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	if *quiet {
		<-sig
		s.Close()
		return
	}
	p := printer{updates: map[string]int{}, number: map[string]int{}}
	tick := time.NewTicker(25 * time.Millisecond) // often enough that a reader sees the order things came in
	defer tick.Stop()
	for {
		select {
		case <-sig:
			p.print(os.Stdout, s.Messages())
			s.Close()
			return
		case <-tick.C:
			p.print(os.Stdout, s.Messages())
		}
	}
}

// printer prints what is new among the stand-in's messages: the messages
// that arrived, and the cards updated in place, since it last looked.
type printer struct {
	seen    int            // messages printed
	updates map[string]int // updates printed, per message
	number  map[string]int // each message's number, from 1, in arrival order
}

func (p *printer) print(w io.Writer, msgs []feishutest.Message) {
	// The new messages first, each as it was sent; then the cards updated
	// in place since, which came after the messages of their resolutions.
	for i, m := range msgs[p.seen:] {
		n := p.seen + i + 1
		p.number[m.ID] = n
		fmt.Fprintf(w, "\n── message %d (%s, %s) to %s %s", n, m.API, m.Type, m.Target, m.TargetID)
		if m.RootID != "" {
			fmt.Fprintf(w, ", a reply to message %d", p.number[m.RootID])
		}
		text := m.Text
		if m.Updates > 0 {
			text = m.FirstText
		}
		fmt.Fprintf(w, ", %s\n%s\n", m.ID, indent(text))
	}
	p.seen = len(msgs)
	for _, m := range msgs {
		if m.Updates > p.updates[m.ID] {
			p.updates[m.ID] = m.Updates
			fmt.Fprintf(w, "\n── message %d updated in place, now:\n%s\n", p.number[m.ID], indent(m.Text))
		}
	}
}

func indent(s string) string {
	return "   " + strings.ReplaceAll(s, "\n", "\n   ")
}
