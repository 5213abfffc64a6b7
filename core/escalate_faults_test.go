package core_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/state"
)

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
