package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// gate stands between the service and the stand-in and holds every message
// send (token requests pass) until the test opens it: a send is then
// surely in flight at the moment the test chooses, where a latency would
// only make it likely. A held send whose caller gives up never reaches
// the stand-in.
type gate struct {
	URL    string
	sends  chan struct{} // one value per send that reached the gate
	opened chan struct{}
	once   sync.Once
}

func newGate(t *testing.T, target string) *gate {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(u)
	g := &gate{sends: make(chan struct{}, 1000), opened: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/open-apis/im/v1/messages") || strings.HasPrefix(r.URL.Path, "/open-apis/message/v4/send") {
			select {
			case g.sends <- struct{}{}:
			default:
			}
			select {
			case <-g.opened:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	g.URL = srv.URL
	t.Cleanup(func() {
		g.open()
		srv.Close()
	})
	return g
}

// open lets the held sends and every later one through.
func (g *gate) open() { g.once.Do(func() { close(g.opened) }) }

// waitSend waits until a send has reached the gate.
func (g *gate) waitSend(t *testing.T) {
	t.Helper()
	select {
	case <-g.sends:
	case <-time.After(20 * time.Second):
		require.Fail(t, "no send reached the gate")
	}
}
