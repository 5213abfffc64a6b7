package oncall

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A message Feishu refused for its mentions names everyone instead, after
// the people it could not mention already, and reaches no one with @all.
func TestUnmentioned(t *testing.T) {
	m := Mentions{IDs: []string{"ou_a", "u_b"}, All: true, Unresolved: []Unresolved{{Email: "gone@example.com", Reason: "not_found"}}}
	require.Equal(t, Mentions{Unresolved: []Unresolved{
		{Email: "gone@example.com", Reason: "not_found"},
		{Email: "ou_a", Reason: "refused"},
		{Email: "u_b", Reason: "refused"},
	}}, m.Unmentioned("refused"))
	require.Len(t, m.Unresolved, 1, "m is left as it was")
}
