package amtest

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// A stamped body is a valid notification of its own group, with k alerts.
func TestStamperMakesDistinctValidGroups(t *testing.T) {
	s := NewStamper(5, map[string]string{"team": "infra"}, false)
	keys := map[string]bool{}
	for _, n := range []int{0, 7, 123456} {
		p, err := webhook.Decode(bytes.NewReader(s.Group(n)))
		require.NoError(t, err)
		require.Len(t, p.Alerts, 5)
		require.Equal(t, "infra", p.CommonLabels["team"])
		keys[webhook.NotificationKey("r", p)] = true
		require.Contains(t, p.GroupKey, `group="`+strconv.Itoa(n)+`"`)
	}
	require.Len(t, keys, 3)
}
