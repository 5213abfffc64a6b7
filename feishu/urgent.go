package feishu

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// Urgent kinds, as routing.yaml names them.
const (
	UrgentApp   = "app"
	UrgentSMS   = "sms"
	UrgentPhone = "phone"
)

// Endpoint names of the urgent calls, as used in errors and the requests
// metric.
const (
	EndpointUrgentApp   = "im/v1/messages/urgent_app"
	EndpointUrgentSMS   = "im/v1/messages/urgent_sms"
	EndpointUrgentPhone = "im/v1/messages/urgent_phone"
)

// endpointUrgent names a buzz whose kind is unknown, in its RequestError.
const endpointUrgent = "im/v1/messages/urgent"

// MaxUrgentUsers is the most people one urgent call buzzes; Urgent splits
// longer lists.
const MaxUrgentUsers = 200

var urgentEndpoints = map[string]string{
	UrgentApp:   EndpointUrgentApp,
	UrgentSMS:   EndpointUrgentSMS,
	UrgentPhone: EndpointUrgentPhone,
}

// Buzzer buzzes people on a message the app sent (im/v1 only).
type Buzzer interface {
	// Urgent buzzes openIDs (1..200) on messageID by kind; it returns the
	// open_ids Feishu refused to buzz (not in the chat, outside the app's
	// availability...), which are not an error.
	Urgent(ctx context.Context, messageID, kind string, openIDs []string) (invalid []string, err error)
}

type urgentRequest struct {
	UserIDList []string `json:"user_id_list"`
}

type urgentAnswer struct {
	Invalid []string `json:"invalid_user_id_list"`
}

// Urgent buzzes openIDs on messageID, MaxUrgentUsers a call, each call
// bound by the app's limits only and retried like a send. A repeated
// open_id is buzzed once: SMS and phone buzzes cost the tenant.
//
// On an error, the calls before the failed one have buzzed their people,
// and invalid holds those they refused.
func (s imv1) Urgent(ctx context.Context, messageID, kind string, openIDs []string) ([]string, error) {
	endpoint, ok := urgentEndpoints[kind]
	switch {
	case !ok:
		return nil, badRequest(endpointUrgent, "unknown urgent kind %q", kind)
	case messageID == "":
		return nil, badRequest(endpoint, "no message_id")
	case len(openIDs) == 0:
		return nil, badRequest(endpoint, "no one to buzz")
	}
	ids := make([]string, 0, len(openIDs))
	seen := make(map[string]bool, len(openIDs))
	for _, id := range openIDs {
		// Only open_ids are asked for (user_id_type=open_id): anything else
		// would come back invalid, or as a field validation error for the
		// whole list.
		if len(id) <= len("ou_") || !strings.HasPrefix(id, "ou_") {
			return nil, badRequest(endpoint, "%q is not an open_id", id)
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	path := "/open-apis/im/v1/messages/" + url.PathEscape(messageID) + "/urgent_" + kind + "?user_id_type=open_id"
	var invalid []string
	for len(ids) > 0 {
		batch := ids[:min(len(ids), MaxUrgentUsers)]
		ids = ids[len(batch):]
		var a urgentAnswer
		err := s.c.retry(ctx, endpoint, Target{}, func(tok string) error {
			a = urgentAnswer{}
			err := s.c.call(ctx, endpoint, http.MethodPatch, path, tok, urgentRequest{UserIDList: batch}, &a)
			if allInvalid(err) {
				a.Invalid = batch
				return nil
			}
			return err
		})
		if err != nil {
			return invalid, err
		}
		invalid = append(invalid, a.Invalid...)
	}
	return invalid, nil
}

// allInvalid reports whether err is Feishu refusing an urgent call because
// no one in its list could be buzzed. Feishu documents that answer as
// 230001 but not its msg; 230001 is also its answer to a message_id that is
// not valid, which names message_id in its ext. Every other part of the
// request is fixed here, so any other 230001 is taken to be about the
// list. That is a guess on thin facts, on the side the caller can act on:
// the people come back as refused, which escalation reports, rather than
// as an error that hides who was not reached.
func allInvalid(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == 230001 && !strings.Contains(e.Msg, "message_id")
}

// urgentEndpoint reports whether endpoint is one of the urgent calls.
func urgentEndpoint(endpoint string) bool {
	switch endpoint {
	case EndpointUrgentApp, EndpointUrgentSMS, EndpointUrgentPhone:
		return true
	}
	return false
}

var _ Buzzer = imv1{}
