// Package redisconn opens the Redis client fintrans uses everywhere: a
// go-redis UniversalClient for a standalone server or a Redis Cluster, with
// AUTH and TLS taken from REDIS_URL, REDIS_PASSWORD(_FILE) and REDIS_CA_FILE.
package redisconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/fintrans/fintrans/shared/config"
)

// Open builds a client from the configuration. A URL with `?master_name=`
// gives a client that finds the primary through Sentinel (the URL's host and
// any `addr=` are the sentinels); one with `?addr=` seeds or
// REDIS_CLUSTER=true a cluster client; otherwise a standalone one.
func Open(cfg config.Config) (redis.UniversalClient, error) {
	if cfg.RedisURL == "" {
		return nil, errors.New("REDIS_URL is not set")
	}
	u, err := url.Parse(cfg.RedisURL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return nil, errors.New("REDIS_URL: not a redis:// or rediss:// URL")
	}
	var tlsCfg *tls.Config
	if u.Scheme == "rediss" {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.RedisCAFile != "" {
			pem, err := os.ReadFile(cfg.RedisCAFile)
			if err != nil {
				return nil, fmt.Errorf("REDIS_CA_FILE: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("REDIS_CA_FILE: %s holds no PEM certificate", cfg.RedisCAFile)
			}
			tlsCfg.RootCAs = pool
		}
	}
	if u.Query().Has("master_name") {
		// Sentinel: the URL's host and addr= are the sentinels, master_name
		// the monitored primary; go-redis follows its failovers.
		opts, err := redis.ParseFailoverURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %s", redact(err))
		}
		override(cfg, tlsCfg, &opts.Password, &opts.TLSConfig, &opts.PoolSize)
		return redis.NewFailoverClient(opts), nil
	}
	if u.Query().Has("addr") || cfg.RedisCluster {
		opts, err := redis.ParseClusterURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %s", redact(err))
		}
		override(cfg, tlsCfg, &opts.Password, &opts.TLSConfig, &opts.PoolSize)
		return NewClusterClient(opts), nil
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %s", redact(err))
	}
	override(cfg, tlsCfg, &opts.Password, &opts.TLSConfig, &opts.PoolSize)
	return redis.NewClient(opts), nil
}

// override applies what the environment adds to the URL's options: the
// password, the CA, the pool size.
func override(cfg config.Config, tlsCfg *tls.Config, password *string, tlsOpt **tls.Config, pool *int) {
	if cfg.RedisPassword != "" {
		*password = cfg.RedisPassword
	}
	if tlsCfg != nil {
		tlsCfg.ServerName = (*tlsOpt).ServerName
		*tlsOpt = tlsCfg
	}
	if cfg.RedisPoolSize > 0 {
		*pool = cfg.RedisPoolSize
	}
}

// redact keeps URL parse errors from echoing a password.
func redact(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// Describe names the Redis a client talks to, for logs, without credentials.
func Describe(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable REDIS_URL)"
	}
	u.User = nil
	return u.Redacted()
}
