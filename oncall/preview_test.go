package oncall

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

func TestPreviewOfTheExampleConfiguration(t *testing.T) {
	cfg, err := config.Load("../routing.yaml")
	require.NoError(t, err)
	var b strings.Builder
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	require.NoError(t, err)
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 1, 5, 9, 0, 0, 0, shanghai), "rotation infra-primary: nobody (before its start)\n" +
			"receiver infra mentions: lead@example.com; @all when severity=\"critical\"; and whoever the label owner names\n"},
		{time.Date(2026, 1, 6, 9, 0, 0, 0, shanghai), "rotation infra-primary: alice@example.com\n" +
			"receiver infra mentions: alice@example.com, lead@example.com; @all when severity=\"critical\"; and whoever the label owner names\n"},
		{time.Date(2026, 2, 10, 12, 0, 0, 0, shanghai), "rotation infra-primary: carol@example.com\n"},
	} {
		b.Reset()
		require.NoError(t, Preview(&b, cfg, tc.at))
		require.Contains(t, b.String(), tc.want)
	}
}
