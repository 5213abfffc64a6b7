package feishutest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/time/rate"
)

// VerificationToken is the stand-in app's Verification Token: the
// header.token of every callback it sends over the long connection, and
// over HTTP unless SetCallback names another.
const VerificationToken = "feishutest-verification-token"

// callbackTimeout is how long Feishu waits for a callback's answer.
const callbackTimeout = 3 * time.Second

var errClickTimeout = errors.New("feishutest: no answer within 3 s (Feishu shows 200341)")

// callbacks is the stand-in's state for card callbacks and card updates.
type callbacks struct {
	lc      longConns
	url     string // HTTP callback URL; "" delivers over the long connection
	token   string
	key     string
	fault   CallbackFault
	updates map[string]*rate.Limiter // per message, for the 5 QPS update limit
	// private are the cards answers showed one clicker only (without
	// update_multi), by message ID and open_id.
	private map[string]map[string]json.RawMessage
}

// routeCallbacks registers the long connection's endpoints.
func (s *Server) routeCallbacks(mux *http.ServeMux) {
	s.cb.lc.conns = map[int]*wsConn{}
	s.cb.lc.devices = map[string]string{}
	s.cb.lc.maxConns = maxConnsPerApp
	s.cb.lc.config = ClientConfig{ReconnectCount: -1, ReconnectInterval: 120, ReconnectNonce: 30, PingInterval: 120}
	s.cb.token = VerificationToken
	s.cb.updates = map[string]*rate.Limiter{}
	s.cb.private = map[string]map[string]json.RawMessage{}
	mux.HandleFunc("POST /callback/ws/endpoint", s.wsEndpoint)
	mux.HandleFunc("GET "+wsPath, s.wsUpgrade)
}

// CallbackFault spoils the HTTP callbacks Click and ChallengeCallback send,
// for tests of the service's refusals.
type CallbackFault struct {
	Unsigned     bool          // no X-Lark-* headers
	BadSignature bool          // a signature over something else
	Skew         time.Duration // the timestamp is this far from now
	WrongToken   bool          // header.token (or the challenge's token) is not the app's
	BadBase64    bool          // encrypt is not base64
	BadPadding   bool          // the PKCS#7 padding is inconsistent
	Body         []byte        // encrypted and sent instead of the callback body
}

// SetCallback makes Click deliver callbacks to url over HTTP, encrypted
// with encryptKey and signed, as Feishu does with a request URL configured;
// "" goes back to the long connection.
func (s *Server) SetCallback(url, verificationToken, encryptKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cb.url, s.cb.token, s.cb.key = url, verificationToken, encryptKey
}

// SetCallbackFault spoils the HTTP callbacks from now on; the zero value
// ends it.
func (s *Server) SetCallbackFault(f CallbackFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cb.fault = f
}

// ClickToast is the toast of a callback's answer.
type ClickToast struct {
	Type    string            `json:"type"`
	Content string            `json:"content"`
	I18n    map[string]string `json:"i18n"`
}

// ClickAnswer is what the service answered a click.
type ClickAnswer struct {
	EventID string
	// Status is the HTTP status of an HTTP callback, or the code of the
	// long connection's ack (200, or 500 when the client failed).
	Status int
	Conn   int             // the long connection that answered, numbered from 1; 0 over HTTP
	Raw    json.RawMessage // the answer body
	Toast  *ClickToast
	Card   json.RawMessage // the card's JSON when the answer replaced it
}

func (a *ClickAnswer) decode() error {
	var b struct {
		Toast *ClickToast `json:"toast"`
		Card  *struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		} `json:"card"`
	}
	if err := json.Unmarshal(a.Raw, &b); err != nil {
		// Feishu shows the clicker 200672.
		return fmt.Errorf("feishutest: callback answer is not JSON: %w", err)
	}
	a.Toast = b.Toast
	if b.Card != nil {
		if b.Card.Type != "raw" {
			return fmt.Errorf("feishutest: answer card type %q is not raw", b.Card.Type)
		}
		a.Card = b.Card.Data
	}
	return nil
}

// Click delivers a click of openID on a button carrying value in the card
// messageID, and returns the service's answer: over HTTP when SetCallback
// named a URL, else over the long connection to one client at random. An
// answer with a card replaces the message's card as Feishu does: for the
// whole chat when the old and the new card both set update_multi, else for
// the clicker only (CardFor).
func (s *Server) Click(ctx context.Context, messageID, openID string, value any) (ClickAnswer, error) {
	return s.ClickWithEventID(ctx, newID(""), messageID, openID, value)
}

// ClickWithEventID is Click with a chosen event_id: the same one twice is
// a duplicate delivery, which Feishu's network can produce.
func (s *Server) ClickWithEventID(ctx context.Context, eventID, messageID, openID string, value any) (ClickAnswer, error) {
	body, err := s.callbackBody(eventID, messageID, openID, value)
	if err != nil {
		return ClickAnswer{}, err
	}
	s.mu.Lock()
	url := s.cb.url
	s.mu.Unlock()
	var a ClickAnswer
	if url != "" {
		a, err = s.post(ctx, body)
	} else {
		a, err = s.push(ctx, body)
	}
	a.EventID = eventID
	if err == nil && a.Card != nil {
		s.replaceCard(messageID, openID, a.Card)
	}
	return a, err
}

// CardFor is the card openID sees in the message messageID: the one an
// answer to their click showed them alone, if any, else the message's.
func (s *Server) CardFor(messageID, openID string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.byID[messageID]
	if m == nil {
		return nil, false
	}
	if c, ok := s.cb.private[messageID][openID]; ok {
		return append(json.RawMessage{}, c...), true
	}
	return append(json.RawMessage{}, m.Content...), true
}

// callbackBody is a card.action.trigger body as Feishu sends it.
func (s *Server) callbackBody(eventID, messageID, openID string, value any) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.byID[messageID]
	if m == nil {
		return nil, fmt.Errorf("feishutest: click on unknown message %s", messageID)
	}
	if m.Type != "interactive" {
		return nil, fmt.Errorf("feishutest: click on message %s, which is not a card", messageID)
	}
	chat := m.TargetID
	if m.Target != "chat_id" {
		// A message to a person lives in the bot's p2p chat with them.
		h := sha256.Sum256([]byte(m.TargetID))
		chat = "oc_p2p" + hex.EncodeToString(h[:8])
	}
	token := s.cb.token
	if s.cb.url != "" && s.cb.fault.WrongToken {
		token = "not-" + token
	}
	union := sha256.Sum256([]byte(openID))
	return json.Marshal(map[string]any{
		"schema": "2.0",
		"header": map[string]any{
			"event_id": eventID, "token": token,
			"create_time": strconv.FormatInt(s.now().UnixMicro(), 10),
			"event_type":  "card.action.trigger", "tenant_key": "feishutest-tenant", "app_id": s.appID,
		},
		"event": map[string]any{
			"operator": map[string]any{"tenant_key": "feishutest-tenant", "open_id": openID, "union_id": "on_" + hex.EncodeToString(union[:16])},
			"token":    newID("c-"),
			"action":   map[string]any{"value": value, "tag": "button", "timezone": "Asia/Shanghai"},
			"host":     "im_message",
			"context":  map[string]any{"open_message_id": messageID, "open_chat_id": chat},
		},
	})
}

// replaceCard applies an answer's card to the message, as Feishu does at
// once: for everyone when the old and the new card set update_multi (as a
// PATCH needs), else for the clicker alone, the chat's card unchanged.
func (s *Server) replaceCard(messageID, openID string, card json.RawMessage) {
	text, err := readable("interactive", card)
	if err != nil {
		return // Feishu shows the clicker 200673 and keeps the card
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.byID[messageID]
	if m == nil {
		return
	}
	if !shared(m.Content) || !shared(card) {
		if s.cb.private[messageID] == nil {
			s.cb.private[messageID] = map[string]json.RawMessage{}
		}
		s.cb.private[messageID][openID] = append(json.RawMessage{}, card...)
		return
	}
	if m.Updates == 0 {
		m.FirstText = m.Text
	}
	m.Content, m.Text = append(json.RawMessage{}, card...), text
	m.Updates++
	// The shared card is what everyone sees now.
	delete(s.cb.private, messageID)
}

// shared reports whether a card's updates show to the whole chat: JSON 1.0
// with config.update_multi, or JSON 2.0, whose cards always are.
func shared(card json.RawMessage) bool {
	var c struct {
		Schema string `json:"schema"`
		Config struct {
			UpdateMulti bool `json:"update_multi"`
		} `json:"config"`
	}
	_ = json.Unmarshal(card, &c) // read when it was sent, or by readable
	return c.Schema == "2.0" || c.Config.UpdateMulti
}

// ChallengeCallback sends the URL verification Feishu sends when the
// request URL is saved, and checks the answer echoes the challenge.
func (s *Server) ChallengeCallback(ctx context.Context) error {
	s.mu.Lock()
	token := s.cb.token
	if s.cb.fault.WrongToken {
		token = "not-" + token
	}
	s.mu.Unlock()
	challenge := newID("")
	body, _ := json.Marshal(map[string]string{"challenge": challenge, "token": token, "type": "url_verification"})
	a, err := s.post(ctx, body)
	if err != nil {
		return err
	}
	if a.Status != http.StatusOK {
		return fmt.Errorf("feishutest: challenge answered http %d: %s", a.Status, a.Raw)
	}
	var got struct {
		Challenge string `json:"challenge"`
	}
	if json.Unmarshal(a.Raw, &got) != nil || got.Challenge != challenge {
		return fmt.Errorf("feishutest: challenge answered %s", a.Raw)
	}
	return nil
}

// CallbackRequest is the request Click would post for a click of openID
// on a button carrying value in the card messageID, encrypted and signed,
// without sending it: a benchmark serves it in memory.
func (s *Server) CallbackRequest(ctx context.Context, messageID, openID string, value any) (*http.Request, error) {
	body, err := s.callbackBody(newID(""), messageID, openID, value)
	if err != nil {
		return nil, err
	}
	return s.callbackRequest(ctx, body)
}

// callbackRequest is body posted to the callback URL, encrypted and signed.
func (s *Server) callbackRequest(ctx context.Context, body []byte) (*http.Request, error) {
	s.mu.Lock()
	url, key, f, now := s.cb.url, s.cb.key, s.cb.fault, s.now()
	s.mu.Unlock()
	if url == "" {
		return nil, errors.New("feishutest: no callback URL set")
	}
	if f.Body != nil {
		body = f.Body
	}
	blob := encrypt(body, key, f.BadPadding)
	if f.BadBase64 {
		blob = "!" + blob[1:]
	}
	raw, _ := json.Marshal(map[string]string{"encrypt": blob})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if !f.Unsigned {
		ts := strconv.FormatInt(now.Add(f.Skew).Unix(), 10)
		nonce := newID("")
		sig := sha256.Sum256([]byte(ts + nonce + key + string(raw)))
		if f.BadSignature {
			sig = sha256.Sum256([]byte(ts + nonce + "other" + string(raw)))
		}
		req.Header.Set("X-Lark-Request-Timestamp", ts)
		req.Header.Set("X-Lark-Request-Nonce", nonce)
		req.Header.Set("X-Lark-Signature", hex.EncodeToString(sig[:]))
	}
	return req, nil
}

// post sends body to the callback URL, encrypted and signed.
func (s *Server) post(ctx context.Context, body []byte) (ClickAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, callbackTimeout)
	defer cancel()
	req, err := s.callbackRequest(ctx, body)
	if err != nil {
		return ClickAnswer{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ClickAnswer{}, errClickTimeout
		}
		return ClickAnswer{}, fmt.Errorf("feishutest: post callback: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	a := ClickAnswer{Status: resp.StatusCode, Raw: b}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" && ct != "application/json; charset=utf-8" {
		return a, fmt.Errorf("feishutest: callback answered Content-Type %q", ct)
	}
	if resp.StatusCode == http.StatusOK {
		if err := a.decode(); err != nil {
			return a, err
		}
	}
	return a, nil
}

// encrypt seals body as Feishu does: AES-256-CBC under SHA-256(key), a
// random IV in front, PKCS#7 padding, base64.
func encrypt(body []byte, key string, badPadding bool) string {
	k := sha256.Sum256([]byte(key))
	block, _ := aes.NewCipher(k[:])
	n := aes.BlockSize - len(body)%aes.BlockSize
	plain := append(append([]byte{}, body...), bytes.Repeat([]byte{byte(n)}, n)...)
	if badPadding {
		plain[len(plain)-1] = 2
		plain[len(plain)-2] = 3
	}
	out := make([]byte, aes.BlockSize+len(plain))
	_, _ = rand.Read(out[:aes.BlockSize])
	cipher.NewCBCEncrypter(block, out[:aes.BlockSize]).CryptBlocks(out[aes.BlockSize:], plain)
	return base64.StdEncoding.EncodeToString(out)
}
