// Package svc is the contract between a MallHive service and the process
// that runs it: the Service interface each service implements, and the Env
// of shared dependencies the process (internal/app) hands to each one.
package svc

import (
	"context"

	"connectrpc.com/connect"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

// Service is one MallHive service running in this process.
type Service interface {
	// Handler serves the service's external REST routes (full paths, e.g.
	// "POST /api/v1/auth/login"); the process mounts it under the prefixes
	// the gateway's route table gives the service, behind token verification.
	Handler() http.Handler
	// RPC returns the connect handlers to mount, keyed by path.
	RPC() map[string]http.Handler
	// Run runs background work (outbox relay, consumers, sweepers) until
	// ctx ends; it flushes what it must before returning.
	Run(ctx context.Context) error
	// Ready reports whether the service's own dependencies answer.
	Ready(ctx context.Context) error
	// Close releases what New opened.
	Close() error
}

// Env is what a process offers every service it runs.
type Env struct {
	Log *slog.Logger
	// DataDir holds SQLite files, the embedded JetStream store, keys, blobs.
	DataDir string
	// DB opens the service's own database (SQLite file or PostgreSQL schema).
	DB func(ctx context.Context, service string) (*sqldb.DB, error)
	// Bus is the JetStream connection shared by the process's services.
	Bus *events.Bus
	// Redis is set in the distributed shape (MALLHIVE_REDIS_URL); nil otherwise.
	Redis *redis.Client
	// Metrics is the process's Prometheus registry.
	Metrics prometheus.Registerer
	// RelayMetrics and ConsumerMetrics are registered once per process.
	RelayMetrics    *events.RelayMetrics
	ConsumerMetrics *events.ConsumerMetrics
	// Verifier checks access tokens against auth's JWKS.
	Verifier *authn.Verifier
	// ServiceURL is the base URL of a service's RPC and REST API: this
	// process's own listener when it runs the service, else its configured
	// MALLHIVE_<SERVICE>_URL. In-process calls still go through RPC clients.
	ServiceURL func(service string) string
	// RPCHandlerOptions build every connect handler (tracing, metrics,
	// error mapping, caller authentication); RPCClientOptions every client.
	RPCHandlerOptions []connect.HandlerOption
	RPCClientOptions  []connect.ClientOption
	// RPCClient is an HTTP client that speaks HTTP/2 without TLS (h2c) to
	// other services, with tracing and metrics.
	RPCClient *http.Client
	// PublicURL is the externally visible base URL (token issuer, links).
	PublicURL string
	// Embedded is true when the process runs the zero-setup shape (SQLite,
	// embedded JetStream, local files).
	Embedded bool
}

// With returns a copy of the Env whose logger names the service.
func (e *Env) With(service string) *Env {
	c := *e
	c.Log = e.Log.With("service", service)
	return &c
}
