package core_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/state"
)

// failingSteps is the real store but for the commits of escalation steps,
// the first few of which it refuses, as a store that went away would.
type failingSteps struct {
	state.Store
	left atomic.Int32
}

func (s *failingSteps) Commit(ctx context.Context, w state.Write) error {
	if strings.HasPrefix(w.Notification, "escalation:") && s.left.Add(-1) >= 0 {
		return errors.New("store unavailable")
	}
	return s.Store.Commit(ctx, w)
}

// In virtual time: Feishu refusing a step's reply twice, with a code it
// does not document for a reused uuid, leaves the step unfired, neither
// recorded nor buzzed: the refused attempt's uuid made nothing, and the
// second refusal is no answer to a message made. A later try fires it.
func TestEscalationStepRefusedTwice(t *testing.T) {
	fs := feishutest.New(t)
	fs.AddChatMembers("oc_infra", "ou_lead", "ou_head")
	synctest.Test(t, func(t *testing.T) {
		e := newTimerEnv(t, fs, "", "10m", "2h", true)
		start := time.Now()
		e.notify(t, "firing-HighCPU-seq1-first-notification.json")
		sends := fs.Sends()
		fs.FailNext(2, feishutest.Fault{Status: 400, Code: 230001, Msg: "param is invalid"})
		// The first try at its time, the second a claim's time later.
		time.Sleep(time.Until(start.Add(10*time.Minute + state.ClaimTTL + time.Second)))
		synctest.Wait()
		require.Empty(t, fs.Urgents(), "nobody is buzzed for a step that did not go")
		require.Empty(t, e.steps())
		require.Equal(t, sends+2, fs.Sends(), "tried twice, refused twice")
		require.Zero(t, e.record(t).Escalation.Step, "the step is not recorded")

		time.Sleep(5 * time.Minute)
		synctest.Wait()
		require.Len(t, e.steps(), 1, "a later try fires it")
		require.Len(t, fs.Urgents(), 1)
		require.Equal(t, 1, e.record(t).Escalation.Step)
	})
}

// In virtual time: a step whose record fails after Feishu took its reply
// is tried again, its reply resent with the attempt's uuid, which Feishu
// keeps as one message. The buzz, which has no such key, follows the
// record, so it comes once however often the store fails.
func TestEscalationStepNotRecorded(t *testing.T) {
	fs := feishutest.New(t)
	fs.AddChatMembers("oc_infra", "ou_lead", "ou_head")
	synctest.Test(t, func(t *testing.T) {
		failing := &failingSteps{}
		failing.left.Store(3)
		e := startTimers(t, fs, timerOptions{first: "10m", second: "2h", inMemory: true,
			wrap: func(s state.Store) state.Store { failing.Store = s; return failing }})
		start := time.Now()
		e.notify(t, "firing-HighCPU-seq1-first-notification.json")
		time.Sleep(time.Until(start.Add(10*time.Minute + time.Second)))
		synctest.Wait()
		require.Len(t, e.steps(), 1, "Feishu took the reply")
		require.Empty(t, fs.Urgents(), "no buzz before the step is recorded")

		time.Sleep(30 * time.Minute)
		synctest.Wait()
		require.Equal(t, int32(-1), failing.left.Load(), "recorded at the fourth try")
		require.Len(t, e.steps(), 1, "each try resent the one reply")
		require.Equal(t, 3, fs.ReusedUUIDs())
		require.Len(t, fs.Urgents(), 1, "buzzed once, after the record")
		require.Equal(t, 1, e.record(t).Escalation.Step)
	})
}

// In virtual time: a step Feishu refuses for good (the bot was taken out
// of the chat) is tried again less and less often, up to every ten
// minutes, rather than at every claim's end; once the bot is back, it
// fires within that.
func TestEscalationRefusedStepBacksOff(t *testing.T) {
	fs := feishutest.New(t)
	synctest.Test(t, func(t *testing.T) {
		e := newTimerEnv(t, fs, "", "10m", "5h", true)
		start := time.Now()
		e.notify(t, "firing-HighCPU-seq1-first-notification.json")
		sends := fs.Sends()
		fs.FailTarget("oc_infra", feishutest.Fault{Status: 400, Code: 230002, Msg: "Bot is not in the chat"})
		time.Sleep(time.Until(start.Add(10*time.Minute + time.Hour)))
		synctest.Wait()
		// At 0, 30 s, 1.5, 3.5, 7.5, 15.5 min, then every 10 min: 10
		// tries in the hour, where a retry at every claim's end would
		// make 120.
		tries := fs.Sends() - sends
		require.Equal(t, 10, tries)

		fs.ClearTarget("oc_infra")
		time.Sleep(10*time.Minute + time.Second)
		synctest.Wait()
		require.Len(t, e.steps(), 1, "fires once the bot is back")
	})
}

// In virtual time: a step that is slow to fire (its chain's lock held
// elsewhere) does not hold up another incident's step, which fires at its
// time.
func TestEscalationSlowStepDelaysNoOther(t *testing.T) {
	fs := feishutest.New(t)
	synctest.Test(t, func(t *testing.T) {
		e := newTimerEnv(t, fs, "", "10m", "5h", true)
		start := time.Now()
		e.notify(t, "firing-HighCPU-seq1-first-notification.json")
		slow := e.record(t)
		time.Sleep(5 * time.Second)
		e.notify(t, "firing-HighCPU-critical-max_alerts1.json")
		unlock, err := e.store.Lock(context.Background(), slow.Chain)
		require.NoError(t, err)

		time.Sleep(time.Until(start.Add(10*time.Minute + 6*time.Second)))
		synctest.Wait()
		steps := e.steps()
		require.Len(t, steps, 1, "the other incident's step went")
		require.NotEqual(t, slow.Root, steps[0].RootID)
		require.WithinRange(t, steps[0].Time, start.Add(10*time.Minute+5*time.Second), start.Add(10*time.Minute+6*time.Second))

		unlock()
		time.Sleep(time.Minute)
		synctest.Wait()
		require.Len(t, e.steps(), 2, "the slow one fires once its lock is free")
	})
}

// A receiver without escalation schedules nothing and keeps no escalation
// in its incidents' records: nothing of its behaviour changes.
func TestNoEscalationSchedulesNothing(t *testing.T) {
	fs := feishutest.New(t)
	synctest.Test(t, func(t *testing.T) {
		e := startTimers(t, fs, timerOptions{inMemory: true})
		e.notify(t, "firing-HighCPU-seq1-first-notification.json")
		due, err := e.store.Due(context.Background(), time.Now().Add(365*24*time.Hour), 100)
		require.NoError(t, err)
		require.Empty(t, due, "no due time")
		require.Equal(t, incident.Escalation{}, e.record(t).Escalation)
		time.Sleep(3 * time.Hour)
		synctest.Wait()
		require.Len(t, fs.Messages(), 1, "the notification alone")
	})
}
