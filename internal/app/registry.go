package app

import (
	"context"
	"errors"
	"flag"

	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/svc"
)

// AllServices are the services a process can run, in start order (a
// service's dependencies first). "gateway" is the edge: the route table's
// reverse proxies, rate limiting, the landing page and the API docs.
var AllServices = []string{"gateway"}

// serviceConfigs holds each service's configuration.
type serviceConfigs struct{}

func (s *serviceConfigs) registerFlags(fs *flag.FlagSet) {}

func (s *serviceConfigs) validate() []error { return nil }

// newService builds a service by name.
func newService(ctx context.Context, name string, env *svc.Env, cfg *Config) (svc.Service, error) {
	switch name {
	}
	return nil, errors.New("unknown service " + name)
}

// migrationsOf returns the migration sets of a service that has a database.
func migrationsOf(name string) ([]sqldb.Migrations, bool) {
	switch name {
	}
	return nil, false
}
