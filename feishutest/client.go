package feishutest

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
)

// Client returns an HTTP client whose calls the stand-in answers in
// memory, in the calling goroutine, without a socket: in a
// testing/synctest bubble a goroutine waiting on real network I/O is not
// durably blocked, so the bubble's clock would stop. It serves the HTTP
// endpoints, not the long connection's WebSocket. A Fault that drops the
// connection fails the call as a dropped connection does.
func (s *Server) Client() *http.Client {
	return &http.Client{Transport: memoryTransport{s.Handler()}}
}

type memoryTransport struct{ h http.Handler }

var errDropped = errors.New("feishutest: connection closed without an answer")

func (t memoryTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		defer r.Body.Close()
	}
	// The handler gets a request of its own, as a server's would be: a
	// ServeMux records its match in it.
	in := r.Clone(r.Context())
	if in.Body == nil {
		in.Body = http.NoBody
	}
	in.RequestURI = r.URL.RequestURI()
	in.RemoteAddr = "127.0.0.1:0"
	rec := &hijackableRecorder{ResponseRecorder: httptest.NewRecorder()}
	t.h.ServeHTTP(rec, in)
	if rec.hijacked {
		return nil, errDropped
	}
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// hijackableRecorder lets a handler take the connection, as Fault.Drop
// does, to close it: it gets one end of a pipe whose other end is closed.
type hijackableRecorder struct {
	*httptest.ResponseRecorder
	hijacked bool
}

func (w *hijackableRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	client, server := net.Pipe()
	client.Close()
	w.hijacked = true
	return server, bufio.NewReadWriter(bufio.NewReader(server), bufio.NewWriter(server)), nil
}
