package feishu

import (
	"context"
	"net/http"
	"strings"
)

// EndpointContacts is the contacts lookup, as named in errors and metrics.
const EndpointContacts = "contact/v3/users/batch_get_id"

// MaxLookupEmails is the most emails one lookup call takes.
const MaxLookupEmails = 50

// LookupEmails asks Feishu for the open_ids of users by email, at most
// MaxLookupEmails per call. An email Feishu does not know, or the app may
// not see, is missing from the result. Results are matched by email, not
// by position: Feishu does not promise to keep entries it found nothing
// for.
func (c *Client) LookupEmails(ctx context.Context, emails []string) (map[string]string, error) {
	found := map[string]string{}
	for len(emails) > 0 {
		chunk := emails[:min(len(emails), MaxLookupEmails)]
		emails = emails[len(chunk):]
		var data struct {
			Users []struct {
				UserID string `json:"user_id"`
				Email  string `json:"email"`
			} `json:"user_list"`
		}
		err := c.retry(ctx, EndpointContacts, Target{}, func(tok string) error {
			return c.call(ctx, EndpointContacts, http.MethodPost, "/open-apis/contact/v3/users/batch_get_id?user_id_type=open_id",
				tok, map[string]any{"emails": chunk}, &data)
		})
		if err != nil {
			return found, err
		}
		asked := map[string]string{}
		for _, e := range chunk {
			asked[strings.ToLower(e)] = e
		}
		for _, u := range data.Users {
			if e, ok := asked[strings.ToLower(u.Email)]; ok && u.UserID != "" {
				found[e] = u.UserID
			}
		}
	}
	return found, nil
}
