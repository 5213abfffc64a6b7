// Package freeport finds free loopback ports for the processes that tests
// start: Redis, Alertmanager and its cluster listener.
package freeport

import "net"

// Get returns a loopback TCP port that was free a moment ago. Another
// process may take it before it is used, so callers that bind it retry.
func Get() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
