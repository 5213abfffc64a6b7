package feishutest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// ClientConfig is the long connection's tuning the stand-in hands out at
// bootstrap and in every pong. Durations are in seconds; a zero field is
// sent as 0, which a client must read as "keep yours".
type ClientConfig struct {
	ReconnectCount    int `json:"ReconnectCount"`
	ReconnectInterval int `json:"ReconnectInterval"`
	ReconnectNonce    int `json:"ReconnectNonce"`
	PingInterval      int `json:"PingInterval"`
}

// HandshakeRefusal is how the stand-in refuses WebSocket upgrades, with
// Feishu's Handshake-* headers.
type HandshakeRefusal struct {
	Status  int // Handshake-Status: 514 auth failed, 403 forbidden, others
	AuthErr int // Handshake-Autherrcode: 1000040350 too many connections
	Msg     string
}

// Long-connection codes.
const (
	HandshakeAuthFailed = 514
	HandshakeForbidden  = 403
	CodeTooManyConns    = 1000040350
	// CodeBadCredentials answers a bootstrap with a wrong app ID or secret.
	// Feishu does not document this endpoint's code for it; the stand-in
	// uses the token endpoint's 10014, which a client must treat as fatal
	// like any code but 1 and 1000040343.
	CodeBadCredentials = 10014
	maxConnsPerApp     = 50
	wsPath             = "/callback/ws/v2"
)

// longConns is the stand-in's long-connection server.
type longConns struct {
	config     ClientConfig
	conns      map[int]*wsConn
	nextConn   int
	devices    map[string]string // device_id -> ticket, issued at bootstrap
	bootstraps int
	handshakes int
	pings      int
	closes     int // connections the client closed with a normal close frame
	maxConns   int
	refusal    *HandshakeRefusal
	silent     bool // no pongs
	split      int  // parts per pushed payload
	seq        uint64
}

type wsConn struct {
	id      int
	c       *websocket.Conn
	service int32
	pending map[string]chan frame // acks awaited, by message_id
	done    chan struct{}
}

// SetClientConfig sets the ClientConfig answered from now on, at bootstrap
// and in pongs (so connected clients learn it at their next ping).
func (s *Server) SetClientConfig(c ClientConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cb.lc.config = c
}

// RefuseHandshakes refuses every WebSocket upgrade with r; nil accepts
// them again.
func (s *Server) RefuseHandshakes(r *HandshakeRefusal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cb.lc.refusal = r
}

// SetMaxConnections sets how many connections the app may have (Feishu:
// 50); the next is refused with 514 and 1000040350.
func (s *Server) SetMaxConnections(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cb.lc.maxConns = n
}

// SetSilent stops (or resumes) answering pings, as a server that is gone
// behind a socket that still looks open.
func (s *Server) SetSilent(silent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cb.lc.silent = silent
}

// SetSplit makes each pushed callback travel in n frames (sum/seq); 0 or 1
// sends it whole.
func (s *Server) SetSplit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cb.lc.split = n
}

// Connections counts the long connections open now.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.cb.lc.conns)
}

// Bootstraps counts calls to the long connection's endpoint.
func (s *Server) Bootstraps() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cb.lc.bootstraps
}

// Handshakes counts WebSocket upgrade attempts, refused or not.
func (s *Server) Handshakes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cb.lc.handshakes
}

// Pings counts the pings received on all connections.
func (s *Server) Pings() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cb.lc.pings
}

// CleanCloses counts connections the client closed with a normal close
// frame.
func (s *Server) CleanCloses() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cb.lc.closes
}

// PushEvent pushes any event body over the long connection, as Click does
// a callback, and returns the ack; for tests of what a client does with a
// payload that is not a card callback.
func (s *Server) PushEvent(ctx context.Context, body []byte) (ClickAnswer, error) {
	return s.push(ctx, body)
}

// DropConnections closes every long connection without a close frame, as
// a network failure or a Feishu deploy would.
func (s *Server) DropConnections() {
	s.mu.Lock()
	conns := make([]*wsConn, 0, len(s.cb.lc.conns))
	for _, c := range s.cb.lc.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.c.CloseNow() // dropping is the point; a connection already gone is fine
		<-c.done
	}
}

// wsEndpoint is POST /callback/ws/endpoint: it checks the app's
// credentials and answers the URL to dial with a one-time ticket.
func (s *Server) wsEndpoint(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AppID     string `json:"AppID"`
		AppSecret string `json:"AppSecret"`
	}
	err := json.NewDecoder(r.Body).Decode(&req)
	s.mu.Lock()
	defer s.mu.Unlock()
	lc := &s.cb.lc
	lc.bootstraps++
	if err != nil || req.AppID != s.appID || req.AppSecret != s.secret {
		writeJSON(w, http.StatusOK, answer{Code: CodeBadCredentials, Msg: "app id or secret invalid"})
		return
	}
	device, ticket := newID(""), newID("")
	lc.devices[device] = ticket
	service := 1 + rand.Int32N(1<<20)
	u := strings.Replace(s.URL, "http://", "ws://", 1) + wsPath +
		fmt.Sprintf("?device_id=%s&service_id=%d&ticket=%s", device, service, ticket)
	writeJSON(w, http.StatusOK, answer{Code: 0, Msg: "ok", Data: map[string]any{"URL": u, "ClientConfig": lc.config}})
}

// wsUpgrade accepts a client's WebSocket and serves it until it closes.
func (s *Server) wsUpgrade(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	service, _ := strconv.ParseInt(q.Get("service_id"), 10, 32)
	s.mu.Lock()
	lc := &s.cb.lc
	lc.handshakes++
	ticket, known := lc.devices[q.Get("device_id")]
	refusal := lc.refusal
	switch {
	case refusal != nil:
	case !known || ticket != q.Get("ticket"):
		// Feishu's code for a bad ticket is not documented.
		refusal = &HandshakeRefusal{Status: HandshakeAuthFailed, Msg: "invalid ticket"}
	case len(lc.conns) >= lc.maxConns:
		refusal = &HandshakeRefusal{Status: HandshakeAuthFailed, AuthErr: CodeTooManyConns, Msg: "exceed connection limit"}
	}
	if refusal == nil {
		delete(lc.devices, q.Get("device_id")) // a ticket serves once
	}
	s.mu.Unlock()
	if refusal != nil {
		// Feishu's HTTP status for a refused upgrade is not documented;
		// clients read the headers.
		w.Header().Set("Handshake-Status", strconv.Itoa(refusal.Status))
		if refusal.AuthErr != 0 {
			w.Header().Set("Handshake-Autherrcode", strconv.Itoa(refusal.AuthErr))
		}
		w.Header().Set("Handshake-Msg", refusal.Msg)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(4 << 20)
	s.mu.Lock()
	lc.nextConn++
	conn := &wsConn{id: lc.nextConn, c: c, service: int32(service), pending: map[string]chan frame{}, done: make(chan struct{})}
	lc.conns[conn.id] = conn
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(lc.conns, conn.id)
		s.mu.Unlock()
		_ = c.CloseNow() // the handler is done; a connection already gone is fine
		close(conn.done)
	}()
	for {
		typ, b, err := c.Read(context.Background())
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
				s.mu.Lock()
				lc.closes++
				s.mu.Unlock()
			}
			return
		}
		f, err := unmarshal(b)
		if typ != websocket.MessageBinary || err != nil {
			c.Close(websocket.StatusUnsupportedData, "not a frame")
			return
		}
		switch {
		case f.Method == 0 && f.get("type") == "ping":
			s.mu.Lock()
			lc.pings++
			silent, cfg := lc.silent, lc.config
			s.mu.Unlock()
			if silent {
				continue
			}
			payload, _ := json.Marshal(cfg)
			pong := frame{Service: f.Service, Method: 0, Headers: [][2]string{{"type", "pong"}}, Payload: payload}
			if c.Write(context.Background(), websocket.MessageBinary, pong.marshal()) != nil {
				return
			}
		case f.Method == 1:
			s.mu.Lock()
			ch := conn.pending[f.get("message_id")]
			delete(conn.pending, f.get("message_id"))
			s.mu.Unlock()
			if ch != nil {
				ch <- f
			}
		}
	}
}

// errNoConnection is Click's error when no client is connected.
var errNoConnection = errors.New("feishutest: no long connection to deliver the click")

// ConnectionIDs are the IDs of the clients connected now, oldest first, as
// ClickAnswer.Conn names them.
func (s *Server) ConnectionIDs() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int, 0, len(s.cb.lc.conns))
	for id := range s.cb.lc.conns {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// ClickOn is Click over the long connection to the client conn (one of
// ConnectionIDs), for a test that needs a click to reach one replica.
func (s *Server) ClickOn(ctx context.Context, conn int, messageID, openID string, value any) (ClickAnswer, error) {
	eventID := newID("")
	body, err := s.callbackBody(eventID, messageID, openID, value)
	if err != nil {
		return ClickAnswer{}, err
	}
	a, err := s.pushTo(ctx, conn, body)
	a.EventID = eventID
	if err == nil && a.Card != nil {
		s.replaceCard(messageID, openID, a.Card)
	}
	return a, err
}

// push sends body to one connected client chosen at random, as Feishu
// does, and waits for its ack.
func (s *Server) push(ctx context.Context, body []byte) (ClickAnswer, error) {
	return s.pushTo(ctx, -1, body)
}

// pushTo sends body to the client with ID id, or to one at random when id
// is negative, and waits for its ack.
func (s *Server) pushTo(ctx context.Context, id int, body []byte) (ClickAnswer, error) {
	s.mu.Lock()
	lc := &s.cb.lc
	if len(lc.conns) == 0 {
		s.mu.Unlock()
		return ClickAnswer{}, errNoConnection
	}
	if id < 0 {
		ids := make([]int, 0, len(lc.conns))
		for id := range lc.conns {
			ids = append(ids, id)
		}
		id = ids[rand.IntN(len(ids))]
	}
	conn, ok := lc.conns[id]
	if !ok {
		s.mu.Unlock()
		return ClickAnswer{}, fmt.Errorf("feishutest: no long connection %d", id)
	}
	msgID := newID("")
	ack := make(chan frame, 1)
	conn.pending[msgID] = ack
	parts := max(lc.split, 1)
	lc.seq++
	seq := lc.seq
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(conn.pending, msgID)
		s.mu.Unlock()
	}()

	size := (len(body) + parts - 1) / parts
	for i := range parts {
		part := body[min(i*size, len(body)):min((i+1)*size, len(body))]
		f := frame{SeqID: seq, LogID: rand.Uint64(), Service: conn.service, Method: 1,
			Headers: [][2]string{
				{"type", "event"}, {"message_id", msgID}, {"trace_id", newID("")},
				{"sum", strconv.Itoa(parts)}, {"seq", strconv.Itoa(i)},
				{"timestamp", strconv.FormatInt(time.Now().UnixMilli(), 10)},
			}, Payload: part}
		if err := conn.c.Write(ctx, websocket.MessageBinary, f.marshal()); err != nil {
			return ClickAnswer{}, fmt.Errorf("feishutest: push click: %w", err)
		}
	}
	t := time.NewTimer(callbackTimeout)
	defer t.Stop()
	select {
	case f := <-ack:
		var a struct {
			Code int    `json:"code"`
			Data []byte `json:"data"`
		}
		if err := json.Unmarshal(f.Payload, &a); err != nil {
			return ClickAnswer{}, fmt.Errorf("feishutest: ack payload is not JSON: %w", err)
		}
		if f.get("biz_rt") == "" || f.SeqID != seq {
			return ClickAnswer{}, errors.New("feishutest: ack is not the pushed frame with biz_rt")
		}
		ans := ClickAnswer{Status: a.Code, Conn: conn.id, Raw: a.Data}
		if a.Code == http.StatusOK {
			if err := ans.decode(); err != nil {
				return ans, err
			}
		}
		return ans, nil
	case <-conn.done:
		return ClickAnswer{}, errors.New("feishutest: connection closed before the ack")
	case <-t.C:
		return ClickAnswer{}, errClickTimeout
	case <-ctx.Done():
		return ClickAnswer{}, ctx.Err()
	}
}
