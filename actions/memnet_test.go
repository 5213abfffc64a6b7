package actions

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/alertmanager-feishu/alertmanager-feishu/feishutest"
)

// memNet serves the stand-in's handler, long connection included, over
// in-memory pipes, for a test in a testing/synctest bubble: the bubble's
// clock stands still while a goroutine waits on a real socket, and a long
// connection always has one waiting. Made inside the bubble, its server's
// goroutines are the bubble's, and its cleanup ends them.
type memNet struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	held   atomic.Pointer[chan struct{}] // while set, the server reads nothing
}

// newMemNet serves s in memory and returns a client that reaches it.
func newMemNet(t *testing.T, s *feishutest.Server) (*memNet, *http.Client) {
	t.Helper()
	m := &memNet{conns: make(chan net.Conn), closed: make(chan struct{})}
	srv := &http.Server{Handler: s.Handler()}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(m) // ends with the listener's close
	}()
	tr := &http.Transport{DialContext: m.dial}
	t.Cleanup(func() {
		m.thaw()
		s.DropConnections()
		_ = srv.Close() // closes the listener and the connections it still serves
		tr.CloseIdleConnections()
		<-served
	})
	return m, &http.Client{Transport: tr}
}

func (m *memNet) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case m.conns <- &heldConn{Conn: server, m: m}:
		return client, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-m.closed:
		return nil, net.ErrClosed
	}
}

// freeze makes the server read nothing more, as a server gone behind an
// open socket: it neither answers pings nor a close frame.
func (m *memNet) freeze() {
	ch := make(chan struct{})
	m.held.Store(&ch)
}

// thaw ends freeze.
func (m *memNet) thaw() {
	if ch := m.held.Swap(nil); ch != nil {
		close(*ch)
	}
}

// Accept, Close and Addr make memNet the server's listener.
func (m *memNet) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case <-m.closed:
		return nil, net.ErrClosed
	}
}

func (m *memNet) Close() error {
	m.once.Do(func() { close(m.closed) })
	return nil
}

func (m *memNet) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// heldConn is the server's end of a pipe, which freeze holds.
type heldConn struct {
	net.Conn
	m *memNet
}

// Read holds what it read while frozen: the server may already be waiting
// in a read when freeze comes.
func (c *heldConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if ch := c.m.held.Load(); ch != nil {
		<-*ch
	}
	return n, err
}
