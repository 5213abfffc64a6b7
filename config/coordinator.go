package config

import (
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Coordinator loads routing.yaml and tells its subscribers, in the manner
// of Alertmanager's config.Coordinator: on start, on SIGHUP and on
// POST /-/reload. Subscribers are called in the order they subscribed, and
// the first that fails ends the reload: the ones before it applied the new
// configuration, so subscribe the fallible one (building the pipeline)
// first and those that cannot fail after it.
type Coordinator struct {
	file   string
	logger *slog.Logger

	mu          sync.Mutex
	config      *Config
	subscribers []func(*Config) error

	successful prometheus.Gauge
	lastOK     prometheus.Gauge
}

// NewCoordinator returns a coordinator of the configuration in file.
func NewCoordinator(file string, r prometheus.Registerer, logger *slog.Logger) *Coordinator {
	return &Coordinator{
		file:   file,
		logger: logger,
		successful: promauto.With(r).NewGauge(prometheus.GaugeOpts{
			Name: "alertmanager_feishu_config_last_reload_successful",
			Help: "Whether the last configuration load succeeded.",
		}),
		lastOK: promauto.With(r).NewGauge(prometheus.GaugeOpts{
			Name: "alertmanager_feishu_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully.",
		}),
	}
}

// Subscribe adds subscribers, told of every configuration loaded from now on.
func (c *Coordinator) Subscribe(ss ...func(*Config) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subscribers = append(c.subscribers, ss...)
}

// Config is the configuration loaded last; nil before the first load.
func (c *Coordinator) Config() *Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.config
}

// Reload reads the file and tells the subscribers. A file that does not
// load, or that a subscriber refuses, leaves the previous configuration in
// force, and the error says why.
func (c *Coordinator) Reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg, err := Load(c.file)
	if err == nil {
		err = c.notify(cfg)
	}
	if err != nil {
		c.successful.Set(0)
		c.logger.Error("loading configuration failed", "file", c.file, "err", err)
		return err
	}
	c.config = cfg
	c.successful.Set(1)
	c.lastOK.SetToCurrentTime()
	c.logger.Info("configuration loaded", "file", c.file)
	return nil
}

func (c *Coordinator) notify(cfg *Config) error {
	for _, s := range c.subscribers {
		if err := s(cfg); err != nil {
			return err
		}
	}
	return nil
}
