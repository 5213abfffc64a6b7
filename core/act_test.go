package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/alertmanager-feishu/alertmanager-feishu/actions"
	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/core"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/amtest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/logtest"
	"github.com/alertmanager-feishu/alertmanager-feishu/state"
)

const actionsRouting = `
feishu:
  base_url: %s
  app_id: cli_feishutest
  app_secret: feishutest-secret
  rate_limit: {per_chat: 0, per_app: 0, per_app_minute: 0}
actions:
  alertmanager: {urls: [%s]}
  silence_durations: [1h, 4h]
%s
receivers:
  - {name: infra, chat_id: oc_infra}
  - {name: quiet, chat_id: oc_quiet, actions: false}
route:
  receiver: infra
`

// actionEnv is a core with actions, on a fresh file store, delivering to
// the stand-in and silencing in a real Alertmanager.
type actionEnv struct {
	core  *core.Core
	pl    *core.Pipeline
	store state.Store
	fs    *feishutest.Server
	am    *amtest.Alertmanager // nil when the test named the Alertmanager
	reg   *prometheus.Registry
	logs  *logBuffer
	skew  atomic.Int64       // the core's clock is this many nanoseconds off
	root  feishutest.Message // the incident's root card, once notified
	n     core.Notification
}

// envOptions say how an actionEnv differs from the usual one.
type envOptions struct {
	amURL string // the Alertmanager silences go to; "" runs a real one
	extra string // more of the actions block
	// front is what the service reaches Feishu through, given the
	// stand-in's handler; nil is the stand-in itself.
	front func(http.Handler) http.Handler
}

func newActionEnv(t testing.TB, amURL, extra string) *actionEnv {
	t.Helper()
	return newActionEnvWith(t, envOptions{amURL: amURL, extra: extra})
}

func newActionEnvWith(t testing.TB, o envOptions) *actionEnv {
	t.Helper()
	e := &actionEnv{fs: feishutest.New(t), reg: prometheus.NewRegistry(), logs: &logBuffer{}}
	if o.amURL == "" {
		dir, err := amtest.Binaries()
		require.NoError(t, err)
		e.am = amtest.Run(t, amtest.Options{Binary: filepath.Join(dir, "alertmanager"), Config: "route: {receiver: x}\nreceivers: [{name: x}]\n"})
		o.amURL = e.am.URL
	}
	feishuURL := e.fs.URL
	if o.front != nil {
		front := httptest.NewServer(o.front(e.fs.Handler()))
		t.Cleanup(front.Close)
		feishuURL = front.URL
	}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("core log:\n%s", e.logs.String())
		}
	})
	store, err := state.OpenFile(filepath.Join(t.TempDir(), "state.db"), state.Options{ChainTTL: time.Hour, DedupeWindow: time.Hour}, logger)
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	cfg, err := config.Parse(fmt.Appendf(nil, actionsRouting, feishuURL, o.amURL, o.extra))
	require.NoError(t, err)
	e.pl, err = core.NewPipeline(cfg, core.PipelineOptions{Logger: logger})
	require.NoError(t, err)
	e.store = store
	now := func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }
	e.core = core.New(store, e.pl, core.Options{Logger: logger, Registerer: e.reg, Now: now})
	t.Cleanup(func() { e.core.Shutdown(context.Background()) })
	return e
}

// logBuffer holds the core's log, JSON lines, written from any goroutine.
type logBuffer struct{ logtest.Buffer }

func (l *logBuffer) with(t *testing.T, key, value string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(l.String()) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		if rec[key] == value {
			out = append(out, rec)
		}
	}
	return out
}

// notify sends the first notification of HighCPU's group to infra, and
// returns its root card.
func (e *actionEnv) notify(t *testing.T) {
	t.Helper()
	e.n = notification(t, "infra", "firing-HighCPU-seq1-first-notification.json")
	out := e.core.Notify(context.Background(), e.pl.Receiver("infra"), e.n)
	require.Equal(t, core.Sent, out.Status, out.Err)
	e.root = e.fs.Messages()[0]
}

// buttons are the values of the incident buttons on a card.
func buttons(t testing.TB, content json.RawMessage) []map[string]string {
	t.Helper()
	var card struct {
		Elements []struct {
			Tag     string `json:"tag"`
			Actions []struct {
				Value map[string]string `json:"value"`
			} `json:"actions"`
		} `json:"elements"`
	}
	require.NoError(t, json.Unmarshal(content, &card))
	var out []map[string]string
	for _, el := range card.Elements {
		for _, a := range el.Actions {
			if a.Value != nil {
				out = append(out, a.Value)
			}
		}
	}
	return out
}

// button is the value of the card's button for action (and duration).
func button(t *testing.T, content json.RawMessage, action, duration string) json.RawMessage {
	t.Helper()
	for _, v := range buttons(t, content) {
		if v["action"] == action && v["duration"] == duration {
			b, err := json.Marshal(v)
			require.NoError(t, err)
			return b
		}
	}
	t.Fatalf("no %s %s button on the card; buttons: %v", action, duration, buttons(t, content))
	return nil
}

var events int

// click is a callback of the button with value, by openID.
func click(value json.RawMessage, openID string) actions.Callback {
	events++
	return actions.Callback{
		EventID: fmt.Sprintf("ev-%d", events), AppID: feishutest.AppID, Operator: actions.Operator{OpenID: openID},
		Value: value, Tag: "button", Created: time.Now(),
	}
}

func (e *actionEnv) incident(t *testing.T) *incident.Incident {
	t.Helper()
	var v struct{ Incident string }
	require.NoError(t, json.Unmarshal(button(t, e.root.Content, core.ActionAck, ""), &v))
	in, err := e.store.Get(context.Background(), v.Incident)
	require.NoError(t, err)
	return in
}

// settle waits for the work a click leaves after its answer: the root card
// updated and the reply sent.
func (e *actionEnv) settle(t *testing.T) {
	t.Helper()
	require.NoError(t, e.core.Shutdown(context.Background()))
}

// count reads one series of the actions metric.
func (e *actionEnv) count(action, result string) float64 {
	return e.counts()[action+"/"+result]
}

// counts are the actions metric's series, by "action/result".
func (e *actionEnv) counts() map[string]float64 {
	out := map[string]float64{}
	mfs, _ := e.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "alertmanager_feishu_actions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out[labels["action"]+"/"+labels["result"]] = m.GetCounter().GetValue()
		}
	}
	return out
}

// refusal is what a refused click shows: the action it is counted under,
// what its toast and its log line's reason say.
type refusal struct {
	action, toast, reason string
}

// requireRefused clicks cb and checks that the click was refused and
// nothing else happened: counted once as refused under its action and
// nothing more, answered with an error toast and no card (the card stays
// as it is), logged once with its reason; no silence in Alertmanager, the
// incident as it was, no message sent nor card updated in the stand-in.
func (e *actionEnv) requireRefused(t *testing.T, cb actions.Callback, want refusal) {
	t.Helper()
	before, in, msgs := e.counts(), e.incident(t), e.fs.Messages()
	answer := e.core.Callback(context.Background(), cb)
	e.settle(t)

	require.NotNil(t, answer.Toast)
	require.Equal(t, actions.ToastError, answer.Toast.Type, answer.Toast.Content)
	require.Contains(t, answer.Toast.Content, want.toast)
	require.Empty(t, string(answer.Card), "a refused click answers with no card: the card is unchanged")

	counted := map[string]float64{}
	for k, v := range e.counts() {
		if d := v - before[k]; d != 0 {
			counted[k] = d
		}
	}
	require.Equal(t, map[string]float64{want.action + "/refused": 1}, counted)

	lines := e.logs.with(t, "event_id", cb.EventID)
	require.Len(t, lines, 1, "one log line for the click")
	require.Equal(t, "card action refused", lines[0]["msg"])
	require.Equal(t, want.action, lines[0]["action"])
	require.Contains(t, lines[0]["reason"], want.reason)

	if e.am != nil {
		silences, err := e.am.Silences()
		require.NoError(t, err)
		require.Empty(t, silences, "no silence in Alertmanager")
	}
	require.Equal(t, in, e.incident(t), "the incident is as it was")
	require.Equal(t, msgs, e.fs.Messages(), "no message sent, no card updated")
}

// Acknowledge records who and when, answers with the card as it now is,
// updates the root card for the chat and says so in the chain; a second
// click changes nothing, and Feishu's repeat of the first is answered as
// the first was.
func TestAcknowledge(t *testing.T) {
	e := newActionEnv(t, "http://127.0.0.1:1", "")
	e.notify(t)
	e.fs.SetUserName("ou_alice", "Alice")
	first := click(button(t, e.root.Content, core.ActionAck, ""), "ou_alice")
	answer := e.core.Callback(context.Background(), first)
	require.Equal(t, actions.ToastSuccess, answer.Toast.Type)
	require.NotEmpty(t, answer.Card, "the new card comes with the answer")
	require.NotContains(t, string(answer.Card), `"action":"ack"`, "no Acknowledge button once acknowledged")
	e.settle(t)

	in := e.incident(t)
	require.Equal(t, e.n.Body, in.Last, "a receiver with actions keeps its last notification, to render its card from")
	require.Equal(t, map[string]string(e.n.Payload.GroupLabels), in.GroupLabels, "and the labels a silence selects")
	require.Equal(t, map[string]string(e.n.Payload.CommonLabels), in.CommonLabels)
	require.NotNil(t, in.Ack)
	require.Equal(t, incident.Person{OpenID: "ou_alice", Name: "Alice"}, in.Ack.By)
	msgs := e.fs.Messages()
	require.Len(t, msgs, 2, "the root and one reply")
	require.Zero(t, msgs[0].Updates, "the answer's card is the update: Feishu applies it")
	require.Equal(t, e.root.ID, msgs[1].ParentID)
	require.Contains(t, msgs[1].Text, "Alice")
	require.InDelta(t, 1, e.count(core.ActionAck, "done"), 0)

	again := e.core.Callback(context.Background(), click(button(t, e.root.Content, core.ActionAck, ""), "ou_bob"))
	require.Equal(t, actions.ToastInfo, again.Toast.Type)
	require.Contains(t, again.Toast.Content, "Alice")
	require.Empty(t, string(again.Card), "a click that changed nothing leaves the card as it is")
	repeat := e.core.Callback(context.Background(), first)
	require.Equal(t, answer.Toast, repeat.Toast, "a repeated event is answered as the first was")
	require.JSONEq(t, string(answer.Card), string(repeat.Card), "card and all: Feishu sends it again when the first answer did not reach it")
	e.settle(t)
	require.Len(t, e.fs.Messages(), 2, "nothing was done twice")
	require.InDelta(t, 2, e.count(core.ActionAck, "duplicate"), 0)
	require.Equal(t, "ou_alice", e.incident(t).Ack.By.OpenID, "the first acknowledgement stands")
}

// Two clicks at once, on two replicas sharing the state, give one result:
// one acknowledgement and one reply, the other clicker told it was done;
// only the answer that acted carries the new card, so Feishu updates the
// card once, and nothing is updated through the API.
func TestSimultaneousClicks(t *testing.T) {
	e := newActionEnv(t, "http://127.0.0.1:1", "")
	e.notify(t)
	other := core.New(e.store, e.pl, core.Options{Logger: slog.New(slog.NewJSONHandler(e.logs, nil)), Registerer: prometheus.NewRegistry()})
	t.Cleanup(func() { other.Shutdown(context.Background()) })
	ack := button(t, e.root.Content, core.ActionAck, "")
	clicks := []actions.Callback{click(ack, "ou_alice"), click(ack, "ou_bob")}
	answers := make([]actions.Answer, 2)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, replica := range []*core.Core{e.core, other} {
		wg.Go(func() {
			<-start
			answers[i] = replica.Callback(context.Background(), clicks[i])
		})
	}
	close(start)
	wg.Wait()
	require.NoError(t, other.Shutdown(context.Background()))
	e.settle(t)

	types := []string{answers[0].Toast.Type, answers[1].Toast.Type}
	slices.Sort(types)
	require.Equal(t, []string{actions.ToastInfo, actions.ToastSuccess}, types, "one acknowledgement, and one told it was done already")
	acted := slices.IndexFunc(answers, func(a actions.Answer) bool { return a.Toast.Type == actions.ToastSuccess })
	require.NotEmpty(t, string(answers[acted].Card), "the answer that acted carries the new card")
	require.Empty(t, string(answers[1-acted].Card), "the other leaves the card to it")
	msgs := e.fs.Messages()
	require.Len(t, msgs, 2, "the root and one reply")
	require.Zero(t, msgs[0].Updates, "no update through the API: the answer's card is the update")
	require.Equal(t, clicks[acted].Operator.OpenID, e.incident(t).Ack.By.OpenID)
}

// A silence from the card is made in a real Alertmanager, selects the
// group's labels, names the person, and expires from the card.
func TestSilenceAndExpire(t *testing.T) {
	e := newActionEnv(t, "", "")
	e.notify(t)
	e.fs.SetUserName("ou_alice", "Alice")
	require.Len(t, buttons(t, e.root.Content), 3, "Acknowledge and two Silence buttons")

	before := time.Now()
	answer := e.core.Callback(context.Background(), click(button(t, e.root.Content, core.ActionSilence, "4h"), "ou_alice"))
	after := time.Now()
	require.Equal(t, actions.ToastSuccess, answer.Toast.Type, answer.Toast.Content)
	e.settle(t)
	silences, err := e.am.Silences()
	require.NoError(t, err)
	require.Len(t, silences, 1)
	s := silences[0]
	require.Equal(t, "active", s.Status.State)
	require.Equal(t, []amtest.Matcher{{Name: "alertname", Value: "HighCPU", IsEqual: true}}, s.Matchers)
	require.Contains(t, s.CreatedBy, "Alice")
	require.Contains(t, s.CreatedBy, "ou_alice")
	// It ends 4h after the click; Alertmanager keeps times to the
	// millisecond.
	require.WithinRange(t, s.EndsAt, before.Add(4*time.Hour).Truncate(time.Millisecond), after.Add(4*time.Hour))
	in := e.incident(t)
	require.Equal(t, s.ID, in.Silence.ID)
	require.True(t, in.Silence.Until.Truncate(time.Millisecond).Equal(s.EndsAt), "the card shows when it ends: %v, Alertmanager %v", in.Silence.Until, s.EndsAt)
	require.Contains(t, e.fs.Messages()[1].Text, "4h")
	require.Contains(t, string(answer.Card), `"action":"unsilence"`, "a silenced card offers to expire it")
	require.Contains(t, string(answer.Card), "/#/silences/"+s.ID, "and links to it")

	again := e.core.Callback(context.Background(), click(button(t, e.root.Content, core.ActionSilence, "1h"), "ou_bob"))
	require.Equal(t, actions.ToastInfo, again.Toast.Type, "already silenced")

	card := answer.Card
	answer = e.core.Callback(context.Background(), click(button(t, card, core.ActionUnsilence, ""), "ou_alice"))
	require.Equal(t, actions.ToastSuccess, answer.Toast.Type, answer.Toast.Content)
	e.settle(t)
	got, err := e.am.Silence(s.ID)
	require.NoError(t, err)
	require.Equal(t, "expired", got.Status.State)
	require.Nil(t, e.incident(t).Silence)
	silences, err = e.am.Silences()
	require.NoError(t, err)
	require.Len(t, silences, 1, "no second silence was made")
}

// Every click that cannot be acted on is answered with an error toast,
// logged with its reason and counted as refused, and nothing is done.
func TestRefusedClicks(t *testing.T) {
	e := newActionEnv(t, "", "  allowed: {users: [{open_id: ou_alice}]}")
	e.notify(t)
	ack := button(t, e.root.Content, core.ActionAck, "")
	var v map[string]string
	require.NoError(t, json.Unmarshal(ack, &v))
	other := incident.NewID(strings.Repeat("0", 64))
	anotherApp := func() actions.Callback {
		cb := click(ack, "ou_alice")
		cb.AppID = "cli_other"
		return cb
	}
	for _, c := range []struct {
		name  string
		click func() actions.Callback
		want  refusal
	}{
		{"not json", func() actions.Callback { return click(json.RawMessage(`"ack"`), "ou_alice") },
			refusal{"unknown", "not one this service knows", "not one of this service's"}},
		{"unknown action", func() actions.Callback {
			return click(json.RawMessage(`{"action":"reboot","incident":"`+v["incident"]+`"}`), "ou_alice")
		}, refusal{"unknown", "not one this service knows", `unknown action "reboot"`}},
		{"no incident", func() actions.Callback { return click(json.RawMessage(`{"action":"ack"}`), "ou_alice") },
			refusal{"unknown", "not one this service knows", "not one of this service's"}},
		{"malformed incident", func() actions.Callback {
			return click(json.RawMessage(`{"action":"ack","incident":"x"}`), "ou_alice")
		}, refusal{core.ActionAck, "not one this service knows", "names no incident"}},
		{"incident unknown", func() actions.Callback {
			return click(json.RawMessage(`{"action":"ack","incident":"`+other+`"}`), "ou_alice")
		}, refusal{core.ActionAck, "not one this service knows", "names no incident"}},
		{"tampered random part", func() actions.Callback {
			return click(json.RawMessage(`{"action":"ack","incident":"`+incident.NewID(incident.ChainOf(v["incident"]))+`"}`), "ou_alice")
		}, refusal{core.ActionAck, "not one this service knows", "names no incident"}},
		{"another app's incident", anotherApp,
			refusal{core.ActionAck, "not one this service knows", "another app"}},
		{"duration not listed", func() actions.Callback {
			return click(json.RawMessage(`{"action":"silence","duration":"2h","incident":"`+v["incident"]+`"}`), "ou_alice")
		}, refusal{core.ActionSilence, "not one this service knows", `duration "2h" is not in actions.silence_durations`}},
		{"not allowed", func() actions.Callback { return click(ack, "ou_mallory") },
			refusal{core.ActionAck, "not allowed", "not in actions.allowed"}},
		{"not allowed to silence", func() actions.Callback {
			return click(button(t, e.root.Content, core.ActionSilence, "1h"), "ou_mallory")
		}, refusal{core.ActionSilence, "not allowed", "not in actions.allowed"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.requireRefused(t, c.click(), c.want)
		})
	}
}

// Alertmanager refusing the silence, or not answering, is told to the
// clicker, logged with what Alertmanager said and counted as refused, and
// the card and the incident are unchanged.
func TestSilenceFailures(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		e := newActionEnv(t, "http://127.0.0.1:1", "")
		e.notify(t)
		e.requireRefused(t, click(button(t, e.root.Content, core.ActionSilence, "1h"), "ou_alice"),
			refusal{core.ActionSilence, "try again", "create silence: no alertmanager answered: http://127.0.0.1:1"})
	})
	t.Run("refused: unauthorized", func(t *testing.T) {
		dir, err := amtest.Binaries()
		require.NoError(t, err)
		bin := filepath.Join(dir, "alertmanager")
		hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
		require.NoError(t, err)
		// An Alertmanager that wants credentials the service was not given.
		am := amtest.Run(t, amtest.Options{Binary: bin, Config: "route: {receiver: x}\nreceivers: [{name: x}]\n",
			WebConfig: "basic_auth_users:\n  admin: " + string(hash) + "\n"})
		e := newActionEnv(t, am.URL, "")
		e.notify(t)
		e.requireRefused(t, click(button(t, e.root.Content, core.ActionSilence, "1h"), "ou_alice"),
			refusal{core.ActionSilence, "Alertmanager refused the silence: Unauthorized", "refused with status 401"})
	})
	t.Run("refused: invalid silence", func(t *testing.T) {
		e := newActionEnv(t, "", "")
		e.notify(t)
		// A clock two hours behind Alertmanager's makes a silence of 1h
		// that ended already, which Alertmanager refuses with a 400.
		e.skew.Store(int64(-2 * time.Hour))
		e.requireRefused(t, click(button(t, e.root.Content, core.ActionSilence, "1h"), "ou_alice"),
			refusal{core.ActionSilence, "Alertmanager refused the silence: Failed to create silence: end time can't be in the past",
				"refused with status 400: Failed to create silence: end time can't be in the past"})
	})
}

// A click on a resolved incident does nothing and says so; the resolved
// root card keeps who acknowledged it, without buttons.
func TestClickOnResolved(t *testing.T) {
	e := newActionEnv(t, "http://127.0.0.1:1", "")
	e.notify(t)
	ack := button(t, e.root.Content, core.ActionAck, "")
	require.Equal(t, actions.ToastSuccess, e.core.Callback(context.Background(), click(ack, "ou_alice")).Toast.Type)
	e.settle(t)
	resolved := notification(t, "infra", "resolved-HighCPU-seq4-all-alerts-resolved.json")
	require.Equal(t, core.Sent, e.core.Notify(context.Background(), e.pl.Receiver("infra"), resolved).Status)
	root, ok := e.fs.Message(e.root.ID)
	require.True(t, ok)
	require.Empty(t, buttons(t, root.Content), "a resolved card has no buttons")
	require.Contains(t, root.Text, "ou_alice", "but keeps who acknowledged it")

	answer := e.core.Callback(context.Background(), click(ack, "ou_bob"))
	require.Equal(t, actions.ToastInfo, answer.Toast.Type)
	e.settle(t)
	require.Len(t, e.fs.Messages(), 3, "the root, the ack's reply and the resolved reply: nothing more")
	require.InDelta(t, 1, e.count(core.ActionAck, "refused"), 0)
	refused := e.logs.with(t, "msg", "card action refused")
	require.Len(t, refused, 1)
	require.Equal(t, "the incident is resolved", refused[0]["reason"])
}

// The resolved card, which the notification resolving an acknowledged and
// silenced incident puts on its root, keeps who acknowledged it and the
// silence, with its link into Alertmanager, and has no buttons.
func TestResolvedCardKeepsTheSilence(t *testing.T) {
	e := newActionEnv(t, "", "")
	e.notify(t)
	e.fs.SetUserName("ou_alice", "Alice")
	e.fs.SetUserName("ou_bob", "Bob")
	answer := e.core.Callback(context.Background(), click(button(t, e.root.Content, core.ActionAck, ""), "ou_alice"))
	require.Equal(t, actions.ToastSuccess, answer.Toast.Type, answer.Toast.Content)
	answer = e.core.Callback(context.Background(), click(button(t, e.root.Content, core.ActionSilence, "4h"), "ou_bob"))
	require.Equal(t, actions.ToastSuccess, answer.Toast.Type, answer.Toast.Content)
	e.settle(t)
	silence := e.incident(t).Silence
	require.NotNil(t, silence)

	resolved := notification(t, "infra", "resolved-HighCPU-seq4-all-alerts-resolved.json")
	require.Equal(t, core.Sent, e.core.Notify(context.Background(), e.pl.Receiver("infra"), resolved).Status)
	root, ok := e.fs.Message(e.root.ID)
	require.True(t, ok)
	require.Equal(t, 1, root.Updates, "the root card updated once through the API, to the resolved card (the clicks' cards came with their answers)")
	require.Contains(t, root.Text, "RESOLVED")
	require.Empty(t, buttons(t, root.Content), "a resolved card has no buttons")
	require.Contains(t, root.Text, "**Acknowledged** by Alice")
	require.Contains(t, root.Text, "**Silenced** until")
	require.Contains(t, root.Text, "by Bob")
	require.Contains(t, root.Text, "/#/silences/"+silence.ID, "and links to the silence")
}

// A click whose handling outlasts Feishu's deadline is still acted on and
// recorded, and since its answer comes too late for Feishu to apply, the
// root card is updated through the API instead: once, to the new state.
func TestLateAnswerUpdatesTheCard(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newActionEnvWith(t, envOptions{amURL: "http://127.0.0.1:1", front: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/open-apis/contact/v3/users/") {
				// Looking the clicker's name up takes all of Feishu's
				// time: the click's context ends meanwhile.
				cancel()
				<-r.Context().Done()
				return
			}
			h.ServeHTTP(w, r)
		})
	}})
	e.notify(t)
	answer := e.core.Callback(ctx, click(button(t, e.root.Content, core.ActionAck, ""), "ou_alice"))
	require.Error(t, ctx.Err(), "the click outlasted its context")
	require.Equal(t, actions.ToastSuccess, answer.Toast.Type, answer.Toast.Content)
	e.settle(t)

	in := e.incident(t)
	require.NotNil(t, in.Ack, "the acknowledgement is recorded")
	require.Equal(t, "ou_alice", in.Ack.By.OpenID)
	require.InDelta(t, 1, e.count(core.ActionAck, "done"), 0)
	root, ok := e.fs.Message(e.root.ID)
	require.True(t, ok)
	require.Equal(t, 1, root.Updates, "the card updated once, through the API")
	require.JSONEq(t, string(answer.Card), string(root.Content), "to the card the late answer carried")
	require.NotContains(t, string(root.Content), `"action":"ack"`, "without the Acknowledge button")
	require.Contains(t, root.Text, "**Acknowledged**")
	msgs := e.fs.Messages()
	require.Len(t, msgs, 2, "the root and the reply that records the acknowledgement")
	require.Equal(t, e.root.ID, msgs[1].ParentID)
}

// A click that arrives while a notification of its incident holds the lock
// waits a little for it, then is told to try again, within Feishu's 3 s.
// The lock is taken in a bubble, so that the click waits for it on the
// bubble's clock.
func TestClickWhileBusy(t *testing.T) {
	e := newActionEnv(t, "http://127.0.0.1:1", "")
	e.notify(t)
	chain := e.incident(t).Chain
	cb := click(button(t, e.root.Content, core.ActionAck, ""), "ou_alice")
	synctest.Test(t, func(t *testing.T) {
		unlock, err := e.store.Lock(context.Background(), chain)
		require.NoError(t, err)
		defer unlock()
		start := time.Now()
		answer := e.core.Callback(context.Background(), cb)
		waited := time.Since(start)
		require.Equal(t, actions.ToastError, answer.Toast.Type)
		require.Contains(t, answer.Toast.Content, "try again")
		require.Positive(t, waited, "it waited for the lock")
		require.Less(t, waited, 3*time.Second, "and answered within Feishu's deadline")
	})
	e.settle(t)
	require.Nil(t, e.incident(t).Ack, "nothing was done")
	require.Len(t, e.fs.Messages(), 1)
	require.InDelta(t, 1, e.count(core.ActionAck, "failed"), 0)
}

// A receiver whose actions are off sends the card it always did.
func TestNoButtonsWithoutActions(t *testing.T) {
	e := newActionEnv(t, "http://127.0.0.1:1", "")
	n := notification(t, "quiet", "firing-HighCPU-seq1-first-notification.json")
	require.Equal(t, core.Sent, e.core.Notify(context.Background(), e.pl.Receiver("quiet"), n).Status)
	require.Empty(t, buttons(t, e.fs.Messages()[0].Content))
}

// The incidents gauge counts the open incidents by what is being done
// about them.
func TestIncidentsGauge(t *testing.T) {
	e := newActionEnv(t, "http://127.0.0.1:1", "")
	e.notify(t)
	gauge := func(state string) float64 {
		mfs, err := e.reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() != "alertmanager_feishu_incidents" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == state {
					return m.GetGauge().GetValue()
				}
			}
		}
		return -1
	}
	require.InDelta(t, 1, gauge("firing"), 0)
	require.InDelta(t, 0, gauge("acknowledged"), 0)
	require.Equal(t, actions.ToastSuccess, e.core.Callback(context.Background(), click(button(t, e.root.Content, core.ActionAck, ""), "ou_alice")).Toast.Type)
	require.InDelta(t, 0, gauge("firing"), 0)
	require.InDelta(t, 1, gauge("acknowledged"), 0)
	require.InDelta(t, 0, gauge("silenced"), 0)
}
