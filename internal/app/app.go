// Package app assembles services into a process: it opens what they share
// (the event bus, Redis, token verification, RPC clients), builds the
// services chosen by --services, mounts their routes through the gateway's
// one route table, serves HTTP, and shuts everything down in order.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mallhive/mallhive/internal/auth"
	"github.com/mallhive/mallhive/internal/gateway"
	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/httpx"
	"github.com/mallhive/mallhive/internal/platform/rpc"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/svc"
	"github.com/mallhive/mallhive/internal/platform/telemetry"
	"github.com/mallhive/mallhive/internal/search"
)

// Version is set at build time (-ldflags "-X .../app.Version=...").
var Version = "dev"

// Process is a running MallHive process.
type Process struct {
	cfg      *Config
	log      *slog.Logger
	names    []string
	services map[string]svc.Service
	bus      *events.Bus
	redis    *redis.Client
	metrics  *telemetry.Metrics
	ln       net.Listener
	server   *http.Server
	// URL is the process's own base URL (http://127.0.0.1:<port>).
	URL string
}

// Start opens dependencies, builds the services and starts listening. The
// caller then calls Serve. getenv supplies MALLHIVE_<SERVICE>_URL and
// per-service database URLs.
func Start(ctx context.Context, cfg *Config, log *slog.Logger, getenv func(string) string) (p *Process, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	names, _ := cfg.ServiceList()
	p = &Process{cfg: cfg, log: log, names: names, services: map[string]svc.Service{}, metrics: telemetry.NewMetrics()}
	defer func() {
		if err != nil {
			p.close()
		}
	}()

	// Listen first: in-process RPC clients need this process's own address.
	p.ln, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	port := p.ln.Addr().(*net.TCPAddr).Port
	p.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	publicURL := strings.TrimRight(cfg.PublicURL, "/")
	if publicURL == "" {
		publicURL = fmt.Sprintf("http://localhost:%d", port)
	}

	p.bus, err = events.Open(ctx, events.Config{URL: cfg.NATSURL, DataDir: cfg.DataDir, Namespace: cfg.NATSNamespace}, log.With("component", "events"))
	if err != nil {
		return nil, err
	}
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("redis-url: %w", err)
		}
		p.redis = redis.NewClient(opts)
	}

	serviceURLOf := func(name string) string {
		if slices.Contains(names, name) {
			return p.URL
		}
		return serviceURL(getenv, name)
	}
	rpcClient := httpx.NewH2CClient(30 * time.Second)
	env := &svc.Env{
		Log:     log,
		DataDir: cfg.DataDir,
		DB: func(ctx context.Context, service string) (*sqldb.DB, error) {
			return sqldb.Open(ctx, cfg.databaseConfig(getenv, service))
		},
		Bus:             p.bus,
		Redis:           p.redis,
		Metrics:         p.metrics.Registry,
		RelayMetrics:    events.NewRelayMetrics(p.metrics.Registry),
		ConsumerMetrics: events.NewConsumerMetrics(p.metrics.Registry),
		ServiceURL:      serviceURLOf,
		RPCClient:       rpcClient,
		PublicURL:       publicURL,
		Embedded:        cfg.Embedded(),
	}
	if authURL := serviceURLOf("auth"); authURL != "" {
		env.Verifier = authn.NewVerifier(authn.VerifierConfig{
			JWKSURL:    authURL + "/.well-known/jwks.json",
			Issuer:     publicURL,
			Audience:   "mallhive",
			HTTPClient: &http.Client{Timeout: 5 * time.Second},
		})
	} else if len(names) > 1 || names[0] != "gateway" {
		return nil, errors.New("no auth service to verify tokens with: run it here or set MALLHIVE_AUTH_URL")
	}

	rpcMetrics := rpc.NewMetrics(p.metrics.Registry)
	env.RPCHandlerOptions = rpc.HandlerOptions(rpcMetrics, env.Verifier, log.With("component", "rpc"))
	env.RPCClientOptions = rpc.ClientOptions(rpcMetrics)

	for _, name := range names {
		if name == "gateway" {
			continue
		}
		s, err := newService(ctx, name, env.With(name), cfg)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		p.services[name] = s
	}
	handler, err := p.routes(env)
	if err != nil {
		return nil, err
	}
	p.server = httpx.NewServer(handler, log)
	return p, nil
}

// routes builds the process's one mux: the route table, RPC handlers,
// health, readiness and metrics, and (for a gateway) the pages.
func (p *Process) routes(env *svc.Env) (http.Handler, error) {
	mux := http.NewServeMux()
	isGateway := slices.Contains(p.names, "gateway")
	local := func(name string) http.Handler {
		s, ok := p.services[name]
		if !ok {
			return nil
		}
		h := telemetry.CaptureRoute(s.Handler())
		if env.Verifier != nil {
			h = env.Verifier.Middleware(h)
		}
		return h
	}
	gateway.Mount(mux, local, isGateway, env.ServiceURL)
	for _, s := range p.services {
		for path, h := range s.RPC() {
			mux.Handle(path, h)
		}
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", p.ready)
	mux.Handle("GET /metrics", p.metrics.Handler())
	if isGateway {
		pages, err := gateway.NewPages(p.names, Version)
		if err != nil {
			return nil, err
		}
		pages.Mount(mux)
	}
	trusted, _ := p.cfg.trustedProxies()
	var rl *gateway.RateLimiter
	if isGateway {
		rl = gateway.NewRateLimiter(p.cfg.Gateway.RateLimit, p.cfg.Gateway.RateBurst)
	}
	return httpx.Chain(telemetry.CaptureRoute(mux),
		p.metrics.Middleware,
		httpx.RequestID,
		httpx.PlainErrorsAsProblems,
		httpx.Recover(p.log),
		httpx.AccessLog(p.log.With("component", "http")),
		httpx.ClientIPs(trusted),
		rl.Middleware,
		httpx.MaxBody(32<<20),
	), nil
}

// ready answers 200 when every dependency of this process answers.
func (p *Process) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]error{"events": p.bus.Ping(ctx)}
	if p.redis != nil {
		checks["redis"] = p.redis.Ping(ctx).Err()
	}
	for name, s := range p.services {
		checks[name] = s.Ready(ctx)
	}
	status, body := http.StatusOK, map[string]string{}
	for name, err := range checks {
		body[name] = "ok"
		if err != nil {
			status, body[name] = http.StatusServiceUnavailable, err.Error()
		}
	}
	httpx.WriteJSON(w, status, map[string]any{"ready": status == http.StatusOK, "checks": body})
}

// Addr is the address the process listens on.
func (p *Process) Addr() net.Addr { return p.ln.Addr() }

// Services lists the services this process runs.
func (p *Process) Services() []string { return p.names }

// Service returns the running service called name, nil if this process
// does not run it (benchmarks reach a service's own API through it).
func (p *Process) Service(name string) svc.Service { return p.services[name] }

// Serve runs the services' background work and serves HTTP until ctx ends,
// then drains: stop accepting, finish in-flight requests, stop background
// work (relays flush their outboxes), close services and the bus. On the
// first start of an embedded marketplace it seeds demo data (progress and
// demo accounts go to console).
func (p *Process) Serve(ctx context.Context, getenv func(string) string, console io.Writer) error {
	defer p.close()
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for name, s := range p.services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(bg); err != nil && !errors.Is(err, context.Canceled) {
				p.log.Error("service stopped", "service", name, "err", err)
			}
		}()
	}
	p.log.Info("serving", "addr", p.ln.Addr().String(), "services", strings.Join(p.names, ","), "version", Version)
	p.seedOnFirstStart(bg, getenv, console)
	err := httpx.Serve(ctx, p.server, p.ln, p.cfg.DrainTimeout)
	p.log.Info("shutting down")
	stopBG()
	wg.Wait()
	return err
}

func (p *Process) close() {
	for _, name := range slices.Backward(p.names) {
		if s, ok := p.services[name]; ok {
			if err := s.Close(); err != nil {
				p.log.Warn("close", "service", name, "err", err)
			}
		}
	}
	if p.redis != nil {
		_ = p.redis.Close()
	}
	if p.bus != nil {
		p.bus.Close()
	}
	if p.ln != nil && p.server == nil {
		_ = p.ln.Close()
	}
}

// Migrate applies the migrations of the selected services and returns.
// (serve also migrates on start; this is for a deploy step that runs first.)
func Migrate(ctx context.Context, cfg *Config, log *slog.Logger, getenv func(string) string) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	names, _ := cfg.ServiceList()
	for _, name := range names {
		sets, ok := migrationsOf(name)
		if !ok {
			continue
		}
		db, err := sqldb.Open(ctx, cfg.databaseConfig(getenv, name))
		if err != nil {
			return err
		}
		err = db.Migrate(ctx, sets...)
		db.Close()
		if err != nil {
			return err
		}
		log.Info("migrated", "service", name)
	}
	return nil
}

// CreateAdmin creates an administrator account in the auth service's
// database (the process need not be running). The admin enrols two-factor
// sign-in at first login.
func CreateAdmin(ctx context.Context, cfg *Config, getenv func(string) string, email, password, name string) error {
	env := &svc.Env{
		Log:     slog.New(slog.DiscardHandler),
		DataDir: cfg.DataDir,
		DB: func(ctx context.Context, service string) (*sqldb.DB, error) {
			return sqldb.Open(ctx, cfg.databaseConfig(getenv, service))
		},
	}
	_, err := auth.CreateAdmin(ctx, env, cfg.svcs.Auth, email, password, name)
	return err
}

// Reindex rebuilds the search index of this data dir from the product and
// stock streams, showing progress on w. Run it with the server stopped.
func Reindex(ctx context.Context, cfg *Config, log *slog.Logger, w io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	bus, err := events.Open(ctx, events.Config{URL: cfg.NATSURL, DataDir: cfg.DataDir, Namespace: cfg.NATSNamespace}, log)
	if err != nil {
		return err
	}
	defer bus.Close()
	env := &svc.Env{Log: log, DataDir: cfg.DataDir, Bus: bus, ConsumerMetrics: events.NewConsumerMetrics(nil)}
	return search.Reindex(ctx, env, cfg.svcs.Search, w)
}

// CreateOAuthClient registers an OAuth 2.1 client app in the auth database
// and returns its id and (for a confidential client) its secret, shown once.
func CreateOAuthClient(ctx context.Context, cfg *Config, getenv func(string) string, reg auth.ClientRegistration) (id, secret string, err error) {
	db, err := sqldb.Open(ctx, cfg.databaseConfig(getenv, auth.ServiceName))
	if err != nil {
		return "", "", err
	}
	defer db.Close()
	if err := db.Migrate(ctx, events.Migrations, auth.Migrations); err != nil {
		return "", "", err
	}
	c, secret, err := auth.NewStore(db).RegisterClient(ctx, reg, time.Now())
	return c.ID, secret, err
}
