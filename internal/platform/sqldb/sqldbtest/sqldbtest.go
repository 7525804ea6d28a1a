// Package sqldbtest runs one store test suite against every SQL engine:
// SQLite always, PostgreSQL when MALLHIVE_TEST_POSTGRES_URL is set. Each
// PostgreSQL run gets a fresh schema, dropped when the test ends.
package sqldbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

// EnvPostgres names the variable holding the test PostgreSQL URL.
const EnvPostgres = "MALLHIVE_TEST_POSTGRES_URL"

// Each runs fn as a subtest per engine with a freshly migrated database.
func Each(t *testing.T, service string, sets []sqldb.Migrations, fn func(t *testing.T, db *sqldb.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		fn(t, Open(t, sqldb.SQLite, service, sets))
	})
	t.Run("postgres", func(t *testing.T) {
		if os.Getenv(EnvPostgres) == "" {
			t.Skip(EnvPostgres + " not set")
		}
		fn(t, Open(t, sqldb.Postgres, service, sets))
	})
}

// Open returns a fresh, migrated database of the given dialect, removed
// when the test ends. For PostgreSQL it skips the test when no URL is set.
func Open(tb testing.TB, dialect sqldb.Dialect, service string, sets []sqldb.Migrations) *sqldb.DB {
	tb.Helper()
	ctx := context.Background()
	cfg := sqldb.Config{Service: service, DataDir: tb.TempDir()}
	if dialect == sqldb.Postgres {
		cfg.URL = os.Getenv(EnvPostgres)
		if cfg.URL == "" {
			tb.Skip(EnvPostgres + " not set")
		}
		var b [6]byte
		_, _ = rand.Read(b[:])
		cfg.Schema = "test_" + service + "_" + hex.EncodeToString(b[:])
	}
	db, err := sqldb.Open(ctx, cfg)
	if err != nil {
		tb.Fatalf("open %s: %v", dialect, err)
	}
	tb.Cleanup(func() {
		if dialect == sqldb.Postgres {
			_, _ = db.ExecContext(context.Background(), "DROP SCHEMA IF EXISTS "+cfg.Schema+" CASCADE")
		}
		db.Close()
	})
	if err := db.Migrate(ctx, sets...); err != nil {
		tb.Fatalf("migrate %s: %v", dialect, err)
	}
	return db
}
