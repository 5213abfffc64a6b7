package feishu

import (
	"context"
	"net/http"
	"net/url"
)

// EndpointUser is the contacts API's user, as named in errors and metrics.
const EndpointUser = "contact/v3/users"

// UserName asks Feishu for the name of the user with openID. It needs the
// app's contact:user.base:readonly scope; without it Feishu refuses, and
// the caller names the person by open_id instead.
func (c *Client) UserName(ctx context.Context, openID string) (string, error) {
	var data struct {
		User struct {
			Name string `json:"name"`
		} `json:"user"`
	}
	path := "/open-apis/contact/v3/users/" + url.PathEscape(openID) + "?user_id_type=open_id"
	err := c.retry(ctx, EndpointUser, Target{}, func(tok string) error {
		return c.call(ctx, EndpointUser, http.MethodGet, path, tok, nil, &data)
	})
	return data.User.Name, err
}
