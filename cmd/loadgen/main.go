// Command loadgen measures the service under load. It starts the Feishu
// stand-in (no rate limit, answering at once) and the service as a process,
// both on loopback, then drives the service's webhook with concurrent
// keep-alive clients, each posting new groups of alerts as Alertmanager
// would. It prints throughput, the webhook answer's latency, errors, the
// messages the stand-in received, and the service's CPU time per
// notification and peak RSS, read from /proc.
//
//	go run ./cmd/loadgen --clients=32 --notifications=500 --alerts=5 --state=file
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/amtest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/redistest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/servicetest"
)

const routing = `
feishu:
  base_url: %s
  app_id: %s
  app_secret: %s
  api: %s
  rate_limit: {per_chat: 0, per_app: 0, per_app_minute: 0}
state:
%s
receivers:
  - {name: infra, chat_id: oc_infra, msg_type: %s}
route:
  receiver: infra
`

type options struct {
	clients, notifications, alerts, warmup int
	state, api, msgType, binary            string
	maxProcs                               int
	cpuProfile                             string
}

func main() {
	var o options
	flag.IntVar(&o.clients, "clients", 32, "concurrent keep-alive clients")
	flag.IntVar(&o.notifications, "notifications", 500, "notifications each client posts")
	flag.IntVar(&o.alerts, "alerts", 5, "alerts in each notification's group")
	flag.IntVar(&o.warmup, "warmup", 500, "notifications posted first and not measured")
	flag.StringVar(&o.state, "state", "file", "state backend: file or redis (a redis-server started on loopback)")
	flag.StringVar(&o.api, "api", "im_v1", "Feishu API: im_v1 or v4")
	flag.StringVar(&o.msgType, "msg-type", "interactive", "text, post or interactive")
	flag.StringVar(&o.binary, "service.binary", "", "the service binary; built from this module when empty")
	flag.IntVar(&o.maxProcs, "service.gomaxprocs", 0, "GOMAXPROCS for the service; 0 leaves Go's default")
	flag.StringVar(&o.cpuProfile, "service.cpuprofile", "", "write the service's CPU profile of the measured run's first seconds to this file")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "amfeishu-loadgen")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	bin := o.binary
	if bin == "" {
		if bin, err = servicetest.Build(dir); err != nil {
			return err
		}
	}
	fs, err := feishutest.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer fs.Close()

	stateCfg := "  path: state.db"
	if o.state == "redis" {
		rs, err := redistest.Run(filepath.Join(dir, "redis"), "--appendfsync", "everysec")
		if err != nil {
			return fmt.Errorf("redis-server: %w", err)
		}
		defer rs.Stop()
		stateCfg = fmt.Sprintf("  backend: redis\n  redis: {addresses: [%s]}", rs.Addr)
	}
	cfg := filepath.Join(dir, "routing.yaml")
	content := fmt.Sprintf(routing, fs.URL, feishutest.AppID, feishutest.AppSecret, o.api, stateCfg, o.msgType)
	if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
		return err
	}
	if o.maxProcs > 0 {
		os.Setenv("GOMAXPROCS", strconv.Itoa(o.maxProcs))
	}
	args := []string{"--config.file=" + cfg}
	if o.cpuProfile != "" {
		args = append(args, "--web.enable-pprof")
	}
	svc, err := servicetest.Start(bin, args...)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = svc.Stop(ctx)
	}()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.clients, MaxConnsPerHost: o.clients}}
	bodies := amtest.NewStamper(o.alerts, map[string]string{"team": "infra"}, false)
	var next atomic.Int64

	// Warm up: connections, the token, the first state pages.
	if _, err := drive(client, svc.URL, bodies, &next, o.clients, o.warmup/o.clients); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	sentBefore := len(fs.Messages())
	pids := []int{svc.Pid(), os.Getpid()} // the service, and the clients with the stand-in
	before, err := cpuTimes(pids)
	if err != nil {
		return err
	}

	profiled := make(chan error, 1)
	if o.cpuProfile != "" {
		go func() { profiled <- profile(svc.URL, o.cpuProfile, 3*time.Second) }()
	} else {
		profiled <- nil
	}
	start := time.Now()
	res, err := drive(client, svc.URL, bodies, &next, o.clients, o.notifications)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if err := <-profiled; err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	after, err := cpuTimes(pids)
	if err != nil {
		return err
	}
	peak, err := peakRSS(svc.Pid())
	if err != nil {
		return err
	}

	n := o.clients * o.notifications
	slices.Sort(res.latencies)
	fmt.Printf("load: %d clients x %d notifications of %d alerts, %s state, %s %s, stand-in with no rate limit\n",
		o.clients, o.notifications, o.alerts, o.state, o.api, o.msgType)
	fmt.Printf("throughput:   %.0f notifications/s (%d in %v)\n", float64(n)/elapsed.Seconds(), n, elapsed.Round(time.Millisecond))
	fmt.Printf("latency:      p50 %v  p99 %v  max %v\n", pct(res.latencies, 50), pct(res.latencies, 99), res.latencies[len(res.latencies)-1])
	fmt.Printf("errors:       %d\n", res.errors)
	fmt.Printf("messages:     %d at the stand-in for %d notifications\n", len(fs.Messages())-sentBefore, n)
	fmt.Printf("service CPU:  %.3f ms per notification (%v in all)\n", float64((after[0]-before[0]).Microseconds())/1000/float64(n), (after[0] - before[0]).Round(time.Millisecond))
	fmt.Printf("service RSS:  peak %.1f MiB\n", float64(peak)/(1<<20))
	// The clients and the stand-in share the machine with the service.
	fmt.Printf("loadgen CPU:  %.3f ms per notification (clients and stand-in, same machine)\n", float64((after[1]-before[1]).Microseconds())/1000/float64(n))
	if res.errors > 0 || len(fs.Messages())-sentBefore != n {
		return fmt.Errorf("not every notification became exactly one message")
	}
	return nil
}

// profile saves the service's CPU profile over the next d, from the
// /debug/pprof endpoint the service serves.
func profile(url, path string, d time.Duration) error {
	resp, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", url, int(d.Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type result struct {
	latencies []time.Duration
	errors    int
}

// drive runs clients goroutines, each posting each new groups in turn and
// timing every answer.
func drive(client *http.Client, url string, bodies *amtest.Stamper, next *atomic.Int64, clients, each int) (result, error) {
	var (
		mu  sync.Mutex
		res result
		wg  sync.WaitGroup
	)
	for range clients {
		wg.Go(func() {
			lat := make([]time.Duration, 0, each)
			errs := 0
			for range each {
				body := bodies.Group(int(next.Add(1)))
				t0 := time.Now()
				resp, err := client.Post(url+"/webhook", "application/json", bytes.NewReader(body))
				if err != nil {
					errs++
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(t0))
				if resp.StatusCode != http.StatusOK {
					errs++
				}
			}
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			res.errors += errs
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(res.latencies) == 0 {
		return res, fmt.Errorf("no answer at all")
	}
	return res, nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(min(i, len(sorted))-1, 0)].Round(10 * time.Microsecond)
}

// cpuTimes are the CPU times of the processes pids.
func cpuTimes(pids []int) ([]time.Duration, error) {
	out := make([]time.Duration, len(pids))
	for i, pid := range pids {
		var err error
		if out[i], err = cpuTime(pid); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// cpuTime is the user and system time the process has used, from
// /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields count from after it.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += v
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// peakRSS is the process's high-water resident set, VmHWM in
// /proc/<pid>/status.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
}
