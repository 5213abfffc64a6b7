package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/alertmanager-feishu/alertmanager-feishu/actions"
	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/core"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/amtest"
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
	am    *amtest.Alertmanager
	reg   *prometheus.Registry
	root  feishutest.Message // the incident's root card, once notified
	n     core.Notification
}

func newActionEnv(t testing.TB, amURL, extra string) *actionEnv {
	t.Helper()
	e := &actionEnv{fs: feishutest.New(t), reg: prometheus.NewRegistry()}
	if amURL == "" {
		dir, err := amtest.Binaries()
		require.NoError(t, err)
		e.am = amtest.Run(t, amtest.Options{Binary: filepath.Join(dir, "alertmanager"), Config: "route: {receiver: x}\nreceivers: [{name: x}]\n"})
		amURL = e.am.URL
	}
	logger := promslog.NewNopLogger()
	store, err := state.OpenFile(filepath.Join(t.TempDir(), "state.db"), state.Options{ChainTTL: time.Hour, DedupeWindow: time.Hour}, logger)
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	cfg, err := config.Parse(fmt.Appendf(nil, actionsRouting, e.fs.URL, amURL, extra))
	require.NoError(t, err)
	e.pl, err = core.NewPipeline(cfg, core.PipelineOptions{Logger: logger})
	require.NoError(t, err)
	e.store = store
	e.core = core.New(store, e.pl, core.Options{Logger: logger, Registerer: e.reg})
	t.Cleanup(func() { e.core.Shutdown(context.Background()) })
	return e
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
			if labels["action"] == action && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
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
	repeat := e.core.Callback(context.Background(), first)
	require.Equal(t, answer.Toast, repeat.Toast, "a repeated event is answered as the first was")
	e.settle(t)
	require.Len(t, e.fs.Messages(), 2, "nothing was done twice")
	require.InDelta(t, 2, e.count(core.ActionAck, "duplicate"), 0)
	require.Equal(t, "ou_alice", e.incident(t).Ack.By.OpenID, "the first acknowledgement stands")
}

// A silence from the card is made in a real Alertmanager, selects the
// group's labels, names the person, and expires from the card.
func TestSilenceAndExpire(t *testing.T) {
	e := newActionEnv(t, "", "")
	e.notify(t)
	e.fs.SetUserName("ou_alice", "Alice")
	require.Len(t, buttons(t, e.root.Content), 3, "Acknowledge and two Silence buttons")

	answer := e.core.Callback(context.Background(), click(button(t, e.root.Content, core.ActionSilence, "4h"), "ou_alice"))
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
	require.WithinDuration(t, time.Now().Add(4*time.Hour), s.EndsAt, time.Minute)
	in := e.incident(t)
	require.Equal(t, s.ID, in.Silence.ID)
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

// Every click that cannot be acted on is answered with an error toast and
// counted as refused, and nothing is done.
func TestRefusedClicks(t *testing.T) {
	e := newActionEnv(t, "http://127.0.0.1:1", "  allowed: {users: [{open_id: ou_alice}]}")
	e.notify(t)
	ack := button(t, e.root.Content, core.ActionAck, "")
	var v map[string]string
	require.NoError(t, json.Unmarshal(ack, &v))
	other := incident.NewID(strings.Repeat("0", 64))
	for name, cb := range map[string]actions.Callback{
		"not json":             click(json.RawMessage(`"ack"`), "ou_alice"),
		"unknown action":       click(json.RawMessage(`{"action":"reboot","incident":"`+v["incident"]+`"}`), "ou_alice"),
		"no incident":          click(json.RawMessage(`{"action":"ack"}`), "ou_alice"),
		"malformed incident":   click(json.RawMessage(`{"action":"ack","incident":"x"}`), "ou_alice"),
		"incident unknown":     click(json.RawMessage(`{"action":"ack","incident":"`+other+`"}`), "ou_alice"),
		"tampered random part": click(json.RawMessage(`{"action":"ack","incident":"`+incident.NewID(incident.ChainOf(v["incident"]))+`"}`), "ou_alice"),
		"duration not listed":  click(json.RawMessage(`{"action":"silence","duration":"2h","incident":"`+v["incident"]+`"}`), "ou_alice"),
		"not allowed":          click(ack, "ou_mallory"),
	} {
		t.Run(name, func(t *testing.T) {
			answer := e.core.Callback(context.Background(), cb)
			require.Equal(t, actions.ToastError, answer.Toast.Type, answer.Toast.Content)
		})
	}
	anotherApp := click(ack, "ou_alice")
	anotherApp.AppID = "cli_other"
	require.Equal(t, actions.ToastError, e.core.Callback(context.Background(), anotherApp).Toast.Type)
	e.settle(t)
	require.Len(t, e.fs.Messages(), 1, "nothing was sent")
	require.Zero(t, e.fs.Messages()[0].Updates, "the card is unchanged")
	in := e.incident(t)
	require.Nil(t, in.Ack)
	require.Nil(t, in.Silence)
	require.InDelta(t, 9, e.count("unknown", "refused")+e.count(core.ActionAck, "refused")+e.count(core.ActionSilence, "refused"), 0)
}

// Alertmanager refusing the silence, or not answering, is told to the
// clicker, and the card and the incident are unchanged.
func TestSilenceFailures(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		e := newActionEnv(t, "http://127.0.0.1:1", "")
		e.notify(t)
		answer := e.core.Callback(context.Background(), click(button(t, e.root.Content, core.ActionSilence, "1h"), "ou_alice"))
		require.Equal(t, actions.ToastError, answer.Toast.Type)
		require.Contains(t, answer.Toast.Content, "try again")
		e.settle(t)
		require.Nil(t, e.incident(t).Silence)
		require.Len(t, e.fs.Messages(), 1)
		require.InDelta(t, 1, e.count(core.ActionSilence, "failed"), 0)
	})
	t.Run("refused", func(t *testing.T) {
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
		answer := e.core.Callback(context.Background(), click(button(t, e.root.Content, core.ActionSilence, "1h"), "ou_alice"))
		require.Equal(t, actions.ToastError, answer.Toast.Type)
		require.Contains(t, answer.Toast.Content, "refused")
		e.settle(t)
		require.Nil(t, e.incident(t).Silence)
		require.Len(t, e.fs.Messages(), 1)
		require.InDelta(t, 1, e.count(core.ActionSilence, "refused"), 0)
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
}

// A click that arrives while a notification of its incident holds the lock
// is told to try again within Feishu's 3 s, not left to time out.
func TestClickWhileBusy(t *testing.T) {
	e := newActionEnv(t, "http://127.0.0.1:1", "")
	e.notify(t)
	unlock, err := e.store.Lock(context.Background(), e.incident(t).Chain)
	require.NoError(t, err)
	defer unlock()
	start := time.Now()
	answer := e.core.Callback(context.Background(), click(button(t, e.root.Content, core.ActionAck, ""), "ou_alice"))
	require.Equal(t, actions.ToastError, answer.Toast.Type)
	require.Less(t, time.Since(start), 3*time.Second)
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
