package feishu

import (
	"net/http"
	"time"
)

// SetTransport makes c's calls through rt: in memory, for the tests that
// run in a synctest bubble or record the requests' bodies.
func SetTransport(c *Client, rt http.RoundTripper) { c.http.Transport = rt }

// SetSharedRetry sets how long p counts its limits itself after the shared
// slots failed, before it tries them again.
func SetSharedRetry(p *Pacer, d time.Duration) { p.retry = d }
