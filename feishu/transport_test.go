package feishu_test

import (
	"net/http"
	"net/http/httptest"
)

// handlerTransport serves each request with h in the calling goroutine,
// without a socket. A synctest bubble needs that: a goroutine blocked on
// real network I/O is not durably blocked, so virtual time would not
// advance.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		defer r.Body.Close()
	}
	rec := httptest.NewRecorder()
	// A ServeMux records its match in the request: give it its own.
	t.h.ServeHTTP(rec, r.Clone(r.Context()))
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}
