package render

import (
	"testing"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/stretchr/testify/require"
)

func FuzzEqualMatcher(f *testing.F) {
	for _, s := range []string{"", "alertname", "a b", `x"y`, "a\\b\nc", "{}!=~,'`", "é\u2028", "\xff"} {
		f.Add(s, s)
		f.Add("team", s)
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		want := (&labels.Matcher{Type: labels.MatchEqual, Name: name, Value: value}).String()
		require.Equal(t, want, equalMatcher(name, value))
	})
}
