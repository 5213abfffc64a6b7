package oncall

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// newPolicy builds a policy whose emails are looked up in a Feishu
// stand-in that knows alice and lead.
func newPolicy(t *testing.T) (*Policy, *feishutest.Server) {
	t.Helper()
	fs := feishutest.New(t)
	fs.AddUser("alice@example.com", "ou_alice")
	fs.AddUser("lead@example.com", "ou_lead")
	m := feishu.NewMetrics(prometheus.NewRegistry())
	client, err := feishu.New(config.Feishu{API: config.APIIMv1, BaseURL: fs.URL, AppID: feishutest.AppID,
		HTTPConfig: commoncfg.DefaultHTTPClientConfig}, feishutest.AppSecret, m, feishu.NewPacer(config.RateLimit{}, m), promslog.NewNopLogger())
	require.NoError(t, err)
	p, err := NewPolicy([]*config.Rotation{{
		Name: "primary", Timezone: "UTC", Start: "2026-01-01T00:00:00", Shift: model.Duration(24 * time.Hour),
		Members: []config.Person{alice, bob},
	}}, client, promslog.NewNopLogger())
	require.NoError(t, err)
	return p, fs
}

func receiverWith(t *testing.T, m *config.Mentions) *config.Receiver {
	t.Helper()
	cfg, err := config.Parse([]byte(`
feishu: {app_id: cli_x, app_secret: s}
oncall:
  - {name: primary, timezone: UTC, start: "2026-01-01T00:00:00", shift: 24h, members: [{email: alice@example.com}, {open_id: ou_bob}]}
receivers:
  - name: r
    chat_id: oc_1
    mentions:
      all_when: ['severity="critical"']
route: {receiver: r}
`))
	require.NoError(t, err)
	rc := cfg.Receivers[0]
	m.AllWhenMatchers = rc.Mentions.AllWhenMatchers
	if len(m.AllWhen) == 0 {
		m.AllWhenMatchers = nil
	}
	rc.Mentions = m
	return rc
}

func group(status string, labels template.KV) *webhook.Payload {
	return &webhook.Payload{Data: template.Data{Status: status, CommonLabels: labels}, GroupKey: "{}:{}"}
}

func TestPolicy(t *testing.T) {
	p, fs := newPolicy(t)
	jan1 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) // alice's shift
	p.now = func() time.Time { return jan1 }
	critical := template.KV{"severity": "critical", "owner": "lead@example.com, ou_carl , all, <at user_id=\"all\">, nobody@example.com"}
	warning := template.KV{"severity": "warning"}
	for _, tc := range []struct {
		name     string
		mentions config.Mentions
		payload  *webhook.Payload
		want     Mentions
	}{
		{"no policy", config.Mentions{}, group("firing", critical), Mentions{}},
		{"on call now, critical", config.Mentions{OnCall: []string{"primary"}, AllWhen: []string{`severity="critical"`}},
			group("firing", critical), Mentions{IDs: []string{"ou_alice"}, All: true}},
		{"on call now, warning: no @all", config.Mentions{OnCall: []string{"primary"}, AllWhen: []string{`severity="critical"`}},
			group("firing", warning), Mentions{IDs: []string{"ou_alice"}}},
		{"resolved mentions no one", config.Mentions{OnCall: []string{"primary"}, AllWhen: []string{`severity="critical"`}},
			group("resolved", critical), Mentions{}},
		{"resolved, when asked", config.Mentions{OnCall: []string{"primary"}, OnResolved: true},
			group("resolved", warning), Mentions{IDs: []string{"ou_alice"}}},
		{"once each", config.Mentions{OnCall: []string{"primary"}, Users: []config.Person{{Email: "ALICE@example.com"}, {OpenID: "ou_alice"}, {UserID: "u_1"}}},
			group("firing", warning), Mentions{IDs: []string{"ou_alice", "u_1"}}},
		{"from a label: emails and open_ids only, never all", config.Mentions{FromLabel: "owner"},
			group("firing", critical), Mentions{IDs: []string{"ou_lead", "ou_carl"},
				Unresolved: []Unresolved{{Email: "nobody@example.com", Reason: "not_found"}}}},
		{"label absent", config.Mentions{FromLabel: "owner"}, group("firing", warning), Mentions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := p.For(context.Background(), receiverWith(t, &tc.mentions), tc.payload)
			require.Equal(t, tc.want, got)
		})
	}

	p.now = func() time.Time { return jan1.Add(24 * time.Hour) } // bob's shift
	got := p.For(context.Background(), receiverWith(t, &config.Mentions{OnCall: []string{"primary"}}), group("firing", warning))
	require.Equal(t, []string{"ou_bob"}, got.IDs)
	require.Equal(t, 2, fs.Lookups(), "alice and lead were looked up once, nobody once")
}

// A failed lookup never blocks: people already known are still mentioned,
// the others named.
func TestPolicyWhenTheLookupFails(t *testing.T) {
	p, fs := newPolicy(t)
	p.now = func() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) }
	rc := receiverWith(t, &config.Mentions{OnCall: []string{"primary"}, Users: []config.Person{{Email: "lead@example.com"}}})
	fs.FailLookups(&feishutest.Fault{Status: http.StatusBadRequest, Code: 99991672, Msg: "Access denied."})
	got := p.For(context.Background(), rc, group("firing", template.KV{}))
	require.Empty(t, got.IDs)
	require.Equal(t, []Unresolved{{"alice@example.com", "lookup_failed"}, {"lead@example.com", "lookup_failed"}}, got.Unresolved)

	fs.FailLookups(nil)
	got = p.For(context.Background(), rc, group("firing", template.KV{}))
	require.Equal(t, []string{"ou_alice", "ou_lead"}, got.IDs)

	// Known answers outlive a later failure.
	fs.FailLookups(&feishutest.Fault{Status: http.StatusInternalServerError})
	p.directory.now = func() time.Time { return time.Now().Add(2 * time.Hour) } // everything is due again
	got = p.For(context.Background(), rc, group("firing", template.KV{}))
	require.Equal(t, []string{"ou_alice", "ou_lead"}, got.IDs)
	require.Empty(t, got.Unresolved)
}

// A label names at most maxFromLabel people: alert content must not page a
// whole department.
func TestFromLabelIsCapped(t *testing.T) {
	p, _ := newPolicy(t)
	var ids []string
	for i := range 50 {
		ids = append(ids, fmt.Sprintf("ou_%02d", i))
	}
	got := p.For(context.Background(), receiverWith(t, &config.Mentions{FromLabel: "owner"}),
		group("firing", template.KV{"owner": strings.Join(ids, ",")}))
	require.Equal(t, ids[:maxFromLabel], got.IDs)
}

// Without an app there is nothing to look emails up with: they are named,
// with their reason, and open_ids are still mentioned.
func TestPolicyWithoutLookup(t *testing.T) {
	p, err := NewPolicy(nil, nil, promslog.NewNopLogger())
	require.NoError(t, err)
	rc := receiverWith(t, &config.Mentions{Users: []config.Person{{Email: "lead@example.com"}, {OpenID: "ou_x"}}})
	got := p.For(context.Background(), rc, group("firing", template.KV{}))
	require.Equal(t, []string{"ou_x"}, got.IDs)
	require.Equal(t, []Unresolved{{"lead@example.com", "no_app"}}, got.Unresolved)
}

// Allows admits the people allowed names, directly, by email (looked up
// in the stand-in), or as the current member of a rotation, and no one
// else.
func TestAllows(t *testing.T) {
	p, _ := newPolicy(t)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return start.Add(36 * time.Hour) } // the second shift: bob's
	allowed := config.Allowed{Users: []config.Person{{Email: "lead@example.com"}, {UserID: "u_boss"}}, OnCall: []string{"primary"}}
	for _, tc := range []struct {
		openID, userID string
		want           bool
	}{
		{"ou_lead", "", true},
		{"ou_other", "u_boss", true},
		{bob.OpenID, "", true},
		{"ou_alice", "", false}, // on call yesterday, not now
		{"ou_other", "u_other", false},
	} {
		ok, err := p.Allows(context.Background(), allowed, tc.openID, tc.userID)
		require.NoError(t, err)
		require.Equal(t, tc.want, ok, "%s %s", tc.openID, tc.userID)
	}
	ok, err := p.Allows(context.Background(), config.Allowed{}, "ou_anyone", "")
	require.NoError(t, err)
	require.True(t, ok, "no list allows anyone")
}
