package feishu_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishu"
	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
)

var apis = []string{config.APIIMv1, config.APIv4}

// newV4 is a message/v4/send sender of the stand-in's app with secret.
func newV4(t *testing.T, s *feishutest.Server, secret string) (feishu.Sender, *feishu.Metrics) {
	t.Helper()
	return newSender(t, s, secret, config.APIv4)
}

// newSender is the sender through api of the stand-in's app with secret.
func newSender(t *testing.T, s *feishutest.Server, secret, api string) (feishu.Sender, *feishu.Metrics) {
	t.Helper()
	c, m := newClientWith(t, s, config.Feishu{API: api, AppID: feishutest.AppID}, secret, config.RateLimit{})
	return senderFor(c, api), m
}

// newInMemory is newSender's sender with the right secret, its calls served
// by s's handler in memory, for a synctest bubble: a goroutine waiting on
// a real socket would stop the bubble's clock.
func newInMemory(t *testing.T, s *feishutest.Server, api string) (feishu.Sender, *feishu.Metrics) {
	t.Helper()
	c, m := newClientWith(t, s, config.Feishu{API: api, AppID: feishutest.AppID}, feishutest.AppSecret, config.RateLimit{})
	feishu.SetTransport(c, handlerTransport{s.Handler()})
	return senderFor(c, api), m
}

// senderFor is c's sender through api, as the service picks it.
func senderFor(c *feishu.Client, api string) feishu.Sender {
	if api == config.APIIMv1 {
		return c.IMv1()
	}
	return c.V4()
}

// newClientWith makes a client of the stand-in s with cfg (its base URL and
// HTTP settings filled in), paced at limits.
func newClientWith(t *testing.T, s *feishutest.Server, cfg config.Feishu, secret string, limits config.RateLimit) (*feishu.Client, *feishu.Metrics) {
	t.Helper()
	m := feishu.NewMetrics(prometheus.NewRegistry())
	cfg.BaseURL, cfg.HTTPConfig = s.URL, commoncfg.DefaultHTTPClientConfig
	c, err := feishu.New(cfg, secret, m, feishu.NewPacer(limits, m), promslog.NewNopLogger())
	require.NoError(t, err)
	return c, m
}

func text(chat, s string) feishu.Message {
	return feishu.Message{Target: feishu.Target{Kind: "chat_id", ID: chat}, Type: "text", Content: feishu.Text{Text: s}}
}

func TestSendAndReply(t *testing.T) {
	for _, api := range apis {
		t.Run(api, func(t *testing.T) {
			s := feishutest.New(t)
			c, _ := newSender(t, s, feishutest.AppSecret, api)
			ctx := context.Background()

			root, err := c.Send(ctx, text("oc_1", "first"))
			require.NoError(t, err)
			m := text("oc_1", "second")
			m.RootID = root
			reply, err := c.Send(ctx, m)
			require.NoError(t, err)

			got := s.Messages()
			require.Len(t, got, 2)
			require.Equal(t, root, got[0].ID)
			require.Equal(t, "first", got[0].Text)
			require.Equal(t, "chat_id", got[0].Target)
			require.Equal(t, reply, got[1].ID)
			require.Equal(t, root, got[1].RootID)
			require.Equal(t, "oc_1", got[1].TargetID)
			require.Equal(t, api, got[1].API)
		})
	}
}

func TestEveryTargetKind(t *testing.T) {
	for _, api := range apis {
		t.Run(api, func(t *testing.T) {
			s := feishutest.New(t)
			c, _ := newSender(t, s, feishutest.AppSecret, api)
			for _, kind := range []string{"chat_id", "open_id", "user_id", "email"} {
				_, err := c.Send(context.Background(), feishu.Message{
					Target: feishu.Target{Kind: kind, ID: "x-" + kind}, Type: "text", Content: feishu.Text{Text: kind}})
				require.NoError(t, err)
			}
			for i, m := range s.Messages() {
				require.Equal(t, []string{"chat_id", "open_id", "user_id", "email"}[i], m.Target)
				require.Equal(t, "x-"+m.Target, m.TargetID)
			}
		})
	}
}

func TestTokenIsCachedAndShared(t *testing.T) {
	s := feishutest.New(t)
	c, m := newV4(t, s, feishutest.AppSecret)
	errs := make(chan error, 20)
	var wg sync.WaitGroup
	for range cap(errs) {
		wg.Go(func() {
			_, err := c.Send(context.Background(), text("oc_1", "x"))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, 1, s.TokenRequests())
	require.Equal(t, 1.0, testutil.ToFloat64(m.TokenRefreshes))
	require.Equal(t, 20.0, testutil.ToFloat64(m.Requests.WithLabelValues(feishu.EndpointV4, "0")))
}

// A 2 s token is refreshed once in 3 s of sends every 50 ms, at 1.6 s,
// when it has a fifth of its life left, and never used past its expiry,
// which the stand-in would refuse. Virtual time makes the schedule exact.
func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	s := feishutest.New(t)
	s.SetTokenTTL(2 * time.Second)
	synctest.Test(t, func(t *testing.T) {
		c, _ := newInMemory(t, s, config.APIv4)
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			_, err := c.Send(context.Background(), text("oc_1", "x"))
			require.NoError(t, err, "a token is never used past its expiry")
			time.Sleep(50 * time.Millisecond)
		}
		require.Equal(t, 2, s.TokenRequests())
	})
}

func TestRejectedTokenIsReplacedOnce(t *testing.T) {
	s := feishutest.New(t)
	c, _ := newV4(t, s, feishutest.AppSecret)
	_, err := c.Send(context.Background(), text("oc_1", "x"))
	require.NoError(t, err)
	s.ExpireTokens() // Feishu invalidated the cached token early
	_, err = c.Send(context.Background(), text("oc_1", "y"))
	require.NoError(t, err)
	require.Equal(t, 2, s.TokenRequests())
	require.Len(t, s.Messages(), 2)
}

func TestWrongSecret(t *testing.T) {
	s := feishutest.New(t)
	c, _ := newV4(t, s, "wrong-secret")
	_, err := c.Send(context.Background(), text("oc_1", "x"))
	var te *feishu.TokenError
	require.ErrorAs(t, err, &te)
	require.Contains(t, err.Error(), "code 10014: app secret invalid")
	require.NotContains(t, err.Error(), "wrong-secret")
	require.Equal(t, feishu.Permanent, feishu.Classify(err), "a refused secret is the operator's to fix")
	require.Equal(t, 1, s.TokenRequests(), "and is not asked again")
	require.Empty(t, s.Messages())
}

func TestTokenEndpointDownIsTransient(t *testing.T) {
	s := feishutest.New(t)
	c, _ := newV4(t, s, feishutest.AppSecret)
	s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := c.Send(ctx, text("oc_1", "x"))
	var te *feishu.TokenError
	require.ErrorAs(t, err, &te)
	require.Equal(t, feishu.Transient, feishu.Classify(err))
}

// Each class of Feishu's answers, given to every attempt: what may pass is
// tried again within the deadline, the rest is not.
func TestClassification(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault feishutest.Fault
		want  feishu.Class
		sends int // at least, within the deadline
	}{
		{"gateway rate limit", feishutest.Fault{Status: 429, Code: 99991400, Msg: "request trigger frequency limit", Header: map[string]string{"x-ogw-ratelimit-reset": "1"}}, feishu.Transient, 2},
		{"429 without a code", feishutest.Fault{Status: 429}, feishu.Transient, 2},
		{"per-chat limit", feishutest.Fault{Status: 400, Code: 230020, Msg: "rate limit"}, feishu.Transient, 2},
		{"v4 chat limit", feishutest.Fault{Status: 400, Code: 11233, Msg: "create message chat trigger rate limit"}, feishu.Transient, 2},
		{"internal error", feishutest.Fault{Status: 200, Code: 2200, Msg: "Internal Error"}, feishu.Transient, 2},
		{"being sent", feishutest.Fault{Status: 400, Code: 230049, Msg: "The message is being sent"}, feishu.Transient, 2},
		{"server error", feishutest.Fault{Status: 503, Code: 0, Msg: "unavailable"}, feishu.Transient, 2},
		{"bad gateway", feishutest.Fault{Status: 502}, feishu.Transient, 2},
		{"no answer", feishutest.Fault{Drop: true}, feishu.Transient, 2},
		{"bot not in chat", feishutest.Fault{Status: 400, Code: 230002, Msg: "Bot/User can NOT be out of the chat."}, feishu.Permanent, 1},
		{"v4 bot not in chat", feishutest.Fault{Status: 400, Code: 10030, Msg: "bot not in chat"}, feishu.Permanent, 1},
		{"no permission", feishutest.Fault{Status: 400, Code: 99991672, Msg: "Access denied."}, feishu.Permanent, 1},
		{"invalid receive id", feishutest.Fault{Status: 400, Code: 230001, Msg: "param is invalid, ext=invalid receive_id"}, feishu.Permanent, 1},
		{"recalled root", feishutest.Fault{Status: 400, Code: 230011, Msg: "The message is recalled."}, feishu.RootGone, 1},
		{"unknown root", feishutest.Fault{Status: 400, Code: 230001, Msg: "param is invalid, ext=invalid message_id"}, feishu.RootGone, 1},
		{"token rejected twice", feishutest.Fault{Status: 400, Code: 99991663, Msg: "Invalid access token"}, feishu.TokenRejected, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := feishutest.New(t)
			c, _ := newV4(t, s, feishutest.AppSecret)
			s.FailTarget("oc_1", tc.fault)
			ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
			defer cancel()
			_, err := c.Send(ctx, text("oc_1", "x"))
			require.Error(t, err)
			require.Equal(t, tc.want, feishu.Classify(err), "%v", err)
			if tc.want == feishu.Transient {
				require.GreaterOrEqual(t, s.Sends(), tc.sends, "retried within the deadline")
			} else {
				require.Equal(t, tc.sends, s.Sends(), "not retried")
			}
			if tc.fault.Drop {
				require.NotContains(t, err.Error(), "Bearer")
				return
			}
			var fe *feishu.Error
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tc.fault.Code, fe.Code)
			require.NotEmpty(t, fe.LogID)
		})
	}
}

func TestTransientFailuresAreRetried(t *testing.T) {
	for _, api := range apis {
		t.Run(api, func(t *testing.T) {
			s := feishutest.New(t)
			c, m := newSender(t, s, feishutest.AppSecret, api)
			s.FailNext(1, feishutest.Fault{Drop: true})
			s.FailNext(1, feishutest.Fault{Status: http.StatusBadGateway})
			s.FailNext(1, feishutest.Fault{Status: http.StatusBadRequest, Code: 230049, Msg: "The message is being sent"})
			msg := text("oc_1", "x")
			msg.UUID = "the-attempt"
			_, err := c.Send(context.Background(), msg)
			require.NoError(t, err)
			require.Equal(t, 4, s.Sends())
			got := s.Messages()
			require.Len(t, got, 1)
			endpoint := feishu.EndpointV4
			if api == config.APIIMv1 {
				endpoint = feishu.EndpointCreate
				require.Equal(t, "the-attempt", got[0].UUID, "every attempt carries the same uuid")
			}
			require.Equal(t, 3.0, testutil.ToFloat64(m.Retries.WithLabelValues(endpoint, "transient")))
		})
	}
}

// A rate-limit answer from the gateway pauses every send for as long as its
// reset header says; one from a chat pauses that chat only. Virtual time
// orders the sends: synctest.Wait returns once the first is asleep before
// its retry, the refusal taken.
func TestRateLimitAnswersPauseThePacer(t *testing.T) {
	s := feishutest.New(t)
	synctest.Test(t, func(t *testing.T) {
		c, m := newInMemory(t, s, config.APIIMv1)
		s.FailNext(1, feishutest.Fault{Status: http.StatusTooManyRequests, Code: 99991400, Msg: "request trigger frequency limit",
			Header: map[string]string{"x-ogw-ratelimit-limit": "50", "x-ogw-ratelimit-reset": "1"}})
		start := time.Now()
		var first time.Duration
		var firstErr error
		var wg sync.WaitGroup
		wg.Go(func() {
			_, firstErr = c.Send(context.Background(), text("oc_1", "x"))
			first = time.Since(start)
		})
		synctest.Wait()
		require.Equal(t, 1, s.Sends(), "the first send was refused and waits")
		_, err := c.Send(context.Background(), text("oc_2", "y"))
		require.NoError(t, err)
		other := time.Since(start)
		wg.Wait()
		require.NoError(t, firstErr)
		require.Equal(t, time.Second, first, "the reset header is honoured")
		require.Equal(t, time.Second, other, "and holds back sends to other chats too")
		require.Len(t, s.Messages(), 2)
		require.Equal(t, 1.0, testutil.ToFloat64(m.Retries.WithLabelValues(feishu.EndpointCreate, "rate_limited")))
		count, sum := histogram(t, m.RateLimitWait)
		require.Equal(t, uint64(3), count, "every attempt waited for its slot")
		require.InDelta(t, 1.0, sum, 1e-6, "the second chat's send waited out the pause, the retry none")

		// A chat's limit pauses that chat, not the others.
		s.FailNext(1, feishutest.Fault{Status: http.StatusBadRequest, Code: 230020, Msg: "rate limit"})
		start = time.Now()
		wg.Go(func() {
			_, firstErr = c.Send(context.Background(), text("oc_1", "x"))
			first = time.Since(start)
		})
		synctest.Wait()
		_, err = c.Send(context.Background(), text("oc_2", "y"))
		require.NoError(t, err)
		elsewhere := time.Since(start)
		wg.Wait()
		require.NoError(t, firstErr)
		require.Zero(t, elsewhere, "the other chat went at once")
		require.GreaterOrEqual(t, first, 500*time.Millisecond, "the refused chat backed off, by at least half a second")
		require.Len(t, s.Messages(), 4)
		require.Equal(t, "y", s.Messages()[2].Text, "the other chat went first")
	})
}

func TestClassifyForeignErrors(t *testing.T) {
	require.Equal(t, feishu.OK, feishu.Classify(nil))
	require.Equal(t, feishu.Transient, feishu.Classify(context.DeadlineExceeded))
	require.Equal(t, feishu.Transient, feishu.Classify(errors.New("anything")))
	require.Equal(t, feishu.Transient, feishu.Classify(&feishu.SlotError{Target: "chat_id oc_1"}))
}

// histogram reads a histogram's sample count and sum.
func histogram(t *testing.T, h prometheus.Histogram) (uint64, float64) {
	t.Helper()
	var m dto.Metric
	require.NoError(t, h.Write(&m))
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}
