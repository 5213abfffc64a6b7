package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/core"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/webhook"
)

// Placeholders for what only a real send knows.
const (
	firstMessageID = "<message_id of the first message>"
	attemptUUID    = "<uuid of the attempt>"
)

// renderEscalation prints the reply each step of rc's escalation would
// leave in the chain of p's group, as the render command prints a first
// message: the step's people as Reach names them now (offline: emails are
// not looked up). A group it does not apply to gets a line saying why, so
// that an operator asking sees the answer rather than silence.
func renderEscalation(w io.Writer, pl *core.Pipeline, rc *core.Receiver, p *webhook.Payload) error {
	e := rc.Config.Escalation
	switch {
	case e == nil:
		fmt.Fprintf(w, "\n# receiver %s: no escalation\n", rc.Name())
		return nil
	case p.Resolved():
		fmt.Fprintf(w, "\n# receiver %s: no escalation of a resolved group\n", rc.Name())
		return nil
	case !e.Applies(p.CommonLabelSet()):
		fmt.Fprintf(w, "\n# receiver %s: no escalation: the group does not match when %s\n", rc.Name(), strings.Join(e.When, ", "))
		return nil
	}
	for i, s := range e.Steps {
		step, after := i+1, time.Duration(s.After)
		msg, err := pl.Renderer.EscalationReply(rc.Config, step, after, pl.Mentions.Reach(context.Background(), s.Mention), s.UrgentKind())
		if err != nil {
			return fmt.Errorf("receiver %q: escalation step %d: %w", rc.Name(), step, err)
		}
		msg.Target, msg.RootID = rc.Target, firstMessageID
		path, body, err := replyPreview(pl.Config, rc.API, msg)
		if err != nil {
			return fmt.Errorf("receiver %q: escalation step %d: %w", rc.Name(), step, err)
		}
		pretty, err := readable(body)
		if err != nil {
			return fmt.Errorf("receiver %q: escalation step %d: %w", rc.Name(), step, err)
		}
		// A blank line before each request, as between receivers.
		fmt.Fprintf(w, "\n# receiver %s: escalation step %d after %s (urgent %s), a reply to the first message\nPOST %s\n%s\n",
			rc.Name(), step, s.After, s.UrgentKind(), path, strings.TrimSpace(pretty.String()))
	}
	return nil
}

// replyPreview is the request that sends reply m through api. v4 replies
// by the body's root_id. feishu.Preview shows new messages only, so an
// im/v1 reply is its create request at the reply's path, without the
// receive_id that a reply has not (the reply request of feishu/imv1.go);
// the values keep feishu's own encoding.
func replyPreview(cfg *config.Config, api string, m feishu.Message) (path string, body []byte, err error) {
	if api != config.APIIMv1 {
		path, body, err = feishu.Preview(api, m)
		return cfg.Feishu.BaseURL + path, body, err
	}
	m.UUID = attemptUUID
	_, create, err := feishu.Preview(api, m)
	if err != nil {
		return "", nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(create, &fields); err != nil {
		return "", nil, err
	}
	var b bytes.Buffer
	b.WriteString("{")
	for i, k := range []string{"msg_type", "content", "uuid"} {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%q:%s", k, fields[k])
	}
	b.WriteString("}")
	return cfg.Feishu.BaseURL + "/open-apis/im/v1/messages/" + firstMessageID + "/reply", b.Bytes(), nil
}
