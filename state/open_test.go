package state

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/redistest"
)

// state.redis as configured: a Redis that speaks only TLS, trusted through
// tls_config's CA file, with its password from password_file.
func TestOpenRedisWithTLSAndPassword(t *testing.T) {
	srv, ca := redistest.StartSecure(t, "redis-pw-123")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pw"), []byte("redis-pw-123\n"), 0o600))
	cfg := config.State{
		Backend: "redis", ChainTTL: model.Duration(time.Hour), DedupeWindow: model.Duration(time.Minute),
		Redis: config.Redis{
			Addresses: []string{srv.Addr}, PasswordFile: filepath.Join(dir, "pw"), KeyPrefix: "tls:",
			TLSConfig: &commoncfg.TLSConfig{CAFile: ca},
		},
	}
	s, err := Open(cfg, promslog.NewNopLogger())
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Ping(context.Background()))
	in := firing("c", "om_1", now())
	deliver(t, s, in, "n")
	require.Equal(t, Loaded{Incident: in, Delivered: true}, load(t, s, "c", "n"))

	// Without the password, or without trusting the CA, Redis is not usable.
	cfg.Redis.PasswordFile = ""
	s2, err := Open(cfg, promslog.NewNopLogger())
	require.NoError(t, err, "a Redis that does not answer yet is not fatal at start")
	defer s2.Close()
	require.Error(t, s2.Ping(context.Background()))
	cfg.Redis.PasswordFile, cfg.Redis.TLSConfig = filepath.Join(dir, "pw"), nil
	s3, err := Open(cfg, promslog.NewNopLogger())
	require.NoError(t, err)
	defer s3.Close()
	require.Error(t, s3.Ping(context.Background()))
}
