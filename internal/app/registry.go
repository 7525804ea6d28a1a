package app

import (
	"context"
	"errors"
	"flag"

	"github.com/mallhive/mallhive/internal/auth"
	"github.com/mallhive/mallhive/internal/cart"
	"github.com/mallhive/mallhive/internal/catalog"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/svc"
	"github.com/mallhive/mallhive/internal/search"
)

// AllServices are the services a process can run, in start order (a
// service's dependencies first). "gateway" is the edge: the route table's
// reverse proxies, rate limiting, the landing page and the API docs.
var AllServices = []string{"auth", "catalog", "cart", "search", "gateway"}

// serviceConfigs holds each service's configuration.
type serviceConfigs struct {
	Auth    auth.Config
	Catalog catalog.Config
	Cart    cart.Config
	Search  search.Config
}

func (s *serviceConfigs) registerFlags(fs *flag.FlagSet) {
	s.Auth.RegisterFlags(fs)
	s.Catalog.RegisterFlags(fs)
	s.Cart.RegisterFlags(fs)
	s.Search.RegisterFlags(fs)
}

func (s *serviceConfigs) validate() []error {
	return []error{s.Auth.Validate(), s.Catalog.Validate(), s.Cart.Validate(), s.Search.Validate()}
}

// newService builds a service by name.
func newService(ctx context.Context, name string, env *svc.Env, cfg *Config) (svc.Service, error) {
	switch name {
	case "auth":
		return auth.New(ctx, env, cfg.svcs.Auth)
	case "catalog":
		return catalog.New(ctx, env, cfg.svcs.Catalog)
	case "cart":
		return cart.New(ctx, env, cfg.svcs.Cart)
	case "search":
		return search.New(ctx, env, cfg.svcs.Search)
	}
	return nil, errors.New("unknown service " + name)
}

// migrationsOf returns the migration sets of a service that has a database.
func migrationsOf(name string) ([]sqldb.Migrations, bool) {
	switch name {
	case "auth":
		return []sqldb.Migrations{events.Migrations, auth.Migrations}, true
	case "catalog":
		return []sqldb.Migrations{events.Migrations, catalog.Migrations}, true
	case "cart":
		return []sqldb.Migrations{events.Migrations, cart.Migrations}, true
	}
	return nil, false
}
