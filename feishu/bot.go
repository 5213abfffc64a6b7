package feishu

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net/http"
	"strconv"
)

// EndpointBot is a group's custom bot webhook, in errors and metrics.
const EndpointBot = "bot/v2/hook"

// APIBot stands for a custom bot where an API is asked for: its requests
// have their own shape and size limit.
const APIBot = "custom_bot"

// Webhook is a custom bot's address and signing secret. Both are
// credentials: neither is ever logged or put in an error.
type Webhook struct {
	URL    string
	Secret string // "" when the bot does not check signatures
}

// String hides the credentials from fmt.
func (Webhook) String() string { return "<webhook>" }

// LogValue hides the credentials from slog.
func (w Webhook) LogValue() slog.Value { return slog.StringValue(w.String()) }

// bot sends to a group's custom bot: no tenant token, the bot's own rate
// limits, no reply and no message ID.
type bot struct {
	c *Client
	w Webhook
}

// Bot is the sender to the custom bot at w. The messages it sends must
// have a webhook Target (Target.IsBot), which keys the bot's own rate
// limits.
func (c *Client) Bot(w Webhook) Sender { return bot{c, w} }

// Send posts m to the bot, signed anew for every attempt so that each
// carries a fresh timestamp. A custom bot cannot reply: m.RootID and
// m.UUID are ignored.
func (s bot) Send(ctx context.Context, m Message) (string, error) {
	defer s.c.observeSend(s.c.now())
	if !m.Target.IsBot() {
		return "", badRequest(EndpointBot, "target %q is not a custom bot", m.Target.String())
	}
	req := newBotRequest(m)
	err := s.c.retry(ctx, EndpointBot, m.Target, func(string) error {
		if s.w.Secret != "" {
			req.sign(s.c.now().Unix(), s.w.Secret)
		}
		return s.c.call(ctx, EndpointBot, http.MethodPost, s.w.URL, "", req, nil)
	})
	return "", err
}

// String hides the webhook from fmt.
func (bot) String() string { return "custom bot <webhook>" }

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
	req.Content, req.Card = v4Body(m)
	return req
}

// sign sets the timestamp (Unix seconds) and the signature Feishu checks:
// Base64 of an HMAC-SHA256 whose key is "timestamp\nsecret" and whose data
// is empty.
func (r *botRequest) sign(timestamp int64, secret string) {
	h := hmac.New(sha256.New, []byte(strconv.FormatInt(timestamp, 10)+"\n"+secret))
	r.Timestamp, r.Sign = strconv.FormatInt(timestamp, 10), base64.StdEncoding.EncodeToString(h.Sum(nil))
}
