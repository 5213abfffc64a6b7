package core_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/core"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/amtest"
	"github.com/alertmanager-feishu/alertmanager-feishu/state"
)

const escalationRouting = `
feishu:
  base_url: %s
  app_id: cli_feishutest
  app_secret: feishutest-secret
  rate_limit: {per_chat: 0, per_app: 0, per_app_minute: 0}
actions:
  alertmanager: {urls: [%s]}
receivers:
  - name: infra
    chat_id: oc_infra
%sroute:
  receiver: infra
`

// escalationPolicy is infra's escalation, with its steps' after.
const escalationPolicy = `    escalation:
      when: ['severity="critical"']
      steps:
        - {after: %s, mention: {users: [{open_id: ou_lead}]}, urgent: app}
        - {after: %s, mention: {users: [{open_id: ou_head}]}}
`

// timerOptions are how a timerEnv is made.
type timerOptions struct {
	amURL string
	// first and second are the steps' after; "" for a receiver without
	// escalation.
	first, second string
	inMemory      bool
	// wrap, when set, is the store the core uses around the real one.
	wrap func(state.Store) state.Store
	// now, when set, is the core's clock.
	now func() time.Time
	// logs, when set, gets the core's log.
	logs *logBuffer
}

// timerEnv is a core with an escalation policy and its timers running.
type timerEnv struct {
	core  *core.Core
	pl    *core.Pipeline
	fs    *feishutest.Server
	store state.Store // the real one, not wrapped
	o     timerOptions
	stop  func() // stops the core's timers
}

// newTimerEnv starts a core whose Feishu is the stand-in, answered in
// memory so that it can run in a synctest bubble; fs must be made outside
// the bubble, as its listener is a real socket.
func newTimerEnv(t *testing.T, fs *feishutest.Server, amURL, first, second string, inMemory bool) *timerEnv {
	t.Helper()
	return startTimers(t, fs, timerOptions{amURL: amURL, first: first, second: second, inMemory: inMemory})
}

func startTimers(t *testing.T, fs *feishutest.Server, o timerOptions) *timerEnv {
	t.Helper()
	if o.amURL == "" {
		o.amURL = "http://127.0.0.1:1"
	}
	logger := promslog.NewNopLogger()
	store, err := state.OpenFile(filepath.Join(t.TempDir(), "state.db"), state.Options{ChainTTL: 24 * time.Hour, DedupeWindow: time.Hour}, logger)
	require.NoError(t, err)
	e := &timerEnv{fs: fs, store: store, o: o}
	e.pl = e.pipeline(t, o.first, o.second)
	var used state.Store = store
	if o.wrap != nil {
		used = o.wrap(store)
	}
	coreLogger := logger
	if o.logs != nil {
		coreLogger = slog.New(slog.NewJSONHandler(o.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	c := core.New(used, e.pl, core.Options{Logger: coreLogger, Registerer: prometheus.NewRegistry(), Now: o.now})
	e.core = c
	e.stop = runTimers(c)
	t.Cleanup(func() {
		e.stop()
		store.Close()
	})
	return e
}

// runTimers runs c's timers until the function it returns is called, which
// waits for them and for c's other work.
func runTimers(c *core.Core) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.RunTimers(ctx); close(done) }()
	return sync.OnceFunc(func() {
		cancel()
		<-done
		_ = c.Shutdown(context.Background())
	})
}

// pipeline is the env's pipeline with infra's steps at first and second;
// none for "".
func (e *timerEnv) pipeline(t *testing.T, first, second string) *core.Pipeline {
	t.Helper()
	policy := ""
	if first != "" {
		policy = fmt.Sprintf(escalationPolicy, first, second)
	}
	cfg, err := config.Parse(fmt.Appendf(nil, escalationRouting, e.fs.URL, e.o.amURL, policy))
	require.NoError(t, err)
	o := core.PipelineOptions{Logger: promslog.NewNopLogger()}
	if e.o.inMemory {
		o.HTTPClient = e.fs.Client()
	}
	pl, err := core.NewPipeline(cfg, o)
	require.NoError(t, err)
	return pl
}

// record is the one open incident's record.
func (e *timerEnv) record(t *testing.T) *incident.Incident {
	t.Helper()
	ins, err := e.store.OpenIncidents(context.Background(), "infra")
	require.NoError(t, err)
	require.Len(t, ins, 1)
	return ins[0]
}

func (e *timerEnv) notify(t *testing.T, name string) {
	t.Helper()
	out := e.core.Notify(context.Background(), e.pl.Receiver("infra"), notification(t, "infra", name))
	require.Equal(t, core.Sent, out.Status, out.Err)
}

// steps are the escalation replies the stand-in holds.
func (e *timerEnv) steps() []feishutest.Message {
	var out []feishutest.Message
	for _, m := range e.fs.Messages() {
		if strings.Contains(m.Text, "⏫") && m.ParentID != "" {
			out = append(out, m)
		}
	}
	return out
}

// In virtual time: an unacknowledged critical incident gets step 1 and then
// step 2, each once and at its time; the buzz of step 1 reaches its person.
func TestEscalationFiresEachStepOnceAtItsTime(t *testing.T) {
	fs := feishutest.New(t)
	fs.AddChatMembers("oc_infra", "ou_lead", "ou_head")
	synctest.Test(t, func(t *testing.T) {
		e := newTimerEnv(t, fs, "http://127.0.0.1:1", "10m", "30m", true)
		start := time.Now()
		e.notify(t, "firing-HighCPU-seq1-first-notification.json")

		// The commit's batch took a virtual millisecond; wake just
		// before the step's time.
		time.Sleep(time.Until(start.Add(10*time.Minute - time.Millisecond)))
		synctest.Wait()
		require.Empty(t, e.steps(), "not before its time")
		time.Sleep(time.Second)
		synctest.Wait()
		require.Len(t, e.steps(), 1)
		require.WithinRange(t, e.steps()[0].Time, start.Add(10*time.Minute), start.Add(10*time.Minute+time.Second))
		require.Equal(t, []string{"ou_lead"}, e.steps()[0].Mentions())
		require.Len(t, fs.Urgents(), 1)

		time.Sleep(20 * time.Minute)
		synctest.Wait()
		require.Len(t, e.steps(), 2)
		require.WithinRange(t, e.steps()[1].Time, start.Add(30*time.Minute), start.Add(30*time.Minute+time.Second))
		require.Equal(t, []string{"ou_head"}, e.steps()[1].Mentions())
		require.Len(t, fs.Urgents(), 1, "step 2 asks for no buzz")

		time.Sleep(30 * time.Minute)
		synctest.Wait()
		require.Len(t, e.steps(), 2, "each step fires once")
	})
}

// Acknowledging, resolving, or a group the policy does not cover: no step.
func TestEscalationStopsOrNeverStarts(t *testing.T) {
	for name, act := range map[string]func(t *testing.T, e *timerEnv){
		"acknowledged": func(t *testing.T, e *timerEnv) {
			root := e.fs.Messages()[0]
			answer := e.core.Callback(context.Background(), click(button(t, root.Content, core.ActionAck, ""), "ou_alice"))
			require.Equal(t, "success", answer.Toast.Type, answer.Toast.Content)
		},
		"resolved": func(t *testing.T, e *timerEnv) {
			e.notify(t, "resolved-HighCPU-seq4-all-alerts-resolved.json")
		},
	} {
		t.Run(name, func(t *testing.T) {
			fs := feishutest.New(t)
			synctest.Test(t, func(t *testing.T) {
				e := newTimerEnv(t, fs, "http://127.0.0.1:1", "10m", "30m", true)
				e.notify(t, "firing-HighCPU-seq1-first-notification.json")
				time.Sleep(5 * time.Minute)
				act(t, e)
				time.Sleep(40 * time.Minute)
				synctest.Wait()
				require.Empty(t, e.steps())
			})
		})
	}
	t.Run("a warning group", func(t *testing.T) {
		fs := feishutest.New(t)
		synctest.Test(t, func(t *testing.T) {
			e := newTimerEnv(t, fs, "http://127.0.0.1:1", "10m", "30m", true)
			e.notify(t, "firing-DiskFull-default.json")
			time.Sleep(40 * time.Minute)
			synctest.Wait()
			require.Empty(t, e.steps())
		})
	})
}

// A silence from the card holds the escalation, and expiring it resumes at
// the next step not fired. Real seconds: the silence is made in a real
// Alertmanager, over a real socket.
func TestEscalationHeldBySilence(t *testing.T) {
	ae := newActionEnv(t, "", "")
	e := newTimerEnv(t, ae.fs, ae.am.URL, "1s", "2s", false)
	pushGroup(t, ae.am, "firing-HighCPU-seq1-first-notification.json")
	e.notify(t, "firing-HighCPU-seq1-first-notification.json")
	root := e.fs.Messages()[0]
	answer := e.core.Callback(context.Background(), click(button(t, root.Content, core.ActionSilence, "1h"), "ou_alice"))
	require.Equal(t, "success", answer.Toast.Type, answer.Toast.Content)
	require.Never(t, func() bool { return len(e.steps()) > 0 }, 3*time.Second, 50*time.Millisecond, "a silenced incident does not escalate")

	answer = e.core.Callback(context.Background(), click(button(t, answer.Card, core.ActionUnsilence, ""), "ou_alice"))
	require.Equal(t, "success", answer.Toast.Type, answer.Toast.Content)
	require.Eventually(t, func() bool { return len(e.steps()) == 1 }, 3*time.Second, 10*time.Millisecond, "expiring resumes at step 1")
	require.Eventually(t, func() bool { return len(e.steps()) == 2 }, 3*time.Second, 10*time.Millisecond, "then step 2, at once: its time passed")
}

// pushGroup posts the alerts of notification name to am, firing, as
// Prometheus would have: Alertmanager holds the alerts it notified about.
func pushGroup(t *testing.T, am *amtest.Alertmanager, name string) {
	t.Helper()
	var alerts []amtest.Alert
	for _, a := range notification(t, "infra", name).Payload.Alerts {
		alerts = append(alerts, amtest.Alert{Labels: a.Labels, StartsAt: time.Now().Add(-time.Minute)})
	}
	require.NoError(t, am.PostAlerts(alerts...))
}

// schedules is the real store, counting the timers set and the chains
// locked.
type schedules struct {
	state.Store
	n     atomic.Int32
	locks atomic.Int32
}

func (s *schedules) Lock(ctx context.Context, chain string) (func(), error) {
	s.locks.Add(1)
	return s.Store.Lock(ctx, chain)
}

func (s *schedules) Schedule(ctx context.Context, id string, at time.Time) error {
	s.n.Add(1)
	return s.Store.Schedule(ctx, id, at)
}

// A silence made in Alertmanager, not from the card, holds the escalation
// while it mutes the group's alerts: asked again every minute, logged
// once; expired, the steps fire at the next recheck. Real seconds, with a
// real Alertmanager; the core's clock is moved on a minute at a time.
func TestEscalationHeldBySilenceInAlertmanager(t *testing.T) {
	ae := newActionEnv(t, "", "")
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	logs := &logBuffer{}
	counted := &schedules{}
	e := startTimers(t, ae.fs, timerOptions{amURL: ae.am.URL, first: "1s", second: "2s", now: now, logs: logs,
		wrap: func(s state.Store) state.Store { counted.Store = s; return counted }})
	pushGroup(t, ae.am, "firing-HighCPU-seq1-first-notification.json")
	id, err := ae.am.AddSilence([]amtest.Matcher{{Name: "alertname", Value: "HighCPU", IsEqual: true}}, time.Now().Add(time.Hour))
	require.NoError(t, err)
	e.notify(t, "firing-HighCPU-seq1-first-notification.json")

	const held = "escalation held: the group's alerts are silenced or inhibited in Alertmanager"
	require.Eventually(t, func() bool { return len(logs.with(t, "msg", held)) == 1 }, 5*time.Second, 10*time.Millisecond, "step 1 came due and was held")
	for range 3 {
		before := counted.n.Load()
		skew.Add(int64(time.Minute))
		require.Eventually(t, func() bool { return counted.n.Load() > before }, 5*time.Second, 10*time.Millisecond, "asked again a minute later")
	}
	require.Empty(t, e.steps(), "held at every recheck")
	require.Len(t, logs.with(t, "msg", held), 1, "the hold is logged when it starts only")
	require.Zero(t, e.record(t).Escalation.Step, "a held step is not recorded")

	require.NoError(t, ae.am.ExpireSilence(id))
	skew.Add(int64(time.Minute))
	require.Eventually(t, func() bool { return len(e.steps()) == 1 }, 5*time.Second, 10*time.Millisecond, "step 1 at the recheck after the silence expired")
	require.Eventually(t, func() bool { return len(e.steps()) == 2 }, 5*time.Second, 10*time.Millisecond, "then step 2: its time passed")
}

// An Alertmanager that holds none of the group's alerts (the URL is
// another cluster's, or the group resolved there) does not hold a step:
// a wrong URL must not keep every escalation from firing.
func TestEscalationFiresWhenAlertmanagerHoldsNoneOfTheGroup(t *testing.T) {
	ae := newActionEnv(t, "", "")
	logs := &logBuffer{}
	e := startTimers(t, ae.fs, timerOptions{amURL: ae.am.URL, first: "1s", second: "1h", logs: logs})
	e.notify(t, "firing-HighCPU-seq1-first-notification.json")
	require.Eventually(t, func() bool { return len(e.steps()) == 1 }, 5*time.Second, 10*time.Millisecond)
	require.Empty(t, logs.with(t, "msg", "escalation held: the group's alerts are silenced or inhibited in Alertmanager"))
}

// An Alertmanager that cannot be asked does not hold a step: it fires at
// its time, and the failure is logged.
func TestEscalationFiresWhenAlertmanagerIsUnreachable(t *testing.T) {
	fs := feishutest.New(t)
	logs := &logBuffer{}
	e := startTimers(t, fs, timerOptions{amURL: "http://127.0.0.1:1", first: "1s", second: "1h", logs: logs})
	e.notify(t, "firing-HighCPU-seq1-first-notification.json")
	require.Eventually(t, func() bool { return len(e.steps()) == 1 }, 5*time.Second, 10*time.Millisecond)
	require.NotEmpty(t, logs.with(t, "msg", "alertmanager did not say whether the group's alerts are muted; the escalation step fires"))
}

// A reload that changes a receiver's steps applies to the steps not yet
// fired, at their new times, and to open incidents whose receiver gains or
// loses its escalation.
func TestEscalationFollowsAReload(t *testing.T) {
	for _, c := range []struct {
		name          string
		first, second string // the steps before the reload; "" for none
		then          string // the first step's after the reload; "" for none
		fires         time.Duration
	}{
		{"a step moved later fires at its new time", "10m", "30m", "20m", 20 * time.Minute},
		{"a step moved earlier fires at its new time", "10m", "30m", "5m", 5 * time.Minute},
		{"a step moved before the reload fires at once", "10m", "30m", "1m", 2 * time.Minute},
		{"escalation added to a receiver with an open incident", "", "", "10m", 10 * time.Minute},
		{"escalation removed: nothing fires", "10m", "30m", "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := feishutest.New(t)
			synctest.Test(t, func(t *testing.T) {
				e := startTimers(t, fs, timerOptions{first: c.first, second: c.second, inMemory: true})
				start := time.Now()
				e.notify(t, "firing-HighCPU-seq1-first-notification.json")
				time.Sleep(2 * time.Minute)
				e.core.SetPipeline(e.pipeline(t, c.then, "2h"))

				if c.fires == 0 {
					time.Sleep(3 * time.Hour)
					synctest.Wait()
					require.Empty(t, e.steps())
					return
				}
				time.Sleep(time.Until(start.Add(c.fires - time.Millisecond)))
				synctest.Wait()
				require.Empty(t, e.steps(), "not before its time")
				time.Sleep(time.Second)
				synctest.Wait()
				require.Len(t, e.steps(), 1)
				require.WithinRange(t, e.steps()[0].Time, start.Add(c.fires), start.Add(c.fires+time.Second))
				time.Sleep(time.Hour)
				synctest.Wait()
				require.Len(t, e.steps(), 1, "step 1 fires once")
			})
		})
	}
}

// A notification that took its pipeline before a reload, and commits once
// the reload has retimed the open incidents, is timed by the policy in
// force, not by the one it came with: it cannot undo the reload.
func TestEscalationOfANotificationThatStraddlesAReload(t *testing.T) {
	fs := feishutest.New(t)
	synctest.Test(t, func(t *testing.T) {
		e := startTimers(t, fs, timerOptions{first: "10m", second: "30m", inMemory: true})
		e.core.SetPipeline(e.pipeline(t, "5m", "2h"))
		synctest.Wait() // the reload's retime is done
		start := time.Now()
		e.notify(t, "firing-HighCPU-seq1-first-notification.json") // through the pipeline before the reload
		time.Sleep(5*time.Minute + time.Second)
		synctest.Wait()
		require.Len(t, e.steps(), 1, "step 1 by the reloaded policy")
		require.WithinRange(t, e.steps()[0].Time, start.Add(5*time.Minute), start.Add(5*time.Minute+time.Second))
	})
}

// A restart whose configuration gave a receiver an escalation applies it
// to the receiver's open incidents, as a reload does: the service starts
// without a pipeline, and its first counts as a change.
func TestEscalationAddedAcrossARestart(t *testing.T) {
	fs := feishutest.New(t)
	synctest.Test(t, func(t *testing.T) {
		e := startTimers(t, fs, timerOptions{inMemory: true})
		start := time.Now()
		e.notify(t, "firing-HighCPU-seq1-first-notification.json")
		time.Sleep(time.Minute)
		e.stop()

		logger := promslog.NewNopLogger()
		restarted := core.New(e.store, nil, core.Options{Logger: logger, Registerer: prometheus.NewRegistry()})
		restarted.SetPipeline(e.pipeline(t, "10m", "2h"))
		defer runTimers(restarted)()
		time.Sleep(time.Until(start.Add(10*time.Minute + time.Second)))
		synctest.Wait()
		require.Len(t, e.steps(), 1)
		require.WithinRange(t, e.steps()[0].Time, start.Add(10*time.Minute), start.Add(10*time.Minute+time.Second))
	})
}

// A restart whose configuration is unchanged leaves the timers as they
// are: the records agree with the policy, and nothing is locked or
// rescheduled; the step fires at its time all the same. One whose policy
// was reloaded and then is started again with the first policy follows it
// back: the reload recorded its time, so the records do not agree.
func TestEscalationAcrossRestarts(t *testing.T) {
	t.Run("unchanged", func(t *testing.T) {
		fs := feishutest.New(t)
		synctest.Test(t, func(t *testing.T) {
			e := startTimers(t, fs, timerOptions{first: "10m", second: "2h", inMemory: true})
			start := time.Now()
			e.notify(t, "firing-HighCPU-seq1-first-notification.json")
			time.Sleep(time.Minute)
			e.stop()

			counted := &schedules{Store: e.store}
			restarted := core.New(counted, nil, core.Options{Logger: promslog.NewNopLogger(), Registerer: prometheus.NewRegistry()})
			restarted.SetPipeline(e.pipeline(t, "10m", "2h"))
			defer runTimers(restarted)()
			synctest.Wait()
			require.Zero(t, counted.n.Load(), "nothing retimed")
			require.Zero(t, counted.locks.Load(), "nor locked")
			time.Sleep(time.Until(start.Add(10*time.Minute + time.Second)))
			synctest.Wait()
			require.Len(t, e.steps(), 1)
			require.WithinRange(t, e.steps()[0].Time, start.Add(10*time.Minute), start.Add(10*time.Minute+time.Second))
		})
	})
	t.Run("reloaded, then started with the first policy", func(t *testing.T) {
		fs := feishutest.New(t)
		synctest.Test(t, func(t *testing.T) {
			e := startTimers(t, fs, timerOptions{first: "10m", second: "2h", inMemory: true})
			start := time.Now()
			e.notify(t, "firing-HighCPU-seq1-first-notification.json")
			time.Sleep(time.Minute)
			e.core.SetPipeline(e.pipeline(t, "20m", "2h"))
			synctest.Wait()
			e.stop()

			restarted := core.New(e.store, nil, core.Options{Logger: promslog.NewNopLogger(), Registerer: prometheus.NewRegistry()})
			restarted.SetPipeline(e.pipeline(t, "10m", "2h"))
			defer runTimers(restarted)()
			time.Sleep(time.Until(start.Add(10*time.Minute + time.Second)))
			synctest.Wait()
			require.Len(t, e.steps(), 1, "at the first policy's time again")
			require.WithinRange(t, e.steps()[0].Time, start.Add(10*time.Minute), start.Add(10*time.Minute+time.Second))
		})
	})
}

// In virtual time: a step whose answer is lost was posted all the same;
// its retry, with the same uuid, is refused the way Feishu may answer a
// reused uuid, and is taken as sent: the step is recorded, once, and not
// resent for the rest of the hour.
func TestEscalationStepAfterALostAnswer(t *testing.T) {
	fs := feishutest.New(t)
	fs.SetReusedUUIDAnswer(&feishutest.ReusedUUIDFault)
	synctest.Test(t, func(t *testing.T) {
		e := newTimerEnv(t, fs, "http://127.0.0.1:1", "10m", "2h", true)
		start := time.Now()
		e.notify(t, "firing-HighCPU-seq1-first-notification.json")
		fs.LoseAnswers(1)
		time.Sleep(time.Until(start.Add(10*time.Minute + time.Second)))
		synctest.Wait()
		require.Len(t, e.steps(), 1, "Feishu took the step")
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		require.Len(t, e.steps(), 1)
		require.Equal(t, 1, fs.ReusedUUIDs(), "resent once, and taken as sent")
	})
}
