package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/version"
)

const (
	// DefaultAlertmanagerTimeout bounds a call whose context has no
	// deadline; a callback's context always has one, well under this.
	DefaultAlertmanagerTimeout = 10 * time.Second
	// minAttempt is the least time one URL is given, so that the last URLs
	// are still worth trying when the deadline is near: Alertmanager
	// answers a silence in milliseconds, a TLS handshake away in tens.
	minAttempt = 500 * time.Millisecond
	// maxAnswerBytes is as much of an answer as is read: a silence ID, or
	// Alertmanager's one-line reason for refusing.
	maxAnswerBytes = 64 << 10
	// maxMessageRunes bounds Alertmanager's text in an error, which ends
	// up in a log line and a toast.
	maxMessageRunes = 256
)

// Silencer makes and expires silences in Alertmanager through its API v2,
// and asks it whether a group's alerts would still notify.
// It speaks plain HTTP with small structs: Alertmanager's generated client
// needs go-openapi and much of Alertmanager's module.
type Silencer struct {
	urls   []*url.URL
	client *http.Client
	logger *slog.Logger
}

// NewSilencer returns a Silencer that asks urls in order: the members of
// one Alertmanager HA pair or cluster, which gossip silences, so that the
// first to answer is enough.
func NewSilencer(urls []string, hc commoncfg.HTTPClientConfig, logger *slog.Logger) (*Silencer, error) {
	if len(urls) == 0 {
		return nil, errors.New("alertmanager: no url")
	}
	s := &Silencer{logger: logger}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			// url.Parse's error quotes the URL, credentials and all.
			return nil, fmt.Errorf("alertmanager url %q: invalid", redactURL(raw))
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("alertmanager url %q: not an absolute http(s) url", redactURL(raw))
		}
		s.urls = append(s.urls, u)
	}
	if err := hc.Validate(); err != nil {
		return nil, fmt.Errorf("alertmanager http_config: %w", err)
	}
	c, err := commoncfg.NewClientFromConfig(hc, "alertmanager",
		commoncfg.WithUserAgent(version.ComponentUserAgent("alertmanager-feishu")))
	if err != nil {
		return nil, fmt.Errorf("alertmanager http client: %w", err)
	}
	s.client = c
	return s, nil
}

// Silence is what a silence says; Alertmanager adds its ID and state.
type Silence struct {
	Matchers []Matcher // equalities
	// StartsAt is when it starts, now if zero; EndsAt when it ends.
	StartsAt, EndsAt time.Time
	// CreatedBy is the person who asked; Comment names the incident and
	// its card, so that whoever reads the silence in Alertmanager's UI can
	// find where it came from.
	CreatedBy, Comment string
}

// Matcher is an equality matcher: label Name has Value.
type Matcher struct{ Name, Value string }

// SilenceMatchers are the matchers that select one group's alerts: its
// group labels as equalities, or its common labels when it has none
// (group_by: []). Labels with empty values are left out: Alertmanager
// refuses a matcher set that matches the empty string only, and an empty
// label is one the alerts lack anyway. They are sorted by name, so that a
// silence of the same group reads the same every time.
func SilenceMatchers(groupLabels, commonLabels map[string]string) []Matcher {
	ms := equalities(groupLabels)
	if len(ms) == 0 {
		ms = equalities(commonLabels)
	}
	return ms
}

func equalities(labels map[string]string) []Matcher {
	ms := make([]Matcher, 0, len(labels))
	for name, value := range labels {
		if value != "" {
			ms = append(ms, Matcher{Name: name, Value: value})
		}
	}
	slices.SortFunc(ms, func(a, b Matcher) int { return strings.Compare(a.Name, b.Name) })
	return ms
}

// postableSilence is API v2's PostableSilence without an ID (which would
// update an existing silence).
type postableSilence struct {
	Matchers  []apiMatcher `json:"matchers"`
	StartsAt  time.Time    `json:"startsAt"`
	EndsAt    time.Time    `json:"endsAt"`
	CreatedBy string       `json:"createdBy"`
	Comment   string       `json:"comment"`
}

type apiMatcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	// IsEqual is sent although true is the default: false would be !=.
	IsEqual bool `json:"isEqual"`
}

// Create makes the silence and returns its ID.
//
// A request whose answer is lost (a timeout after Alertmanager got it) is
// tried on the next URL like one that never arrived, so an HA pair may then
// hold two identical silences of which the caller knows one; the other ends
// at the same time. Losing the click would be worse.
func (s *Silencer) Create(ctx context.Context, sl Silence) (string, error) {
	const op = "create silence"
	if sl.StartsAt.IsZero() {
		sl.StartsAt = time.Now()
	}
	p := postableSilence{
		Matchers:  make([]apiMatcher, len(sl.Matchers)),
		StartsAt:  sl.StartsAt.UTC(),
		EndsAt:    sl.EndsAt.UTC(),
		CreatedBy: sl.CreatedBy,
		Comment:   sl.Comment,
	}
	for i, m := range sl.Matchers {
		p.Matchers[i] = apiMatcher{Name: m.Name, Value: m.Value, IsEqual: true}
	}
	body, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	a, err := s.do(ctx, op, http.MethodPost, "api/v2/silences", nil, body, func(status int) bool { return status < 500 })
	if err != nil {
		return "", err
	}
	if a.status/100 != 2 {
		return "", a.refused(op)
	}
	var answer struct {
		SilenceID string `json:"silenceID"`
	}
	if err := json.Unmarshal(a.body, &answer); err != nil || answer.SilenceID == "" {
		return "", fmt.Errorf("%s: alertmanager %s answered %d without a silence id: %s", op, a.url, a.status, message(a.body))
	}
	s.logger.Debug("silence created", "alertmanager", a.url, "id", answer.SilenceID, "ends_at", p.EndsAt)
	return answer.SilenceID, nil
}

// Expire ends silence id now. An ID that no Alertmanager knows counts as
// expired, since what matters is that it silences nothing, and it does not:
// Alertmanager forgets a silence some time (--data.retention) after it
// ends, and all of them when it restarts without its data. A 404 from one
// member is not the last word, though: a member just restarted without its
// data knows no silence until gossip brings them, so the next URL is asked
// too, and only a 404 from every member that answered is taken as expired.
func (s *Silencer) Expire(ctx context.Context, id string) error {
	const op = "expire silence"
	if id == "" {
		return fmt.Errorf("%s: no silence id", op)
	}
	final := func(status int) bool { return status < 500 && status != http.StatusNotFound }
	a, err := s.do(ctx, op, http.MethodDelete, "api/v2/silence/"+url.PathEscape(id), nil, nil, final)
	var unreachable *UnreachableError
	switch {
	case errors.As(err, &unreachable) && unreachable.allNotFound():
		s.logger.Debug("silence unknown, so not active", "id", id)
		return nil
	case err != nil:
		return err
	case a.status/100 != 2:
		return a.refused(op)
	}
	s.logger.Debug("silence expired", "alertmanager", a.url, "id", id)
	return nil
}

// Muted reports whether Alertmanager mutes the alerts that matchers
// select: it holds some that are unresolved, and every one of them is
// silenced or inhibited. An Alertmanager that holds none (the group
// resolved, or the URL is another cluster's) mutes nothing, so that a
// wrong URL cannot hold every escalation. Any member answers for the
// cluster, as silences are gossiped; an answer that is not a list of
// alerts is an error, never a "no".
func (s *Silencer) Muted(ctx context.Context, matchers []Matcher) (bool, error) {
	const op = "list alerts"
	q := url.Values{}
	for _, m := range matchers {
		q.Add("filter", m.String())
	}
	// Every unresolved alert of the group, muted or not: their states
	// tell which.
	for _, k := range []string{"active", "silenced", "inhibited", "unprocessed"} {
		q.Set(k, "true")
	}
	a, err := s.do(ctx, op, http.MethodGet, "api/v2/alerts", q, nil, func(status int) bool { return status < 500 })
	if err != nil {
		return false, err
	}
	if a.status/100 != 2 {
		return false, a.refused(op)
	}
	var alerts []struct {
		Status *struct {
			State string `json:"state"`
		} `json:"status"`
	}
	if err := json.Unmarshal(a.body, &alerts); err != nil {
		return false, fmt.Errorf("%s: alertmanager %s answered %d without a list of alerts: %s", op, a.url, a.status, message(a.body))
	}
	for _, al := range alerts {
		if al.Status == nil || al.Status.State != "suppressed" {
			return false, nil // active or unprocessed: it notifies, or will
		}
	}
	return len(alerts) > 0, nil
}

// String is m as Alertmanager's filters and amtool write it: name="value",
// the value escaped as Alertmanager's own matchers print theirs, and the
// name quoted only when it is not a classic label name, which only
// Alertmanager's UTF-8 matchers parse.
func (m Matcher) String() string {
	name := m.Name
	if !classicName(name) {
		name = `"` + matcherEscaper.Replace(name) + `"`
	}
	return name + `="` + matcherEscaper.Replace(m.Value) + `"`
}

var matcherEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

func classicName(s string) bool {
	for i, r := range s {
		letter := r == '_' || r == ':' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return s != ""
}

// attempt is one URL's answer, or why there was none.
type attempt struct {
	url    string // without credentials
	status int    // 0: no answer
	body   []byte
	err    error
}

func (a attempt) refused(op string) error {
	return &RefusedError{Op: op, URL: a.url, Status: a.status, Message: message(a.body)}
}

// do sends the request, with path and query on each URL in turn, until
// one gives an answer that final accepts, and returns it; if none does, it
// returns an *UnreachableError. A transport error or a 5xx always moves on.
//
// Each URL gets an equal share of the time left, and at least minAttempt,
// so that a URL that takes connections and never answers cannot eat a
// callback's whole budget; a URL that fails at once (a refused connection)
// leaves its share to the next ones.
func (s *Silencer) do(ctx context.Context, op, method, path string, query url.Values, body []byte, final func(status int) bool) (attempt, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultAlertmanagerTimeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	var tried []attempt
	for i, u := range s.urls {
		a := attempt{url: stripUserinfo(u)}
		if err := ctx.Err(); err != nil {
			a.err = fmt.Errorf("not tried: %w", context.Cause(ctx))
			tried = append(tried, a)
			continue
		}
		share := max(time.Until(deadline)/time.Duration(len(s.urls)-i), minAttempt)
		target := u.JoinPath(path)
		target.RawQuery = query.Encode()
		a.status, a.body, a.err = s.send(ctx, share, method, target, body)
		if a.err == nil && final(a.status) {
			return a, nil
		}
		tried = append(tried, a)
		if i < len(s.urls)-1 {
			s.logger.Warn("alertmanager failed, trying the next url", "op", op, "alertmanager", a.url, "err", a.cause())
		}
	}
	return attempt{}, &UnreachableError{Op: op, attempts: tried}
}

// send makes one request within timeout and reads the answer.
func (s *Silencer) send(ctx context.Context, timeout time.Duration, method string, u *url.URL, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("no answer within %v: %w", timeout.Round(time.Millisecond), context.DeadlineExceeded))
	defer cancel()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, context.Cause(ctx)
		}
		return 0, nil, transportError(err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBytes))
		resp.Body.Close()
	}()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return 0, nil, fmt.Errorf("reading the answer: %w", transportError(err))
	}
	return resp.StatusCode, b, nil
}

// RefusedError is Alertmanager refusing a request with a 4xx: a silence it
// finds invalid, or credentials it does not accept. Any member would say
// the same, so no other is asked.
type RefusedError struct {
	Op      string // what was refused: "create silence", "expire silence"
	URL     string // the Alertmanager that refused, without credentials
	Status  int
	Message string // Alertmanager's reason, one line, bounded
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s: alertmanager %s refused with status %d: %s", e.Op, e.URL, e.Status, e.Message)
}

// UnreachableError is no Alertmanager answering: each URL failed in
// transport, answered a 5xx, or was not tried before the deadline.
type UnreachableError struct {
	Op       string
	attempts []attempt
}

func (e *UnreachableError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: no alertmanager answered: ", e.Op)
	for i, a := range e.attempts {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(a.url + ": " + a.cause())
	}
	return b.String()
}

// Unwrap gives the causes, so that errors.Is(err,
// context.DeadlineExceeded) tells a deadline from dead members.
func (e *UnreachableError) Unwrap() []error {
	var errs []error
	for _, a := range e.attempts {
		if a.err != nil {
			errs = append(errs, a.err)
		}
	}
	return errs
}

// allNotFound reports whether every URL that answered said it knows no
// such silence, and one at least did.
func (e *UnreachableError) allNotFound() bool {
	answered := false
	for _, a := range e.attempts {
		if a.err == nil {
			if !a.notFound() {
				return false
			}
			answered = true
		}
	}
	return answered
}

// notFound reports whether the answer is "no such silence": a 404, or the
// 500 "silence not found" of Alertmanager before v0.26 (Debian's 0.25
// among them), whose handler missed its own wrapped error.
func (a attempt) notFound() bool {
	return a.status == http.StatusNotFound ||
		a.status == http.StatusInternalServerError && message(a.body) == "silence not found"
}

func (a attempt) cause() string {
	if a.err != nil {
		return a.err.Error()
	}
	return fmt.Sprintf("status %d: %s", a.status, message(a.body))
}

// message is Alertmanager's text in an answer, on one line and bounded.
// API v2 answers a refusal with a JSON string, a request its schema
// rejects with {"code":…,"message":…}, and its auth with plain text.
func message(body []byte) string {
	s := strings.TrimSpace(string(body))
	var str string
	var obj struct {
		Message string `json:"message"`
	}
	switch {
	case json.Unmarshal(body, &str) == nil:
		s = str
	case json.Unmarshal(body, &obj) == nil && obj.Message != "":
		s = obj.Message
	}
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "no reason given"
	}
	if utf8.RuneCountInString(s) > maxMessageRunes {
		s = string([]rune(s)[:maxMessageRunes-1]) + "…"
	}
	return s
}

// transportError drops the *url.Error's method and URL, which would
// repeat the URL with its credentials, and keeps what went wrong.
func transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func stripUserinfo(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// redactURL is stripUserinfo for a URL that may not parse: everything
// before the last @ of its authority goes.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return stripUserinfo(u)
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		rest, scheme = raw, ""
	}
	authority, path, _ := strings.Cut(rest, "/")
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		authority = authority[i+1:]
	}
	out := authority
	if path != "" {
		out += "/" + path
	}
	if scheme != "" {
		out = scheme + "://" + out
	}
	return out
}
