// Package feishu is the service's client of the Feishu (Lark) Open
// Platform: the tenant access token, cached and refreshed; sending and
// replying through message/v4/send or im/v1, and updating cards in place;
// the message contents; Feishu's answers parsed and classified.
package feishu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/version"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

// Endpoint names, as used in errors and the requests metric.
const (
	EndpointToken  = "auth/v3/tenant_access_token/internal"
	EndpointV4     = "message/v4/send"
	EndpointCreate = "im/v1/messages"
	EndpointReply  = "im/v1/messages/reply"
	EndpointUpdate = "im/v1/messages/patch"
)

// MaxUUIDLen is the longest idempotency key im/v1 accepts.
const MaxUUIDLen = 50

// maxAnswerBytes bounds how much of an answer is read: Feishu's answers to
// the calls made here are a few hundred bytes.
const maxAnswerBytes = 1 << 20

// Target is where a message goes: an ID and its kind (chat_id, open_id,
// user_id or email).
type Target struct {
	Kind string
	ID   string
}

// String names the target in logs and errors; "" for none.
func (t Target) String() string {
	if t == (Target{}) {
		return ""
	}
	return t.Kind + " " + t.ID
}

// IsBot reports whether t is a group's custom bot: no tenant token, and
// rate limits of its own instead of the app's.
func (t Target) IsBot() bool { return t.Kind == config.TargetWebhook }

// Message is one message to send.
type Message struct {
	Target  Target
	RootID  string // the message this one replies to, if any
	Type    string // text, post or interactive
	Content any    // Text, Post or Card, as Type says
	// UUID makes an im/v1 send idempotent: Feishu accepts one send per UUID
	// within an hour. v4 has no such key and ignores it.
	UUID string
	// Webhook is where a message to a custom bot (Target.Kind webhook)
	// goes; it cannot reply, so RootID and UUID are ignored.
	Webhook Webhook
}

// Client talks to one Feishu app.
type Client struct {
	api     string
	baseURL string
	appID   string
	secret  string
	http    *http.Client
	metrics *Metrics
	pacer   *Pacer
	logger  *slog.Logger
	now     func() time.Time

	mu    sync.Mutex // serialises token fetches and guards the fields below
	token string
	fresh time.Time // until when the token is used without asking again
}

// New builds a client for the app in cfg, whose secret is already read. Its
// sends are paced by p, which the process's clients share.
func New(cfg config.Feishu, secret string, m *Metrics, p *Pacer, logger *slog.Logger) (*Client, error) {
	hc, err := commoncfg.NewClientFromConfig(cfg.HTTPConfig, "feishu",
		commoncfg.WithUserAgent(version.ComponentUserAgent("alertmanager-feishu")))
	if err != nil {
		return nil, fmt.Errorf("feishu http client: %w", err)
	}
	return &Client{
		api:     cfg.API,
		baseURL: cfg.BaseURL,
		appID:   cfg.AppID,
		secret:  secret,
		http:    hc,
		metrics: m,
		pacer:   p,
		logger:  logger,
		now:     time.Now,
	}, nil
}

// Send delivers m through the configured API and returns the new message's
// ID. A message with a RootID replies to that message. Send waits for the
// target's slot under the rate limits and retries what may pass, as long as
// ctx's deadline allows.
func (c *Client) Send(ctx context.Context, m Message) (string, error) {
	start := c.now()
	defer func() { c.metrics.SendDuration.Observe(time.Since(start).Seconds()) }()
	var id string
	err := c.retry(ctx, c.endpoint(m), m.Target, func(tok string) (err error) {
		switch {
		case m.Target.IsBot():
			return c.sendBot(ctx, m)
		case c.api == config.APIIMv1:
			id, err = c.sendIM(ctx, tok, m)
		default:
			id, err = c.sendV4(ctx, tok, m)
		}
		return err
	})
	return id, err
}

// endpoint is the API endpoint that sends m.
func (c *Client) endpoint(m Message) string {
	switch {
	case m.Target.IsBot():
		return EndpointBot
	case c.api != config.APIIMv1:
		return EndpointV4
	case m.RootID != "":
		return EndpointReply
	}
	return EndpointCreate
}

type v4Request struct {
	ChatID  string `json:"chat_id,omitempty"`
	OpenID  string `json:"open_id,omitempty"`
	UserID  string `json:"user_id,omitempty"`
	Email   string `json:"email,omitempty"`
	RootID  string `json:"root_id,omitempty"`
	MsgType string `json:"msg_type"`
	Content any    `json:"content,omitempty"`
	Card    any    `json:"card,omitempty"`
}

func newV4Request(m Message) (v4Request, error) {
	req := v4Request{RootID: m.RootID, MsgType: m.Type}
	switch m.Target.Kind {
	case config.TargetChatID:
		req.ChatID = m.Target.ID
	case config.TargetOpenID:
		req.OpenID = m.Target.ID
	case config.TargetUserID:
		req.UserID = m.Target.ID
	case config.TargetEmail:
		req.Email = m.Target.ID
	default:
		return req, badRequest(EndpointV4, "unknown target kind %q", m.Target.Kind)
	}
	// v4 carries a card in its own field; every other content in content.
	if m.Type == config.MsgInteractive {
		req.Card = m.Content
	} else {
		req.Content = v4Content(m.Content)
	}
	return req, nil
}

func (c *Client) sendV4(ctx context.Context, tok string, m Message) (string, error) {
	req, err := newV4Request(m)
	if err != nil {
		return "", err
	}
	return c.messageID(ctx, EndpointV4, http.MethodPost, "/open-apis/message/v4/send/", tok, req)
}

// messageID makes a call whose answer is a message and returns its ID.
func (c *Client) messageID(ctx context.Context, endpoint, method, path, tok string, body any) (string, error) {
	var data struct {
		MessageID string `json:"message_id"`
	}
	if err := c.call(ctx, endpoint, method, path, tok, body, &data); err != nil {
		return "", err
	}
	if data.MessageID == "" {
		return "", &Error{Endpoint: endpoint, HTTPStatus: http.StatusOK, Msg: "answer has no message_id"}
	}
	return data.MessageID, nil
}

// envelope is the shape of every Feishu answer.
type envelope struct {
	Code  *int            `json:"code"`
	Msg   string          `json:"msg"`
	Data  json.RawMessage `json:"data"`
	Error struct {
		LogID string `json:"log_id"`
	} `json:"error"`
}

// call sends body as JSON to path with method and decodes the answer's
// data into out.
// Anything but HTTP 200 with code 0 is an *Error.
func (c *Client) call(ctx context.Context, endpoint, method, path, tok string, body, out any) error {
	raw, err := c.do(ctx, endpoint, method, path, tok, body)
	if err != nil {
		return err
	}
	if len(raw.env.Data) > 0 && out != nil {
		if err := json.Unmarshal(raw.env.Data, out); err != nil {
			return &Error{Endpoint: endpoint, HTTPStatus: raw.status, Msg: "undecodable data: " + err.Error()}
		}
	}
	return nil
}

type answer struct {
	status int
	env    envelope
	body   []byte
}

func (c *Client) do(ctx context.Context, endpoint, method, path, tok string, body any) (*answer, error) {
	b, err := marshal(body)
	if err != nil {
		return nil, badRequest(endpoint, "encode request: %v", err)
	}
	// A custom bot's webhook is a whole URL; the app's calls are paths.
	target := path
	if !strings.HasPrefix(path, "http://") && !strings.HasPrefix(path, "https://") {
		target = c.baseURL + path
	}
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(b))
	if err != nil {
		return nil, badRequest(endpoint, "%v", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.metrics.Requests.WithLabelValues(endpoint, "error").Inc()
		return nil, &Error{Endpoint: endpoint, Err: stripURL(err)}
	}
	defer resp.Body.Close()
	b, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		c.metrics.Requests.WithLabelValues(endpoint, "error").Inc()
		return nil, &Error{Endpoint: endpoint, HTTPStatus: resp.StatusCode, Err: err}
	}
	a := &answer{status: resp.StatusCode, body: b}
	e := &Error{
		Endpoint: endpoint, HTTPStatus: resp.StatusCode, LogID: resp.Header.Get("X-Tt-Logid"),
		RetryAfter: resetAfter(resp.Header),
	}
	if err := json.Unmarshal(b, &a.env); err != nil || a.env.Code == nil {
		c.metrics.Requests.WithLabelValues(endpoint, "http_"+strconv.Itoa(resp.StatusCode)).Inc()
		e.Msg = "answer is not a Feishu JSON envelope"
		return nil, e
	}
	c.metrics.Requests.WithLabelValues(endpoint, strconv.Itoa(*a.env.Code)).Inc()
	if resp.StatusCode == http.StatusOK && *a.env.Code == 0 {
		return a, nil
	}
	e.Code, e.Msg = *a.env.Code, a.env.Msg
	if a.env.Error.LogID != "" {
		e.LogID = a.env.Error.LogID
	}
	return nil, e
}

// resetAfter reads the gateway's x-ogw-ratelimit-reset header: the seconds
// until the app's quota recovers.
func resetAfter(h http.Header) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h.Get("X-Ogw-Ratelimit-Reset")))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// stripURL drops the request URL from a transport error: the path is
// already named by the endpoint, and a URL must never carry a secret into a
// log.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}
