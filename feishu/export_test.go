package feishu

import "net/http"

// SetTransport makes c's calls through rt: in memory, for the tests that
// run in a synctest bubble or record the requests' bodies.
func SetTransport(c *Client, rt http.RoundTripper) { c.http.Transport = rt }
