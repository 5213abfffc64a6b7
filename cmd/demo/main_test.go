package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/internal/app"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/servicetest"
)

func demo(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	require.NoError(t, run(&b, "../..", func(cfg string) (*servicetest.Service, error) {
		return servicetest.RunInProcess(app.Options{ConfigFile: cfg})
	}))
	return b.String()
}

// inOrder fails unless each of wants occurs in s after the one before.
func inOrder(t *testing.T, s string, wants ...string) {
	t.Helper()
	rest := s
	for _, want := range wants {
		i := strings.Index(rest, want)
		require.GreaterOrEqual(t, i, 0, "%q not after the text before it in:\n%s", want, s)
		rest = rest[i+len(want):]
	}
}

// The demo prints one chat at a time, in its receivers' order, each chain
// as a reader sees it: the first message as it was first sent, its replies
// in order, then the first message as it reads after its update in place;
// and it prints the same on every run but for the ports.
func TestDemoPrintsEachChatInOrder(t *testing.T) {
	out := demo(t)
	inOrder(t, out,
		"POST /webhook  firing-HighCPU-seq1-first-notification.json", `{"receivers":{"infra":"sent","oncall":"sent"}}`,
		`{"receivers":{"infra":"deduped","oncall":"deduped"}}`,
		"What each chat shows",
		"══ chat oc_infra (receiver infra)",
		"── message 1 (im_v1, interactive), a new chain\n   [FIRING:2] HighCPU",
		"── message 2 (im_v1, interactive), a reply to message 1\n   [FIRING:3] HighCPU",
		"── message 3 (im_v1, interactive), a reply to message 1\n   [FIRING:2] HighCPU",
		"── message 4 (im_v1, interactive), a reply to message 1\n   [RESOLVED] HighCPU",
		"── message 1 as it reads now, updated in place 1 time(s)\n   [RESOLVED] HighCPU",
		"══ chat oc_oncall (receiver oncall)",
		"── message 1 (im_v1, interactive), a new chain\n   [告警:2] HighCPU",
		"── message 4 (im_v1, interactive), a reply to message 1\n   [已恢复] HighCPU",
		"── message 1 as it reads now, updated in place 1 time(s)\n   [已恢复] HighCPU",
		"══ chat oc_catchall (receiver catchall)",
		"── message 1 (im_v1, post), a new chain\n   [FIRING:2] DiskFull",
		"── message 2 (im_v1, post), a reply to message 1\n   [RESOLVED] DiskFull",
	)
	require.Equal(t, 3, strings.Count(out, "a new chain"), out)
	require.NotContains(t, out, "om_", "message IDs differ between runs: the demo numbers them")

	ports := regexp.MustCompile(`127\.0\.0\.1:\d+`)
	again := demo(t)
	require.Equal(t, ports.ReplaceAllString(out, "127.0.0.1:PORT"), ports.ReplaceAllString(again, "127.0.0.1:PORT"))
}
