package feishu

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

// EndpointBot is a group's custom bot webhook, in errors and metrics.
const EndpointBot = "bot/v2/hook"

// APIBot stands for a custom bot where an API is asked for: its requests
// have their own shape and size limit.
const APIBot = "custom_bot"

// MaxBotBytes is the largest request body a custom bot accepts.
const MaxBotBytes = 20 * 1024

// Webhook is a custom bot's address and signing secret. Both are
// credentials: neither is ever logged or put in an error.
type Webhook struct {
	URL    string
	Secret string // "" when the bot does not check signatures
}

// botRequest is a custom bot's body: message/v4/send's shape without a
// recipient or root, plus the signature.
type botRequest struct {
	Timestamp string `json:"timestamp,omitempty"`
	Sign      string `json:"sign,omitempty"`
	MsgType   string `json:"msg_type"`
	Content   any    `json:"content,omitempty"`
	Card      any    `json:"card,omitempty"`
}

func newBotRequest(m Message) botRequest {
	req := botRequest{MsgType: m.Type}
	if m.Type == config.MsgInteractive {
		req.Card = m.Content
	} else {
		req.Content = v4Content(m.Content)
	}
	return req
}

// botSign is the signature Feishu checks: Base64 of an HMAC-SHA256 whose
// key is "timestamp\nsecret" and whose data is empty.
func botSign(timestamp int64, secret string) string {
	h := hmac.New(sha256.New, []byte(strconv.FormatInt(timestamp, 10)+"\n"+secret))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// sendBot posts m through its custom bot, signed with the clock read now,
// so that every retry carries a fresh timestamp. A custom bot answers no
// message ID, and has none of the app's tokens.
func (c *Client) sendBot(ctx context.Context, m Message) error {
	req := newBotRequest(m)
	if m.Webhook.Secret != "" {
		ts := c.now().Unix()
		req.Timestamp, req.Sign = strconv.FormatInt(ts, 10), botSign(ts, m.Webhook.Secret)
	}
	return c.call(ctx, EndpointBot, http.MethodPost, m.Webhook.URL, "", req, nil)
}
