package feishu

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Error is a failed call to the Feishu Open Platform: either no answer
// (Err set) or an answer that was not success. It never holds a token or
// secret.
type Error struct {
	Endpoint   string // e.g. "message/v4/send"
	HTTPStatus int    // 0 when there was no answer
	Code       int    // Feishu's code; 0 when the body had none
	Msg        string // Feishu's msg
	LogID      string // Feishu's log id, for its support
	Err        error  // transport error, if there was no answer
	// RetryAfter is how long the gateway asked to wait after a rate-limit
	// answer (x-ogw-ratelimit-reset); 0 when it did not say.
	RetryAfter time.Duration
	// AfterLostAnswer is set on the answer to an im/v1 send when an
	// earlier attempt of the same send, with the same uuid, got none:
	// Feishu may have made the message then, and answer its uuid now.
	AfterLostAnswer bool
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("feishu %s: %v", e.Endpoint, e.Err)
	}
	s := fmt.Sprintf("feishu %s: http %d", e.Endpoint, e.HTTPStatus)
	if e.Code != 0 {
		s += fmt.Sprintf(", code %d", e.Code)
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.LogID != "" {
		s += " (log_id " + e.LogID + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Class says what a failure means for the notification.
type Class int

const (
	// OK is no error.
	OK Class = iota
	// Transient failures may succeed if tried again: no answer, 5xx, rate
	// limits, Feishu's internal errors.
	Transient
	// TokenRejected means the tenant token was not accepted: fetch a new one
	// and try once more.
	TokenRejected
	// RootGone means the message a reply was aimed at was recalled or
	// deleted: the chain must start again.
	RootGone
	// Permanent failures will fail the same way until someone changes the
	// configuration or Feishu: bot not in the chat, no permission, invalid
	// target, bad request.
	Permanent
)

func (c Class) String() string {
	return [...]string{"ok", "transient", "token_rejected", "root_gone", "permanent"}[c]
}

// Feishu's codes that ask for a retry: rate limits (99991400, 230020,
// 11232, 11233), a request still being processed (230049, 18121), and
// internal errors.
var transientCodes = map[int]bool{
	99991400: true, 230020: true, 11232: true, 11233: true,
	230049: true, 18121: true,
	2200: true, 1500: true, 1663: true, 1668: true, 5000: true, 10101: true, 10500: true,
}

// Gateway codes for a tenant token that is missing, malformed, expired or
// otherwise not accepted.
var tokenCodes = map[int]bool{
	99991661: true, 99991663: true, 99991664: true, 99991665: true, 99991668: true, 99991671: true,
}

// Codes for a reply target that is gone: recalled (230011), deleted
// (230110), not found (231003), invisible to the bot (230050), in a topic
// that is gone (230019), or a self-destructing message (230111).
var rootGoneCodes = map[int]bool{
	230011: true, 230110: true, 231003: true,
	230050: true, 230019: true, 230111: true,
}

// Codes that name a cause in the configuration (the app, its bot, its
// scopes, the receiver's target) rather than in the message replied to:
// a new root would fail the same way.
var configurationCodes = map[int]bool{
	// The bot is not in the chat.
	230002: true, 10002: true, 10030: true,
	// The app lacks a scope, its IP allow-list refuses, or the month's
	// API quota is used up.
	99991672: true, 99991401: true, 99991403: true,
	// The app's bot is not enabled.
	230006: true, 11205: true, 11240: true,
	// The user is outside the availability scope, or has left.
	230013: true, 11225: true, 230029: true, 11236: true,
	// The target does not exist for this app, is across tenants, or
	// blocked the bot; the chat is dissolved.
	230034: true, 230038: true, 230053: true, 99992351: true, 99992360: true, 99992361: true, 10010: true, 232009: true,
	// The chat lets only admins post, or the app may not post there.
	230018: true, 230035: true, 230027: true,
}

// Classify sorts an error from this package into a Class.
func Classify(err error) Class {
	if err == nil {
		return OK
	}
	var te *TokenError
	if errors.As(err, &te) {
		// The token could not be had. A token endpoint that is down or
		// busy may come back; one that refuses the app's ID or secret
		// will refuse it until the operator fixes the configuration.
		if c := Classify(te.Err); c == Transient {
			return Transient
		}
		return Permanent
	}
	var re *RequestError
	if errors.As(err, &re) {
		return Permanent
	}
	var e *Error
	if !errors.As(err, &e) {
		// No answer from Feishu's side: a deadline, a pacer with no slot.
		return Transient
	}
	switch {
	case e.Err != nil:
		return Transient
	case tokenCodes[e.Code]:
		return TokenRejected
	case urgentEndpoint(e.Endpoint) && (rootGoneCodes[e.Code] || e.Code == 230001):
		// A buzz starts no chain again: its message gone is as final as
		// its other refusals.
		return Permanent
	case rootGoneCodes[e.Code], e.Code == 230001 && strings.Contains(e.Msg, "invalid message_id"):
		return RootGone
	case transientCodes[e.Code], e.HTTPStatus == http.StatusTooManyRequests, e.HTTPStatus >= 500:
		return Transient
	}
	return Permanent
}

// ConfigurationError says whether err is a refusal whose cause is the
// configuration: credentials, scopes, the bot's place in the chat, the
// target. Sending again, as a new root or otherwise, fails the same way
// until the operator fixes it. Rate limits and a rejected token count too:
// they concern the app, not the message, and pass by themselves. An unknown
// code does not count: when a reply is refused for a reason this service
// does not know, a new root is the safer bet to keep the chain alive.
func ConfigurationError(err error) bool {
	var te *TokenError
	if errors.As(err, &te) {
		return true
	}
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch {
	case configurationCodes[e.Code], tokenCodes[e.Code]:
		return true
	case e.Code == 230001 && strings.Contains(e.Msg, "receive_id"):
		return true
	}
	return rateLimited(err) != notLimited
}

// Which limit a rate-limit answer is about.
type limitScope int

const (
	notLimited    limitScope = iota
	appLimited               // the gateway's per-app limit, or the message system's overall one
	targetLimited            // the per-chat (or per-user) limit
)

// rateLimited says whether err is Feishu refusing a call for its rate, and
// which limit it hit. The gateway answers HTTP 429 (HTTP 400 on old APIs)
// with 99991400, or a bare 429; the message system answers with business
// codes.
func rateLimited(err error) limitScope {
	var e *Error
	if !errors.As(err, &e) {
		return notLimited
	}
	switch {
	case e.HTTPStatus == http.StatusTooManyRequests, e.Code == 99991400, e.Code == 11232:
		return appLimited
	case e.Code == 230020, e.Code == 11233:
		return targetLimited
	}
	return notLimited
}

// RequestError is a message that could not be made into a request: no
// retry will change that.
type RequestError struct {
	Endpoint string
	Msg      string
}

func (e *RequestError) Error() string { return "feishu " + e.Endpoint + ": " + e.Msg }

func badRequest(endpoint, format string, args ...any) error {
	return &RequestError{Endpoint: endpoint, Msg: fmt.Sprintf(format, args...)}
}

// TokenError is a failure to obtain a tenant access token.
type TokenError struct{ Err error }

func (e *TokenError) Error() string { return "get tenant_access_token: " + e.Err.Error() }
func (e *TokenError) Unwrap() error { return e.Err }

// Unanswered says whether err is a call Feishu may have received but
// whose answer never came: a timeout or a connection lost after the
// request went. A connection never made, an answer however unwelcome, or
// a failure to get a token (the call it was for never went) is not.
func Unanswered(err error) bool {
	var e *Error
	if tokenFailure(err) || !errors.As(err, &e) || e.Err == nil {
		return false
	}
	var op *net.OpError
	return !errors.As(e.Err, &op) || op.Op != "dial"
}

// tokenFailure says whether err is a failure to obtain a tenant token,
// whose *Error is the token call's, not the send's.
func tokenFailure(err error) bool {
	var te *TokenError
	return errors.As(err, &te)
}

// MayHaveSent says whether the send that failed with err may have made its
// message all the same: its last attempt, or an earlier one with the same
// uuid, got no answer.
func MayHaveSent(err error) bool {
	var e *Error
	return Unanswered(err) || errors.As(err, &e) && e.AfterLostAnswer
}
