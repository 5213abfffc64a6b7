package actions

import (
	"encoding/json"
	"time"
)

// ClientConfig is the long connection's tuning as the server hands it out,
// at bootstrap and in pongs. Durations are in seconds.
type ClientConfig struct {
	ReconnectCount    int `json:"ReconnectCount"`    // -1: forever
	ReconnectInterval int `json:"ReconnectInterval"` // between attempts after the first
	ReconnectNonce    int `json:"ReconnectNonce"`    // the first attempt waits a random 0..this
	PingInterval      int `json:"PingInterval"`
}

// DefaultClientConfig is Feishu's SDK's, used until the server says
// otherwise.
var DefaultClientConfig = ClientConfig{ReconnectCount: -1, ReconnectInterval: 120, ReconnectNonce: 30, PingInterval: 120}

// merge applies the fields the server set. A zero (or absent) field keeps
// the one in force: a server that sends 0 must not make the client spin.
func (c ClientConfig) merge(n ClientConfig) ClientConfig {
	if n.ReconnectCount != 0 {
		c.ReconnectCount = n.ReconnectCount
	}
	if n.ReconnectInterval > 0 {
		c.ReconnectInterval = n.ReconnectInterval
	}
	if n.ReconnectNonce > 0 {
		c.ReconnectNonce = n.ReconnectNonce
	}
	if n.PingInterval > 0 {
		c.PingInterval = n.PingInterval
	}
	return c
}

func (c ClientConfig) ping() time.Duration { return time.Duration(c.PingInterval) * time.Second }
func (c ClientConfig) interval() time.Duration {
	return time.Duration(c.ReconnectInterval) * time.Second
}
func (c ClientConfig) nonce() time.Duration { return time.Duration(c.ReconnectNonce) * time.Second }

// parseClientConfig reads a pong's payload; ok is false when it holds none.
func parseClientConfig(b []byte) (ClientConfig, bool) {
	var c ClientConfig
	if len(b) == 0 || json.Unmarshal(b, &c) != nil {
		return c, false
	}
	return c, c != ClientConfig{}
}
