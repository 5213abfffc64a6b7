package render

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
	"github.com/alertmanager-feishu/alertmanager-feishu/oncall"
)

// escalationSteps are the replies of the golden files, named
// escalation-step<N>.<lang>.txt: a step buzzing in Feishu, one by phone
// with someone who could not be mentioned, and one whose rotation had
// nobody on call.
var escalationSteps = []struct {
	step     int
	after    time.Duration
	mentions oncall.Mentions
	urgent   string
}{
	{1, 10 * time.Minute, oncall.Mentions{IDs: []string{"ou_alice", "ou_lead"}}, config.UrgentApp},
	{2, 90 * time.Minute, oncall.Mentions{IDs: []string{"ou_head", "u_boss"},
		Unresolved: []oncall.Unresolved{{Email: "cto@example.com", Reason: "not_found"}}}, config.UrgentPhone},
	{3, 4 * time.Hour, oncall.Mentions{}, ""},
}

// The reply of each step, in both languages, the same through both APIs.
func TestGoldenEscalationReplies(t *testing.T) {
	for _, s := range escalationSteps {
		for _, lang := range []string{"en", "zh"} {
			name := fmt.Sprintf("escalation-step%d.%s.txt", s.step, lang)
			t.Run(name, func(t *testing.T) {
				rc := &config.Receiver{Name: "infra", Language: lang, MsgType: config.MsgInteractive}
				var got []string
				for _, api := range []string{config.APIIMv1, config.APIv4} {
					m, err := newRendererFor(t, api).EscalationReply(rc, s.step, s.after, s.mentions, s.urgent)
					require.NoError(t, err)
					got = append(got, text(t, m))
				}
				require.Equal(t, got[0], got[1], "text mentions on both APIs")
				requireGolden(t, name, got[0])
			})
		}
	}
}

func TestEscalationReply(t *testing.T) {
	r := newRendererFor(t, config.APIIMv1)
	rc := &config.Receiver{Name: "infra", Language: "en"}
	reply := func(mentions oncall.Mentions, urgent string) string {
		m, err := r.EscalationReply(rc, 1, 30*time.Minute, mentions, urgent)
		require.NoError(t, err)
		return text(t, m)
	}
	lead := oncall.Mentions{IDs: []string{"ou_lead"}}
	require.Equal(t, `⏫ Escalated to step 1: nobody acknowledged this for 30m. <at user_id="ou_lead"></at>`, reply(lead, config.UrgentNone))
	require.Equal(t, reply(lead, config.UrgentNone), reply(lead, ""), "absent is none")
	require.Equal(t, `⏫ Escalated to step 1: nobody acknowledged this for 30m. <at user_id="ou_lead"></at> (buzzed by SMS)`, reply(lead, config.UrgentSMS))

	// Nobody was buzzed when nobody could be mentioned; an email from the
	// configuration cannot become markup.
	require.Equal(t, `⏫ Escalated to step 1: nobody acknowledged this for 30m. (could not mention: ＜at user_id="all"＞@example.com)`,
		reply(oncall.Mentions{Unresolved: []oncall.Unresolved{{Email: `<at user_id="all">@example.com`, Reason: "no_app"}}}, config.UrgentPhone))

	_, err := r.EscalationReply(rc, 0, time.Minute, lead, "")
	require.EqualError(t, err, "render: escalation step 0: steps count from 1")
	_, err = r.EscalationReply(rc, 1, time.Minute, lead, "pager")
	require.EqualError(t, err, `render: unknown urgent kind "pager"`)
}

// The root card names the people a step reached by open_id or user_id,
// as mentions; user_id all is not a person.
func TestEscalatedCardMentionsUserIDs(t *testing.T) {
	r := newRendererFor(t, config.APIIMv1)
	p := load(t, "firing-HighCPU-seq1-first-notification.json")
	rc := &config.Receiver{Name: "infra", Language: "zh", MsgType: config.MsgInteractive}
	st := CardState{Escalation: incident.Escalation{Step: 2}, EscalatedTo: []string{"ou_lead", "u_boss", "ALL", "u>x"}}
	m, err := r.RenderWith(p, rc, oncall.Mentions{}, Options{Card: withButtons(st)})
	require.NoError(t, err)
	require.Equal(t, "⏫ **已升级**至第 2 级：<at id=ou_lead></at> <at id=u_boss></at> ALL u&#62;x", card(t, m).Elements[1].Text.Content)
}

func ExampleRenderer_EscalationReply() {
	r, _ := New(nil, config.APIIMv1, nil)
	m, _ := r.EscalationReply(&config.Receiver{Language: "en"}, 2, 30*time.Minute,
		oncall.Mentions{IDs: []string{"ou_head"}}, config.UrgentPhone)
	fmt.Println(m.Content.(feishu.Text).Text)
	// Output: ⏫ Escalated to step 2: nobody acknowledged this for 30m. <at user_id="ou_head"></at> (buzzed by phone)
}
