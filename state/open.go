package state

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	commoncfg "github.com/prometheus/common/config"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

// Open opens the configured state backend. A Redis that does not answer
// yet is not fatal: the service runs, not ready, until it does.
func Open(cfg config.State, logger *slog.Logger) (Store, error) {
	opts := Options{
		ChainTTL:     time.Duration(cfg.ChainTTL),
		DedupeWindow: time.Duration(cfg.DedupeWindow),
	}
	if cfg.Backend != "redis" {
		return OpenFile(cfg.Path, opts, logger)
	}
	rc := cfg.Redis
	password, err := rc.Secret()
	if err != nil {
		return nil, err
	}
	var tlsConfig *tls.Config
	if rc.TLSConfig != nil {
		if tlsConfig, err = commoncfg.NewTLSConfig(rc.TLSConfig); err != nil {
			return nil, fmt.Errorf("state.redis.tls_config: %w", err)
		}
	}
	store, err := OpenRedis(RedisOptions{
		Addresses:  rc.Addresses,
		MasterName: rc.MasterName,
		Username:   rc.Username,
		Password:   password,
		DB:         rc.DB,
		KeyPrefix:  rc.KeyPrefix,
		TLS:        tlsConfig,
	}, opts, logger)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := store.Ping(ctx); err != nil {
		logger.Warn("redis does not answer yet; not ready until it does", "addresses", rc.Addresses, "err", err)
	} else {
		logger.Info("using redis state", "addresses", rc.Addresses, "key_prefix", rc.KeyPrefix)
	}
	return store, nil
}
