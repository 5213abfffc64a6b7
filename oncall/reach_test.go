package oncall

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
)

// A step reaches the current member of its rotations, then its users, each
// once, emails looked up in the stand-in as For looks them up.
func TestReach(t *testing.T) {
	p, fs := newPolicy(t)
	jan1 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) // alice's shift
	p.now = func() time.Time { return jan1 }
	step := config.StepMention{OnCall: []string{"primary"},
		Users: []config.Person{{Email: "lead@example.com"}, {OpenID: "ou_alice"}, {UserID: "u_head"}, {Email: "nobody@example.com"}}}
	got := p.Reach(context.Background(), step)
	require.Equal(t, Mentions{IDs: []string{"ou_alice", "ou_lead", "u_head"},
		Unresolved: []Unresolved{{Email: "nobody@example.com", Reason: "not_found"}}}, got)

	p.now = func() time.Time { return jan1.Add(24 * time.Hour) } // bob's shift
	got = p.Reach(context.Background(), config.StepMention{OnCall: []string{"primary"}, Users: []config.Person{{Email: "lead@example.com"}}})
	require.Equal(t, Mentions{IDs: []string{"ou_bob", "ou_lead"}}, got)
	require.Equal(t, 1, fs.Lookups(), "the directory For uses remembers lead")

	// The same directory answers For: no lookup for alice.
	p.now = func() time.Time { return jan1 }
	require.Equal(t, []string{"ou_alice"}, p.For(context.Background(), receiverWith(t, &config.Mentions{OnCall: []string{"primary"}}), group("firing", template.KV{})).IDs)
	require.Equal(t, 1, fs.Lookups())

	p.now = func() time.Time { return jan1.Add(-48 * time.Hour) } // before the rotation's start
	got = p.Reach(context.Background(), config.StepMention{OnCall: []string{"primary"}})
	require.Empty(t, got.IDs, "nobody on call yet")
}

// A failed lookup reaches those already known and names the others, as
// For does.
func TestReachWhenTheLookupFails(t *testing.T) {
	p, fs := newPolicy(t)
	p.now = func() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) }
	fs.FailLookups(&feishutest.Fault{Status: http.StatusBadRequest, Code: 99991672, Msg: "Access denied."})
	got := p.Reach(context.Background(), config.StepMention{OnCall: []string{"primary"}, Users: []config.Person{{OpenID: "ou_x"}}})
	require.Equal(t, Mentions{IDs: []string{"ou_x"}, Unresolved: []Unresolved{{"alice@example.com", "lookup_failed"}}}, got)
}

// Without an app, emails are named with their reason.
func TestReachWithoutLookup(t *testing.T) {
	p, err := NewPolicy(nil, nil, promslog.NewNopLogger())
	require.NoError(t, err)
	got := p.Reach(context.Background(), config.StepMention{Users: []config.Person{{Email: "head@example.com"}, {UserID: "u_1"}}})
	require.Equal(t, Mentions{IDs: []string{"u_1"}, Unresolved: []Unresolved{{"head@example.com", "no_app"}}}, got)
}
