package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
)

// Each message is printed once as it arrives, a reply naming its root, and
// a card again each time it is updated in place.
func TestPrinter(t *testing.T) {
	p := printer{updates: map[string]int{}, number: map[string]int{}}
	var b strings.Builder
	root := feishutest.Message{ID: "om_1", API: "im_v1", Type: "interactive", Target: "chat_id", TargetID: "oc_x", Text: "[FIRING:1] A\nline"}
	p.print(&b, []feishutest.Message{root})
	require.Equal(t, "\n── message 1 (im_v1, interactive) to chat_id oc_x, om_1\n   [FIRING:1] A\n   line\n", b.String())

	b.Reset()
	reply := feishutest.Message{ID: "om_2", API: "im_v1", Type: "interactive", Target: "chat_id", TargetID: "oc_x", RootID: "om_1", Text: "[RESOLVED] A"}
	p.print(&b, []feishutest.Message{root, reply})
	require.Equal(t, "\n── message 2 (im_v1, interactive) to chat_id oc_x, a reply to message 1, om_2\n   [RESOLVED] A\n", b.String())

	b.Reset()
	root.Updates, root.Text = 1, "[RESOLVED] A"
	p.print(&b, []feishutest.Message{root, reply})
	p.print(&b, []feishutest.Message{root, reply})
	require.Equal(t, "\n── message 1 updated in place, now:\n   [RESOLVED] A\n", b.String(), "once")

	// A card sent and updated between two looks is shown as sent, then
	// updated, after the message that came between.
	p = printer{updates: map[string]int{}, number: map[string]int{}}
	b.Reset()
	root.FirstText = "[FIRING:1] A"
	p.print(&b, []feishutest.Message{root, reply})
	require.Equal(t, "\n── message 1 (im_v1, interactive) to chat_id oc_x, om_1\n   [FIRING:1] A\n"+
		"\n── message 2 (im_v1, interactive) to chat_id oc_x, a reply to message 1, om_2\n   [RESOLVED] A\n"+
		"\n── message 1 updated in place, now:\n   [RESOLVED] A\n", b.String())
}
