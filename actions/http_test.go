package actions

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/logtest"
)

const (
	testToken = "vt-http"
	testKey   = "encrypt-key-http"
)

type httpSetup struct {
	s       *feishutest.Server
	h       *recorder
	refused *atomic.Int32
	logs    *logtest.Buffer
	card    string
}

func newHTTPSetup(t *testing.T) httpSetup {
	s := feishutest.New(t)
	h := &recorder{answer: Answer{Toast: &Toast{Type: ToastSuccess, Content: "acknowledged"}, Card: mustJSON(testCard("acked"))}}
	logger, logs := newLogger()
	var refused atomic.Int32
	cb := NewHTTPCallback(testToken, testKey, h, logger, func(string) { refused.Add(1) })
	srv := httptest.NewServer(cb)
	t.Cleanup(srv.Close)
	s.SetCallback(srv.URL+"/feishu/callback", testToken, testKey)
	return httpSetup{s: s, h: h, refused: &refused, logs: logs, card: sendCard(t, s)}
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func TestHTTPChallenge(t *testing.T) {
	st := newHTTPSetup(t)
	require.NoError(t, st.s.ChallengeCallback(context.Background()), "signed")
	st.s.SetCallbackFault(feishutest.CallbackFault{Unsigned: true})
	require.NoError(t, st.s.ChallengeCallback(context.Background()), "unsigned")
	st.s.SetCallbackFault(feishutest.CallbackFault{WrongToken: true})
	require.ErrorContains(t, st.s.ChallengeCallback(context.Background()), "401")
	st.s.SetCallbackFault(feishutest.CallbackFault{BadSignature: true})
	require.ErrorContains(t, st.s.ChallengeCallback(context.Background()), "401", "a wrong signature is never accepted")
	require.EqualValues(t, 2, st.refused.Load())
	require.Empty(t, st.h.callbacks())
}

func TestHTTPClick(t *testing.T) {
	st := newHTTPSetup(t)
	before := time.Now()
	a, err := st.s.Click(context.Background(), st.card, "ou_alice", map[string]string{"action": "ack", "incident": "i1"})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, a.Status)
	require.Equal(t, &feishutest.ClickToast{Type: "success", Content: "acknowledged"}, a.Toast)
	require.JSONEq(t, string(mustJSON(testCard("acked"))), string(a.Card))
	m, _ := st.s.Message(st.card)
	require.Equal(t, 1, m.Updates, "the answer's card replaced the card")

	got := st.h.callbacks()
	require.Len(t, got, 1)
	cb := got[0]
	require.Equal(t, a.EventID, cb.EventID)
	require.Equal(t, "ou_alice", cb.Operator.OpenID)
	require.NotEmpty(t, cb.Operator.UnionID)
	require.JSONEq(t, `{"action":"ack","incident":"i1"}`, string(cb.Value))
	require.Equal(t, "button", cb.Tag)
	require.Equal(t, st.card, cb.MessageID)
	require.Equal(t, "oc_ops", cb.ChatID)
	require.Equal(t, feishutest.AppID, cb.AppID)
	require.True(t, strings.HasPrefix(cb.Token, "c-"))
	require.WithinRange(t, cb.Created, before.Add(-time.Millisecond), time.Now())
	require.Zero(t, st.refused.Load())

	// A duplicate delivery reaches the handler with the same event_id: the
	// caller dedupes.
	again, err := st.s.ClickWithEventID(context.Background(), a.EventID, st.card, "ou_alice", map[string]string{"action": "ack"})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, again.Status)
	require.Equal(t, a.EventID, st.h.callbacks()[1].EventID)
}

func TestHTTPRefusals(t *testing.T) {
	notACallback, _ := json.Marshal(map[string]any{"schema": "2.0",
		"header": map[string]any{"event_id": "e1", "token": testToken, "event_type": "im.message.receive_v1"}, "event": map[string]any{}})
	for name, tc := range map[string]struct {
		fault  feishutest.CallbackFault
		status int
	}{
		"wrong signature":          {feishutest.CallbackFault{BadSignature: true}, http.StatusUnauthorized},
		"no signature":             {feishutest.CallbackFault{Unsigned: true}, http.StatusUnauthorized},
		"wrong token":              {feishutest.CallbackFault{WrongToken: true}, http.StatusUnauthorized},
		"6 minutes old":            {feishutest.CallbackFault{Skew: -6 * time.Minute}, http.StatusUnauthorized},
		"6 minutes ahead":          {feishutest.CallbackFault{Skew: 6 * time.Minute}, http.StatusUnauthorized},
		"bad base64":               {feishutest.CallbackFault{BadBase64: true}, http.StatusBadRequest},
		"bad padding":              {feishutest.CallbackFault{BadPadding: true}, http.StatusBadRequest},
		"not JSON inside":          {feishutest.CallbackFault{Body: []byte("not json")}, http.StatusBadRequest},
		"not a callback's shape":   {feishutest.CallbackFault{Body: notACallback}, http.StatusBadRequest},
		"other shape, wrong token": {feishutest.CallbackFault{Body: []byte(`{"header":{"token":"x"}}`)}, http.StatusUnauthorized},
	} {
		t.Run(name, func(t *testing.T) {
			st := newHTTPSetup(t)
			st.s.SetCallbackFault(tc.fault)
			a, err := st.s.Click(context.Background(), st.card, "ou_alice", map[string]string{"action": "ack"})
			require.NoError(t, err) // the stand-in also checks Content-Type is JSON
			require.Equal(t, tc.status, a.Status, string(a.Raw))
			require.Empty(t, st.h.callbacks(), "nothing handed to the handler")
			require.EqualValues(t, 1, st.refused.Load())
			require.Equal(t, 1, st.logs.Count("card callback refused"), st.logs.String())
			m, _ := st.s.Message(st.card)
			require.Zero(t, m.Updates)
		})
	}
	t.Run("4 minutes off is fine", func(t *testing.T) {
		st := newHTTPSetup(t)
		for _, skew := range []time.Duration{-4 * time.Minute, 4 * time.Minute} {
			st.s.SetCallbackFault(feishutest.CallbackFault{Skew: skew})
			a, err := st.s.Click(context.Background(), st.card, "ou_alice", map[string]string{"action": "ack"})
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, a.Status)
		}
	})
}

func TestHTTPBodyLimitsAndMethod(t *testing.T) {
	cb := NewHTTPCallback(testToken, testKey, &recorder{}, nil, nil)
	w := httptest.NewRecorder()
	cb.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/feishu/callback", strings.NewReader(strings.Repeat("x", MaxCallbackBytes+1))))
	require.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	w = httptest.NewRecorder()
	cb.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/feishu/callback", nil))
	require.Equal(t, http.StatusMethodNotAllowed, w.Code)
	w = httptest.NewRecorder()
	cb.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/feishu/callback", strings.NewReader(`{"challenge":"c","token":"vt-http","type":"url_verification"}`)))
	require.Equal(t, http.StatusBadRequest, w.Code, "a plain body when an Encrypt Key is set")
}

func TestHTTPHandlerPanic(t *testing.T) {
	st := newHTTPSetup(t)
	logger, logs := newLogger()
	srv := httptest.NewServer(NewHTTPCallback(testToken, testKey, HandlerFunc(func(context.Context, Callback) Answer { panic("boom") }), logger, nil))
	defer srv.Close()
	st.s.SetCallback(srv.URL, testToken, testKey)
	a, err := st.s.Click(context.Background(), st.card, "ou_alice", map[string]string{"action": "ack"})
	require.NoError(t, err)
	require.Equal(t, http.StatusInternalServerError, a.Status)
	require.Equal(t, 1, logs.Count("handler failed", "boom"))
}

// sealed is a signed, encrypted callback request, as Feishu sends one.
func sealed(body []byte, ts time.Time) func() *http.Request {
	key := sha256Key(testKey)
	block, _ := aes.NewCipher(key[:])
	n := aes.BlockSize - len(body)%aes.BlockSize
	plain := append(append([]byte{}, body...), bytes.Repeat([]byte{byte(n)}, n)...)
	out := make([]byte, aes.BlockSize+len(plain))
	cipher.NewCBCEncrypter(block, out[:aes.BlockSize]).CryptBlocks(out[aes.BlockSize:], plain)
	raw, _ := json.Marshal(map[string]string{"encrypt": base64.StdEncoding.EncodeToString(out)})
	stamp := strconv.FormatInt(ts.Unix(), 10)
	sig := signature(stamp, "nonce", testKey, raw)
	mk := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/feishu/callback", bytes.NewReader(raw))
		r.Header.Set(HeaderTimestamp, stamp)
		r.Header.Set(HeaderNonce, "nonce")
		r.Header.Set(HeaderSignature, sig)
		return r
	}
	return mk
}

func BenchmarkHTTPCallback(b *testing.B) {
	body := strings.ReplaceAll(docBody, `"token":"vt"`, `"token":"`+testToken+`"`)
	cb := NewHTTPCallback(testToken, testKey, HandlerFunc(func(context.Context, Callback) Answer {
		return Answer{Toast: &Toast{Type: ToastSuccess, Content: "ok"}}
	}), nil, nil)
	mk := sealed([]byte(body), time.Now())
	w := httptest.NewRecorder()
	cb.ServeHTTP(w, mk())
	require.Equal(b, http.StatusOK, w.Code, w.Body.String())
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		cb.ServeHTTP(w, mk())
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
