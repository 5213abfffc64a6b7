// Package feishu is the service's client of the Feishu (Lark) Open
// Platform: one sender per API (im/v1, message/v4/send, a group's custom
// bot), over a shared transport that caches and refreshes the tenant
// access token, paces sends, retries what may pass and classifies
// Feishu's answers; and the message contents.
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
// user_id, email, or webhook for a custom bot).
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
	// Target is the recipient; for a custom bot, whose URL its sender
	// holds, it only keys the bot's rate limits.
	Target  Target
	RootID  string // the message this one replies to, if any
	Type    string // text, post or interactive
	Content any    // Text, Post or Card, as Type says
	// UUID makes an im/v1 send idempotent: Feishu accepts one send per UUID
	// within an hour. v4 and custom bots have no such key and ignore it.
	UUID string
}

// Sender sends messages through one of Feishu's APIs.
type Sender interface {
	// Send delivers m, as a reply to m.RootID when that is set, and returns
	// the new message's ID; "" from a custom bot, which answers none.
	Send(ctx context.Context, m Message) (string, error)
}

// CardUpdater replaces a card the app sent, in place (im/v1 only).
type CardUpdater interface {
	UpdateCard(ctx context.Context, messageID string, card Card) error
}

// Client is the transport the senders of one Feishu app share: its HTTP
// client, its tenant token, the process's pacer and the metrics. Its
// senders wait for their slot under the rate limits and retry what may
// pass, as long as the context's deadline allows.
type Client struct {
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

// New builds the transport of the app in cfg, whose secret is already read.
// Its sends are paced by p, which the process's clients share. Which API a
// message takes is the caller's choice of sender: IMv1, V4 or Bot.
func New(cfg config.Feishu, secret string, m *Metrics, p *Pacer, logger *slog.Logger, opts ...Option) (*Client, error) {
	hc, err := commoncfg.NewClientFromConfig(cfg.HTTPConfig, "feishu",
		commoncfg.WithUserAgent(version.ComponentUserAgent("alertmanager-feishu")))
	if err != nil {
		return nil, fmt.Errorf("feishu http client: %w", err)
	}
	c := &Client{
		baseURL: cfg.BaseURL,
		appID:   cfg.AppID,
		secret:  secret,
		http:    hc,
		metrics: m,
		pacer:   p,
		logger:  logger,
		now:     time.Now,
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// observeSend records the duration of a send begun at start: token, waits
// for a slot and retries included.
func (c *Client) observeSend(start time.Time) {
	c.metrics.SendDuration.Observe(time.Since(start).Seconds())
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

// do makes one HTTP call and counts it in the requests metric. path is
// under the base URL, or a whole URL (a custom bot's webhook).
func (c *Client) do(ctx context.Context, endpoint, method, path, tok string, body any) (*answer, error) {
	var b []byte
	if body != nil { // a GET has none
		var err error
		if b, err = marshal(body); err != nil {
			return nil, badRequest(endpoint, "encode request: %v", err)
		}
	}
	target := path
	if !strings.HasPrefix(path, "http://") && !strings.HasPrefix(path, "https://") {
		target = c.baseURL + path
	}
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(b))
	if err != nil {
		return nil, badRequest(endpoint, "%v", stripURL(err))
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
	b, err = readAnswer(resp)
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

// readAnswer reads at most maxAnswerBytes of resp's body, into a buffer of
// its length when the answer says it.
func readAnswer(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n > 0 && n <= maxAnswerBytes {
		b := make([]byte, n)
		_, err := io.ReadFull(resp.Body, b)
		return b, err
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
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
