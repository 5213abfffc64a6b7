package feishutest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"
)

// A group's custom bot, as Feishu documents and clients have observed it:
// POST /open-apis/bot/v2/hook/<token> with the v4 body shape (content an
// object, a card in "card"), an optional signature, at most 20 KB, 5 sends
// a second and 100 a minute per bot, and every answer HTTP 200 with the
// verdict in "code". A success carries no message ID.

// BotMaxBytes is the largest body a custom bot accepts under the default
// SizeRule.
const BotMaxBytes = botKB * 1024

// Custom bot answer codes.
const (
	BotBadRequest   = 9499  // malformed body, or over BotMaxBytes
	BotSignMismatch = 19021 // signature wrong, or timestamp over an hour off
	BotTokenInvalid = 19001 // no such webhook
	BotRateLimited  = 11232
)

type bot struct {
	secret         string
	second, minute *counter // nil: no limit (ratelimit.go)
}

// AddBot makes a custom bot with webhook token, signing with secret when
// it is not empty, limited as Feishu limits custom bots.
func (s *Server) AddBot(token, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bots[token] = &bot{
		secret: secret,
		second: s.newCounter(s.botPerSecond, time.Second),
		minute: s.newCounter(s.botPerMinute, time.Minute),
	}
}

// SetBotRateLimit changes every custom bot's limits; 0 per second lifts
// them.
func (s *Server) SetBotRateLimit(perSecond, perMinute int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if perSecond <= 0 {
		perMinute = 0
	}
	s.botPerSecond, s.botPerMinute = perSecond, perMinute
	for _, b := range s.bots {
		b.second = s.newCounter(perSecond, time.Second)
		b.minute = s.newCounter(perMinute, time.Minute)
	}
}

// BotURL is the webhook URL of the bot with token.
func (s *Server) BotURL(token string) string { return s.URL + "/open-apis/bot/v2/hook/" + token }

// BotSign is the signature of a custom bot request made at timestamp (Unix
// seconds) with secret: Base64 of an HMAC-SHA256 whose key is
// "timestamp\nsecret" and whose data is empty.
func BotSign(timestamp int64, secret string) string {
	h := hmac.New(sha256.New, []byte(strconv.FormatInt(timestamp, 10)+"\n"+secret))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

type botRequest struct {
	Timestamp string          `json:"timestamp"`
	Sign      string          `json:"sign"`
	MsgType   string          `json:"msg_type"`
	Content   json.RawMessage `json:"content"`
	Card      json.RawMessage `json:"card"`
}

func botFail(w http.ResponseWriter, code int, msg string) { fail(w, http.StatusOK, code, msg) }

func (s *Server) sendBot(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.sends++
	s.mu.Unlock()
	s.wait(r)
	body, err := io.ReadAll(io.LimitReader(r.Body, maxIMBodyRead))
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.injected(w) {
		return
	}
	b, ok := s.bots[r.PathValue("token")]
	if !ok {
		botFail(w, BotTokenInvalid, "param invalid: incoming webhook access token invalid")
		return
	}
	var req botRequest
	if err := json.Unmarshal(body, &req); err != nil {
		botFail(w, BotBadRequest, "Bad Request: fail to parse content")
		return
	}
	if b.secret != "" && !s.signed(req, b.secret) {
		s.refusedSign++
		botFail(w, BotSignMismatch, "sign match fail or timestamp is not within one hour from current time")
		return
	}
	m := &Message{API: "bot", Target: "webhook", TargetID: r.PathValue("token"), Type: req.MsgType}
	if code, _ := checkV4Content(m, v4Request{MsgType: req.MsgType, Content: req.Content, Card: req.Card}); code != 0 {
		botFail(w, BotBadRequest, "Bad Request: fail to parse content")
		return
	}
	// A body refused for its size or shape never counts against the
	// rate limits.
	if s.tooLarge(w, m, len(body)) {
		return
	}
	if ok, _ := allowAll(s.now(), b.second, b.minute); !ok {
		s.refusedChat++
		botFail(w, BotRateLimited, "frequency limited psm[lark.oapi.app_platform_runtime]appID[1500]")
		return
	}
	m.ID, m.Time = newID("om_"), s.now()
	s.messages = append(s.messages, m)
	s.byID[m.ID] = m
	writeJSON(w, http.StatusOK, map[string]any{
		"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": map[string]any{}, "msg": "success",
	})
}

// signed checks a request's signature against secret, and that its
// timestamp is within an hour of the stand-in's clock.
func (s *Server) signed(req botRequest, secret string) bool {
	ts, err := strconv.ParseInt(req.Timestamp, 10, 64)
	if err != nil {
		return false
	}
	if d := s.now().Sub(time.Unix(ts, 0)); d > time.Hour || d < -time.Hour {
		return false
	}
	return hmac.Equal([]byte(req.Sign), []byte(BotSign(ts, secret)))
}

// RefusedSignatures counts the custom bot sends refused for their
// signature.
func (s *Server) RefusedSignatures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusedSign
}
