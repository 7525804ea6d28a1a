// Package cart is MallHive's cart service. It has two halves:
//
//   - inventory (inventory*.go): stock per SKU, set by the owning seller,
//     and reservations held for orders through the InventoryService RPC.
//     Stock can never be oversold: a reservation is one conditional UPDATE
//     and a CHECK constraint backs it. Every change is written with its
//     ledger row and its stock.* events (outbox) in one transaction.
//   - carts (cart*.go): guest and user carts, priced from the catalog, kept
//     in Redis in the distributed shape and in SQL in the embedded one.
//
// The order.* consumer the architecture lists (releasing or committing
// reservations from order events) is not written yet: there is no order
// service to emit those events. Until then the order service's RPC calls
// and the expiry sweeper settle every reservation.
package cart

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/mallhive/mallhive/internal/gen/mallhive/catalog/v1/catalogv1connect"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/svc"
)

// Name is the service's name: its database, flag prefix and route owner.
const Name = "cart"

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations creates the cart service's tables.
var Migrations = sqldb.Embedded(Name, migrationsFS, "migrations")

// Config is the cart service's configuration.
type Config struct {
	// ReservationTTL is how long a reservation holds stock when the caller
	// does not say; MaxReservationTTL caps what callers ask for.
	ReservationTTL    time.Duration
	MaxReservationTTL time.Duration
	// SweepInterval is how often expired reservations and guest carts are
	// released.
	SweepInterval time.Duration
	// GuestCartTTL is how long a guest cart lives after its last write.
	GuestCartTTL time.Duration
	// LowThreshold is the low-stock threshold of a SKU whose seller sets none.
	LowThreshold int64
	// RedisPrefix starts every Redis key the service writes.
	RedisPrefix string
}

// DefaultConfig returns the defaults, the one place they live.
func DefaultConfig() Config {
	return Config{
		ReservationTTL:    15 * time.Minute,
		MaxReservationTTL: 2 * time.Hour,
		SweepInterval:     5 * time.Second,
		GuestCartTTL:      30 * 24 * time.Hour,
		LowThreshold:      5,
		RedisPrefix:       "mallhive:",
	}
}

// RegisterFlags registers the configuration's flags under the "cart." prefix.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.DurationVar(&c.ReservationTTL, "cart.reservation-ttl", d.ReservationTTL, "how long a stock reservation lasts when the caller does not say")
	fs.DurationVar(&c.MaxReservationTTL, "cart.max-reservation-ttl", d.MaxReservationTTL, "the longest a stock reservation may last")
	fs.DurationVar(&c.SweepInterval, "cart.sweep-interval", d.SweepInterval, "how often expired reservations and guest carts are swept")
	fs.DurationVar(&c.GuestCartTTL, "cart.guest-cart-ttl", d.GuestCartTTL, "how long a guest cart lives after its last change")
	fs.Int64Var(&c.LowThreshold, "cart.low-threshold", d.LowThreshold, "default low-stock threshold of a SKU")
	fs.StringVar(&c.RedisPrefix, "cart.redis-prefix", d.RedisPrefix, "prefix of the service's Redis keys")
}

// Validate reports the first bad setting.
func (c Config) Validate() error {
	switch {
	case c.ReservationTTL <= 0:
		return errors.New("cart.reservation-ttl must be positive")
	case c.MaxReservationTTL < c.ReservationTTL:
		return errors.New("cart.max-reservation-ttl must be at least cart.reservation-ttl")
	case c.SweepInterval <= 0:
		return errors.New("cart.sweep-interval must be positive")
	case c.GuestCartTTL < time.Second:
		return errors.New("cart.guest-cart-ttl must be at least 1s")
	case c.LowThreshold < 0 || c.LowThreshold > MaxOnHand:
		return fmt.Errorf("cart.low-threshold must be between 0 and %d", MaxOnHand)
	}
	return nil
}

// Service is the cart service.
type Service struct {
	cfg       Config
	log       *slog.Logger
	db        *sqldb.DB
	redis     *redis.Client
	relay     *events.Relay // nil without a bus
	inventory *Inventory
	carts     *carts
	rpcOpts   []connect.HandlerOption
}

var _ svc.Service = (*Service)(nil)

// Inventory is the service's inventory, for callers in the same process
// that measure it without the RPC (bench).
func (s *Service) Inventory() *Inventory { return s.inventory }

// New opens the service's database, migrates it and wires the stores: the
// cart store is Redis when env.Redis is set, SQL otherwise.
func New(ctx context.Context, env *svc.Env, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cart: %w", err)
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("service", Name)
	db, err := env.DB(ctx, Name)
	if err != nil {
		return nil, fmt.Errorf("cart: open database: %w", err)
	}
	if err := db.Migrate(ctx, events.Migrations, Migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("cart: %w", err)
	}
	results, err := reservationMetric(env.Metrics)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("cart: metrics: %w", err)
	}
	catalog := NewCatalog(catalogv1connect.NewCatalogServiceClient(env.RPCClient, env.ServiceURL("catalog"), env.RPCClientOptions...))
	inv := &Inventory{
		store:      newInventoryStore(db),
		catalog:    catalog,
		log:        log,
		now:        time.Now,
		defaultTTL: cfg.ReservationTTL,
		maxTTL:     cfg.MaxReservationTTL,
		defaultLow: cfg.LowThreshold,
		results:    results,
	}
	var store Store = NewSQLStore(db, cfg.GuestCartTTL)
	if env.Redis != nil {
		store = NewRedisStore(env.Redis, cfg.RedisPrefix, cfg.GuestCartTTL)
	}
	s := &Service{
		cfg:       cfg,
		log:       log,
		db:        db,
		redis:     env.Redis,
		inventory: inv,
		carts:     &carts{store: store, catalog: catalog, inventory: inv, now: time.Now},
		rpcOpts:   env.RPCHandlerOptions,
	}
	if env.Bus != nil {
		s.relay = events.NewRelay(Name, db, env.Bus, log, env.RelayMetrics)
	}
	log.Info("cart service ready", "db", db, "cart_store", fmt.Sprintf("%T", store),
		"reservation_ttl", cfg.ReservationTTL, "guest_cart_ttl", cfg.GuestCartTTL)
	return s, nil
}

// reservationMetric registers the reservation outcome counter, reusing one
// already registered (a process may build the service more than once in
// tests).
func reservationMetric(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mallhive_reservations_total",
		Help: "Stock reservations by outcome: reserved, insufficient, committed, released, expired.",
	}, []string{"result"})
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing, nil
			}
		}
		return nil, err
	}
	return c, nil
}

// Handler implements svc.Service: the REST routes of both halves.
func (s *Service) Handler() http.Handler { return s.routes() }

// Run publishes the outbox and sweeps expired reservations and guest carts
// until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if s.relay != nil {
		wg.Go(func() { s.relay.Run(ctx) })
	}
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
			s.sweep(ctx)
		}
	}
}

func (s *Service) sweep(ctx context.Context) {
	n, err := s.inventory.SweepExpired(ctx)
	if err != nil && ctx.Err() == nil {
		s.log.Warn("sweep reservations", "err", err)
	}
	if n > 0 {
		s.log.Info("expired reservations released", "count", n)
		if s.relay != nil {
			s.relay.Kick()
		}
	}
	if n, err := s.carts.store.Sweep(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("sweep guest carts", "err", err)
	} else if n > 0 {
		s.log.Info("expired guest carts deleted", "count", n)
	}
}

// Ready implements svc.Service: the database and, when used, Redis answer.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.db.Ping(ctx); err != nil {
		return fmt.Errorf("cart database: %w", err)
	}
	if s.redis != nil {
		if err := s.redis.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("cart redis: %w", err)
		}
	}
	return nil
}

// Close implements svc.Service: it closes the database New opened. The
// Redis client belongs to the process.
func (s *Service) Close() error { return s.db.Close() }
