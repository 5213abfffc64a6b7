package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// EventType is the one callback handled: card.action.trigger, schema 2.0.
// The older card.action.trigger_v1 has another body and signature and is
// not supported.
const EventType = "card.action.trigger"

// Callback is one card.action.trigger callback (schema 2.0), decoded.
type Callback struct {
	EventID   string          // header.event_id: Feishu may deliver a click twice; the caller dedupes
	AppID     string          // header.app_id
	Operator  Operator        // open_id always; user_id/union_id when scopes allow
	Value     json.RawMessage // action.value: the object the service put on the button
	Tag       string          // action.tag
	MessageID string          // context.open_message_id
	ChatID    string          // context.open_chat_id
	Token     string          // event.token: the delayed-update token
	Created   time.Time       // header.create_time (microseconds in the body)
}

// Operator is who clicked.
type Operator struct{ OpenID, UserID, UnionID string }

// Answer is what the clicker sees: a toast, and the card replaced at once
// when Card is set.
type Answer struct {
	Toast *Toast          // nil: no toast
	Card  json.RawMessage // nil: the card is unchanged; else the card JSON, sent as {"type":"raw","data":<card>}
}

// Toast is the short message shown to the clicker.
type Toast struct {
	Type    string            // success, info, warning or error
	Content string            // shown when no I18n entry fits the client's language
	I18n    map[string]string // by locale: zh_cn, en_us
}

// Toast types.
const (
	ToastSuccess = "success"
	ToastInfo    = "info"
	ToastWarning = "warning"
	ToastError   = "error"
)

// Handler acts on one callback. It must answer within the time left in ctx
// (Feishu allows 3 s in all, and never re-delivers a click it gave up on).
type Handler interface {
	Callback(ctx context.Context, cb Callback) Answer
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, cb Callback) Answer

// Callback calls f.
func (f HandlerFunc) Callback(ctx context.Context, cb Callback) Answer { return f(ctx, cb) }

// Refusal is told of a callback refused before its action is known (bad
// signature, token, stale, malformed), with the reason; the caller counts
// it as action="unknown", result="refused". It may be nil.
type Refusal func(reason string)

func (r Refusal) tell(reason string) {
	if r != nil {
		r(reason)
	}
}

// handlerBudget is how long a handler is given from the callback's arrival:
// Feishu gives up after 3 s, and the answer still has to travel back.
const handlerBudget = 2500 * time.Millisecond

// envelope is the callback body as Feishu sends it on both transports.
type envelope struct {
	Schema string `json:"schema"`
	Header struct {
		EventID    string  `json:"event_id"`
		Token      string  `json:"token"`
		CreateTime flexInt `json:"create_time"`
		EventType  string  `json:"event_type"`
		AppID      string  `json:"app_id"`
		TenantKey  string  `json:"tenant_key"`
	} `json:"header"`
	Event *struct {
		Operator struct {
			OpenID  string `json:"open_id"`
			UserID  string `json:"user_id"`
			UnionID string `json:"union_id"`
		} `json:"operator"`
		Token  string `json:"token"`
		Action *struct {
			Value json.RawMessage `json:"value"`
			Tag   string          `json:"tag"`
		} `json:"action"`
		Context struct {
			OpenMessageID string `json:"open_message_id"`
			OpenChatID    string `json:"open_chat_id"`
		} `json:"context"`
	} `json:"event"`
}

// flexInt reads an integer sent as a JSON string (as Feishu does) or a
// number.
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(b, `"`)
	if len(b) == 0 || string(b) == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %q", b)
	}
	*n = flexInt(v)
	return nil
}

// decodeCallback reads a card.action.trigger body. It returns the
// Verification Token the body carries (header.token) beside the Callback,
// for the transport to check.
func decodeCallback(body []byte) (Callback, string, error) {
	var e envelope
	if err := json.Unmarshal(body, &e); err != nil {
		return Callback{}, "", fmt.Errorf("decode callback: %w", err)
	}
	h := e.Header
	switch {
	case e.Schema != "2.0":
		return Callback{}, h.Token, fmt.Errorf("decode callback: schema %q is not 2.0", e.Schema)
	case h.EventType != EventType:
		return Callback{}, h.Token, fmt.Errorf("decode callback: event_type %q is not %s", h.EventType, EventType)
	case h.EventID == "":
		return Callback{}, h.Token, errors.New("decode callback: no header.event_id")
	case e.Event == nil || e.Event.Action == nil:
		return Callback{}, h.Token, errors.New("decode callback: no event.action")
	case e.Event.Operator.OpenID == "":
		return Callback{}, h.Token, errors.New("decode callback: no event.operator.open_id")
	}
	ev := e.Event
	value := bytes.TrimSpace(ev.Action.Value)
	if len(value) > 0 && value[0] != '{' && string(value) != "null" {
		// Feishu documents value as an object; anything else was not put
		// there by this service.
		return Callback{}, h.Token, errors.New("decode callback: event.action.value is not an object")
	}
	cb := Callback{
		EventID:   h.EventID,
		AppID:     h.AppID,
		Operator:  Operator{OpenID: ev.Operator.OpenID, UserID: ev.Operator.UserID, UnionID: ev.Operator.UnionID},
		Tag:       ev.Action.Tag,
		MessageID: ev.Context.OpenMessageID,
		ChatID:    ev.Context.OpenChatID,
		Token:     ev.Token,
	}
	if len(value) > 0 && string(value) != "null" {
		cb.Value = append(json.RawMessage{}, value...)
	}
	if h.CreateTime > 0 {
		cb.Created = time.UnixMicro(int64(h.CreateTime))
	}
	return cb, h.Token, nil
}

// answerBody is Answer as Feishu reads it.
type answerBody struct {
	Toast *toastBody `json:"toast,omitempty"`
	Card  *cardBody  `json:"card,omitempty"`
}

type toastBody struct {
	Type    string            `json:"type"`
	Content string            `json:"content,omitempty"`
	I18n    map[string]string `json:"i18n,omitempty"`
}

type cardBody struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// encodeAnswer writes a as the answer body; Answer{} is {}, no change.
func encodeAnswer(a Answer) ([]byte, error) {
	var b answerBody
	if a.Toast != nil {
		b.Toast = &toastBody{Type: a.Toast.Type, Content: a.Toast.Content, I18n: a.Toast.I18n}
	}
	if a.Card != nil {
		if !json.Valid(a.Card) {
			return nil, errors.New("encode answer: card is not JSON")
		}
		b.Card = &cardBody{Type: "raw", Data: a.Card}
	}
	out, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode answer: %w", err)
	}
	return out, nil
}

// call runs h on cb, turning a panic into an error so that one bad click
// cannot take the process down.
func call(ctx context.Context, h Handler, cb Callback) (a Answer, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return h.Callback(ctx, cb), nil
}
