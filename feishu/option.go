package feishu

import "net/http"

// Option changes how New builds a client.
type Option func(*Client)

// WithHTTPClient makes the client's calls through hc instead of one built
// from the configuration's HTTP settings. Tests use it to serve the calls
// in memory, so that the whole pipeline can run in a testing/synctest
// bubble, where a goroutine waiting on a real socket stops the clock.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.http = hc }
}
