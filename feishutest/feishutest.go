// Package feishutest is a stand-in for the Feishu Open Platform: a real HTTP
// server on loopback that answers the calls this service makes the way
// Feishu documents them (tokens and their expiry, message/v4/send with
// root_id, im/v1 create, reply and card update with uuid, contacts lookup,
// error codes), records what it was sent, and injects the faults tests
// need. It never talks to Feishu.
package feishutest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Default credentials of the stand-in's one app.
const (
	AppID     = "cli_feishutest"
	AppSecret = "feishutest-secret"
)

// Message is one message the stand-in accepted.
type Message struct {
	ID       string `json:"message_id"`
	API      string `json:"api"`             // "v4" or "im_v1"
	Target   string `json:"receive_id_type"` // chat_id, open_id, user_id or email
	TargetID string `json:"receive_id"`
	RootID   string `json:"root_id,omitempty"`
	ParentID string `json:"parent_id,omitempty"` // im/v1: the message replied to
	UUID     string `json:"uuid,omitempty"`
	Type     string `json:"msg_type"`
	// Content is the content object, the same shape whichever API sent it:
	// text {"text"}, post {locale: {title, content}}, or the card.
	Content json.RawMessage `json:"content"`
	// Text is the message as a reader sees it, markup and all: the text; a
	// post's title and text nodes; a card's title and markdown, one per line.
	Text    string    `json:"text,omitempty"`
	Time    time.Time `json:"time"`
	Updates int       `json:"updates,omitempty"` // times the card was updated in place
	// FirstText is Text as the message was sent, once it was updated in
	// place: a reader saw it so before.
	FirstText string `json:"first_text,omitempty"`
	Recalled  bool   `json:"recalled,omitempty"`
	Deleted   bool   `json:"deleted,omitempty"`
}

// Fault is an answer the stand-in gives instead of a send's normal one.
type Fault struct {
	Status int               // HTTP status; 0 means 200
	Code   int               // Feishu code in the body
	Msg    string            // Feishu msg in the body
	Header map[string]string // extra answer headers
	// Drop closes the connection without an answer.
	Drop bool
}

// Server is the stand-in. Its zero value is not usable; call Start.
type Server struct {
	URL string

	srv *http.Server
	ln  net.Listener

	mu            sync.Mutex
	appID, secret string
	tokenTTL      time.Duration
	current       string               // the newest token
	tokens        map[string]time.Time // every token issued, with its expiry
	tokenRequests int
	messages      []*Message
	byID          map[string]*Message
	uuids         map[string]*Message // im/v1 idempotency keys, for uuidWindow
	users         map[string]string   // email -> open_id
	names         map[string]string   // open_id -> name, for the contacts API
	refuseNames   bool
	notMember     map[string]bool // chats the bot is not in
	faults        []Fault         // answers for the next sends
	every         int             // answer everyFault to every nth send; 0 = never
	everyFault    Fault
	everyCount    int
	targetFaults  map[string]Fault // answers to every send to a target
	lookupFault   *Fault           // answer to every contacts lookup
	lookups       int
	latency       time.Duration
	counting      Counting            // how the limits below count (ratelimit.go)
	chatLimit     int                 // sends per second per target; 0 = none
	chatBuckets   map[string]*counter // per target, for chatLimit
	appPerSecond  int                 // the gateway's per-app limits; 0 = none
	appPerMinute  int
	appLimit      *counter // per second, nil = none
	appMinute     *counter // per minute, nil = none
	botPerSecond  int      // every custom bot's limits; 0 per second = none
	botPerMinute  int
	refusedChat   int
	refusedApp    int
	refusedSign   int
	bots          map[string]*bot // custom bots by webhook token
	sends         int             // send requests received, answered or not
	now           func() time.Time
	cb            callbacks    // card callbacks and card update limits (callback.go)
	urg           urgents      // chat members, quotas and buzzes (urgent.go)
	lost          lostRoots    // answers to replies to lost roots (lostroot.go)
	ment          mentionRules // stricter answers to mentions (mentions.go)
	tok           tokenFaults  // answers to token requests instead of a token (token.go)

	// strictPostText refuses post text nodes without text (parse.go).
	strictPostText bool
	size           SizeRule // how messages are counted against the size limits (size.go)
	reusedUUID     *Fault   // im/v1's answer to a reused uuid; nil answers its message (imv1.go)
	reusedUUIDs    int
	loseAnswers    int // accepted sends whose answer is dropped (imv1.go)
}

// Start runs a stand-in on addr ("127.0.0.1:0" picks a free port).
func Start(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		URL:          "http://" + ln.Addr().String(),
		ln:           ln,
		appID:        AppID,
		secret:       AppSecret,
		tokenTTL:     2 * time.Hour,
		tokens:       map[string]time.Time{},
		byID:         map[string]*Message{},
		uuids:        map[string]*Message{},
		users:        map[string]string{},
		names:        map[string]string{},
		notMember:    map[string]bool{},
		chatBuckets:  map[string]*counter{},
		botPerSecond: 5,
		botPerMinute: 100,
		targetFaults: map[string]Fault{},
		bots:         map[string]*bot{},
		now:          time.Now,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /open-apis/auth/v3/tenant_access_token/internal", s.token)
	mux.HandleFunc("POST /open-apis/auth/v3/tenant_access_token/internal/", s.token)
	mux.HandleFunc("POST /open-apis/message/v4/send", s.sendV4)
	mux.HandleFunc("POST /open-apis/message/v4/send/", s.sendV4)
	mux.HandleFunc("POST /open-apis/im/v1/messages", s.createIM)
	mux.HandleFunc("POST /open-apis/im/v1/messages/{id}/reply", s.replyIM)
	mux.HandleFunc("PATCH /open-apis/im/v1/messages/{id}", s.patchIM)
	mux.HandleFunc("POST /open-apis/contact/v3/users/batch_get_id", s.batchGetID)
	mux.HandleFunc("GET /open-apis/contact/v3/users/{id}", s.user)
	mux.HandleFunc("POST /open-apis/bot/v2/hook/{token}", s.sendBot)
	s.routeCallbacks(mux)
	s.routeUrgent(mux)
	mux.HandleFunc("GET /_feishutest/messages", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Messages())
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed on Close
	return s, nil
}

// Handler answers the stand-in's calls without its socket: a test whose
// client runs in a synctest bubble calls it in memory, since a goroutine
// waiting on real network I/O stops the bubble's clock.
func (s *Server) Handler() http.Handler { return s.srv.Handler }

// Close stops the server and its long connections.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.DropConnections() // hijacked, so the server's Close leaves them open
	return err
}

// SetCredentials changes the app's ID and secret.
func (s *Server) SetCredentials(appID, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appID, s.secret = appID, secret
}

// SetTokenTTL sets the lifetime of tokens issued from now on.
func (s *Server) SetTokenTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenTTL = d
}

// ExpireTokens makes every issued token invalid at once, as if they had
// expired.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.tokens {
		s.tokens[t] = time.Time{}
	}
	s.current = ""
}

// TokenRequests counts calls to the token endpoint.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenRequests
}

// FailLookups makes every contacts lookup answer f; nil ends it.
func (s *Server) FailLookups(f *Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookupFault = f
}

// Lookups counts contacts lookup calls.
func (s *Server) Lookups() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookups
}

// AddUser makes an email known to the contacts lookup.
func (s *Server) AddUser(email, openID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[strings.ToLower(email)] = openID
}

// RemoveBot takes the bot out of a chat: sends there fail as Feishu's do.
func (s *Server) RemoveBot(chatID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notMember[chatID] = true
}

// FailNext makes the next n sends answer f.
func (s *Server) FailNext(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, f)
	}
}

// FailEvery makes every nth send from now on answer f; 0 stops it.
func (s *Server) FailEvery(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.every, s.everyFault, s.everyCount = n, f, 0
}

// FailTarget makes every send to one chat or user (by its ID) answer f,
// until ClearTarget.
func (s *Server) FailTarget(id string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.targetFaults[id] = f
}

// ClearTarget ends FailTarget's faults for id.
func (s *Server) ClearTarget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.targetFaults, id)
}

// SetLatency delays every answer to a send.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetChatRateLimit refuses sends to one chat or user beyond perSecond, with
// the message system's business code (230020 on im/v1, 11233 on v4). 0
// turns it off.
//
// Feishu does not document how it counts "5 per second": the stand-in
// counts as SetCounting says, by default a sliding window (at most
// perSecond sends in any second).
func (s *Server) SetChatRateLimit(perSecond int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chatLimit = perSecond
	clear(s.chatBuckets)
}

// SetAppRateLimit refuses sends beyond perSecond for the whole app the way
// Feishu's gateway does: HTTP 429, code 99991400, and the headers
// x-ogw-ratelimit-limit and x-ogw-ratelimit-reset (whole seconds until the
// quota recovers). It counts as SetCounting says. 0 turns it off.
func (s *Server) SetAppRateLimit(perSecond int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appPerSecond = perSecond
	s.appLimit = s.newCounter(perSecond, time.Second)
}

// SetAppMinuteRateLimit refuses sends beyond perMinute for the whole app,
// as SetAppRateLimit does beyond its per-second limit. 0 turns it off.
func (s *Server) SetAppMinuteRateLimit(perMinute int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appPerMinute = perMinute
	s.appMinute = s.newCounter(perMinute, time.Minute)
}

// Sends counts send requests received, including those still waiting for
// their answer.
func (s *Server) Sends() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sends
}

// Refused counts sends refused by a rate limit, per chat and per app.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusedChat + s.refusedApp
}

// RefusedByApp counts sends refused by the per-app limit.
func (s *Server) RefusedByApp() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusedApp
}

// Recall withdraws a message, as its sender can in the Feishu client.
func (s *Server) Recall(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.byID[id]; m != nil {
		m.Recalled = true
	}
}

// Delete deletes a message.
func (s *Server) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.byID[id]; m != nil {
		m.Deleted = true
	}
}

// Messages returns copies of the accepted messages, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	for i, m := range s.messages {
		out[i] = *m
	}
	return out
}

var (
	textMention = regexp.MustCompile(`<at user_id="([^"]*)">`)
	cardMention = regexp.MustCompile(`<at id=([^ >]*)>`)
)

// Mentions lists whom the message mentions, as Feishu reads its markup:
// <at user_id="…"> in text and posts (whose at nodes Text shows that way),
// <at id=…> in card markdown. "all" is @all.
func (m Message) Mentions() []string {
	re := textMention
	if m.Type == "interactive" {
		re = cardMention
	}
	var ids []string
	for _, match := range re.FindAllStringSubmatch(m.Text, -1) {
		ids = append(ids, match[1])
	}
	return ids
}

// Message returns a copy of the message with that ID.
func (s *Server) Message(id string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.byID[id]
	if !ok {
		return Message{}, false
	}
	return *m, true
}

func newID(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// answer is Feishu's envelope.
type answer struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
	Data any    `json:"data,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Tt-Logid", newID("log"))
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, answer{Code: code, Msg: msg, Data: struct{}{}})
}

// New starts a stand-in on a free loopback port for the duration of a test.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("start feishu stand-in: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
