package app

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mallhive/mallhive/internal/gateway"
	"github.com/mallhive/mallhive/internal/platform/config"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

// Config is a process's whole configuration: its own settings and each
// service's, every one a flag that may also be set as MALLHIVE_<FLAG>.
type Config struct {
	HTTPAddr       string
	DataDir        string
	Services       string
	DatabaseURL    string
	NATSURL        string
	NATSNamespace  string
	RedisURL       string
	PublicURL      string
	Seed           bool
	SeedProducts   int
	LogLevel       string
	TrustedProxies string
	DrainTimeout   time.Duration

	Gateway gateway.Config
	svcs    serviceConfigs
}

// RegisterFlags registers the process flags and every service's flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.HTTPAddr, "http-addr", ":8080", "address to serve HTTP (REST, RPC, metrics) on")
	fs.StringVar(&c.DataDir, "data-dir", "./mallhive-data", "directory for SQLite files, the embedded event store, keys and blobs")
	fs.StringVar(&c.Services, "services", "all", "comma-separated services to run: all, or some of "+strings.Join(AllServices, ","))
	fs.StringVar(&c.DatabaseURL, "database-url", "", "PostgreSQL URL (schema per service); empty: SQLite files in the data dir")
	fs.StringVar(&c.NATSURL, "nats-url", "", "NATS JetStream URL; empty: an embedded server in the data dir")
	fs.StringVar(&c.NATSNamespace, "nats-namespace", "mallhive", "prefix of every event subject and stream, so marketplaces can share a NATS cluster")
	fs.StringVar(&c.RedisURL, "redis-url", "", "Redis URL for carts; empty: the cart service's SQL store")
	fs.StringVar(&c.PublicURL, "public-url", "", "externally visible base URL (token issuer, links); default http://localhost:<port>")
	fs.BoolVar(&c.Seed, "seed", true, "create demo data on first start (embedded shape only)")
	fs.IntVar(&c.SeedProducts, "seed-products", 2000, "how many demo products the seed creates")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", "127.0.0.0/8,::1/128", "CIDRs whose X-Forwarded-For is believed")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 20*time.Second, "how long a graceful shutdown waits for in-flight requests")
	c.Gateway.RegisterFlags(fs)
	c.svcs.registerFlags(fs)
}

// Validate checks the process settings and each service's.
func (c *Config) Validate() error {
	var errs []error
	if _, err := c.ServiceList(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.trustedProxies(); err != nil {
		errs = append(errs, err)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("log-level: %w", err))
	}
	if c.SeedProducts < 1 || c.SeedProducts > 100_000 {
		errs = append(errs, errors.New("seed-products must be between 1 and 100000"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data-dir must not be empty"))
	}
	errs = append(errs, c.svcs.validate()...)
	return errors.Join(errs...)
}

// ServiceList expands --services.
func (c *Config) ServiceList() ([]string, error) {
	var out []string
	for _, s := range strings.Split(c.Services, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
		case s == "all":
			out = append(out, AllServices...)
		case slices.Contains(AllServices, s):
			out = append(out, s)
		default:
			return nil, fmt.Errorf("services: unknown service %q (known: all, %s)", s, strings.Join(AllServices, ", "))
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil, errors.New("services: none selected")
	}
	return out, nil
}

func (c *Config) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(c.TrustedProxies, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("trusted-proxies: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Embedded reports whether the process uses the zero-setup adapters.
func (c *Config) Embedded() bool { return c.DatabaseURL == "" && c.NATSURL == "" }

// serviceURL returns MALLHIVE_<SERVICE>_URL, where a process finds a
// service it does not run.
func serviceURL(getenv func(string) string, service string) string {
	return strings.TrimRight(getenv("MALLHIVE_"+strings.ToUpper(service)+"_URL"), "/")
}

// databaseConfig returns where a service keeps its data: a per-service URL
// (MALLHIVE_<SERVICE>_DATABASE_URL) wins over the shared one.
func (c *Config) databaseConfig(getenv func(string) string, service string) sqldb.Config {
	url := getenv("MALLHIVE_" + strings.ToUpper(service) + "_DATABASE_URL")
	if url == "" {
		url = c.DatabaseURL
	}
	return sqldb.Config{URL: url, DataDir: c.DataDir, Service: service}
}

// LogValue lists the configuration for the start-up log, secrets masked.
func (c *Config) LogValue() slog.Value {
	abs, _ := filepath.Abs(c.DataDir)
	return slog.GroupValue(
		slog.String("http_addr", c.HTTPAddr), slog.String("data_dir", abs), slog.String("services", c.Services),
		slog.String("database_url", sqldb.Redacted(c.DatabaseURL)), slog.String("nats_url", c.NATSURL),
		slog.String("redis_url", config.Masked(c.RedisURL)), slog.String("public_url", c.PublicURL),
		slog.Bool("seed", c.Seed),
	)
}
