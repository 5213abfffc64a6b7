package actions

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// MaxCallbackBytes bounds a callback body: Feishu's are a few kilobytes.
const MaxCallbackBytes = 1 << 20

// MaxSkew is how far a callback's timestamp may be from now, either way.
const MaxSkew = 5 * time.Minute

// Headers of Feishu's signed callbacks.
const (
	HeaderTimestamp = "X-Lark-Request-Timestamp"
	HeaderNonce     = "X-Lark-Request-Nonce"
	HeaderSignature = "X-Lark-Signature"
)

// HTTPCallback serves POST /feishu/callback: it answers the URL
// verification and hands authentic card.action.trigger callbacks to its
// Handler. Unlike Feishu's SDK it requires the Encrypt Key (so every
// callback is signed), checks the Verification Token of every callback and
// refuses stale timestamps.
type HTTPCallback struct {
	token   string
	key     string
	aesKey  [32]byte
	handler Handler
	logger  *slog.Logger
	refused Refusal
	now     func() time.Time
}

// NewHTTPCallback builds the endpoint from the app's Verification Token and
// Encrypt Key (both required by the configuration). refused may be nil.
func NewHTTPCallback(verificationToken, encryptKey string, h Handler, logger *slog.Logger, refused Refusal) *HTTPCallback {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &HTTPCallback{
		token: verificationToken, key: encryptKey, aesKey: sha256Key(encryptKey),
		handler: h, logger: logger, refused: refused, now: time.Now,
	}
}

// refusal is a request answered without reaching the handler.
type refusal struct {
	status int
	reason string
}

func (r *refusal) Error() string { return r.reason }

func unauthorized(reason string) error { return &refusal{http.StatusUnauthorized, reason} }
func malformed(reason string) error    { return &refusal{http.StatusBadRequest, reason} }

func (c *HTTPCallback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxCallbackBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			c.refuse(w, r, &refusal{http.StatusRequestEntityTooLarge, "callback body over 1 MiB"})
			return
		}
		c.refuse(w, r, malformed("read callback body: "+err.Error()))
		return
	}
	out, err := c.serve(r.Context(), r.Header, body, arrived)
	if err != nil {
		c.refuse(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// serve checks, decodes and answers one callback body.
func (c *HTTPCallback) serve(ctx context.Context, h http.Header, body []byte, arrived time.Time) ([]byte, error) {
	ts, nonce, sig := h.Get(HeaderTimestamp), h.Get(HeaderNonce), h.Get(HeaderSignature)
	signed := ts != "" || nonce != "" || sig != ""
	if signed {
		// The signature covers the raw body and is checked before a byte of
		// it is parsed.
		if !equal(sig, signature(ts, nonce, c.key, body)) {
			return nil, unauthorized("signature does not match")
		}
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return nil, unauthorized("timestamp is not a number")
		}
		if d := c.now().Sub(time.Unix(sec, 0)); d > MaxSkew || d < -MaxSkew {
			return nil, unauthorized("timestamp is more than 5 minutes from now")
		}
	}
	var outer struct {
		Encrypt *string `json:"encrypt"`
	}
	if err := json.Unmarshal(body, &outer); err != nil {
		return nil, malformed("callback body is not JSON")
	}
	if outer.Encrypt == nil {
		// With an Encrypt Key set Feishu always encrypts.
		return nil, malformed("callback body is not encrypted")
	}
	plain, err := decrypt(*outer.Encrypt, c.aesKey)
	if err != nil {
		return nil, malformed(err.Error())
	}
	var probe struct {
		Type      string `json:"type"`
		Token     string `json:"token"`
		Challenge string `json:"challenge"`
	}
	if err := json.Unmarshal(plain, &probe); err != nil {
		return nil, malformed("decrypted callback is not JSON")
	}
	if probe.Type == "url_verification" {
		// Feishu's contract: answered with or without a signature, as long
		// as the token is ours. It changes nothing, so an unsigned one
		// gives an attacker nothing but the challenge they sent.
		if !equal(probe.Token, c.token) {
			return nil, unauthorized("verification token does not match")
		}
		return json.Marshal(map[string]string{"challenge": probe.Challenge})
	}
	if !signed {
		return nil, unauthorized("callback is not signed")
	}
	cb, token, err := decodeCallback(plain)
	if err != nil {
		if !equal(token, c.token) {
			return nil, unauthorized("verification token does not match")
		}
		// An authentic body that is not a card.action.trigger (another
		// event pointed at this URL, or a new schema) is a bug of
		// configuration, not a click: 400 shows in Feishu's delivery log
		// as the failure it is, where a 200 with a toast would hide it;
		// the clicker sees Feishu's error either way.
		return nil, malformed(err.Error())
	}
	if !equal(token, c.token) {
		return nil, unauthorized("verification token does not match")
	}
	hctx, cancel := context.WithDeadline(ctx, arrived.Add(handlerBudget))
	defer cancel()
	a, err := call(hctx, c.handler, cb)
	if err != nil {
		c.logger.Error("card callback handler failed", "event_id", cb.EventID, "err", err)
		return nil, &refusal{http.StatusInternalServerError, "handler failed"}
	}
	out, err := encodeAnswer(a)
	if err != nil {
		c.logger.Error("card callback answer", "event_id", cb.EventID, "err", err)
		return nil, &refusal{http.StatusInternalServerError, "handler failed"}
	}
	return out, nil
}

func (c *HTTPCallback) refuse(w http.ResponseWriter, r *http.Request, err error) {
	var ref *refusal
	if !errors.As(err, &ref) {
		ref = &refusal{http.StatusInternalServerError, err.Error()}
	}
	if ref.status != http.StatusInternalServerError {
		c.logger.Warn("card callback refused", "remote", r.RemoteAddr, "status", ref.status, "reason", ref.reason)
		c.refused.tell(ref.reason)
	}
	writeJSON(w, ref.status, map[string]string{"error": ref.reason})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
