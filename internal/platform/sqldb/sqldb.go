// Package sqldb opens a service's relational store: a SQLite file in the
// embedded shape, a PostgreSQL schema in the distributed one. Both take the
// same SQL text ($1 placeholders, ON CONFLICT, RETURNING), so each store has a
// single code path. Migrations are embedded per service and run by goose.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the database engine behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Config says where a service keeps its data.
type Config struct {
	// URL is a PostgreSQL URL; empty means a SQLite file under DataDir.
	URL string
	// DataDir holds the SQLite file <Service>.db.
	DataDir string
	// Service names the owning service; it is the PostgreSQL schema and the
	// SQLite file name.
	Service string
	// Schema overrides the PostgreSQL schema (tests use a fresh one each).
	Schema string
}

// DB is a service's database handle.
type DB struct {
	*sql.DB
	Dialect Dialect
	// Schema is the PostgreSQL schema the handle's search_path points at.
	Schema string
}

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open opens (creating when needed) the service's database.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.Service == "" || !identRE.MatchString(cfg.Service) {
		return nil, fmt.Errorf("open database: bad service name %q", cfg.Service)
	}
	if cfg.URL == "" {
		return openSQLite(ctx, cfg)
	}
	return openPostgres(ctx, cfg)
}

func openSQLite(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("open sqlite: no data dir")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	path := filepath.Join(cfg.DataDir, cfg.Service+".db")
	// WAL lets readers run beside the writer; immediate transactions take the
	// write lock up front so two writers queue on busy_timeout instead of
	// failing on a lock upgrade.
	dsn := "file:" + path + "?_txlock=immediate&_time_format=sqlite" +
		"&_pragma=busy_timeout(20000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	db.SetMaxOpenConns(8)
	// Keep every connection (and its prepared statements) between bursts.
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return &DB{DB: db, Dialect: SQLite}, nil
}

func openPostgres(ctx context.Context, cfg Config) (*DB, error) {
	schema := cfg.Schema
	if schema == "" {
		schema = cfg.Service
	}
	if !identRE.MatchString(schema) {
		return nil, fmt.Errorf("open postgres: bad schema name %q", schema)
	}
	pc, err := pgx.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("open postgres: parse url: %w", err)
	}
	// Services never share tables: each has its own schema, created here.
	bootstrap := stdlib.OpenDB(*pc.Copy())
	_, err = bootstrap.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema)
	bootstrap.Close()
	if err != nil && !IsUniqueViolation(err) {
		return nil, fmt.Errorf("open postgres: create schema %s: %w", schema, err)
	}
	pc.RuntimeParams["search_path"] = schema
	db := stdlib.OpenDB(*pc)
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	return &DB{DB: db, Dialect: Postgres, Schema: schema}, nil
}

// Migrations is one named set of embedded goose migrations. Each set keeps
// its own version table (goose_<Name>), so the platform's tables (outbox,
// processed events) and a service's tables migrate independently.
type Migrations struct {
	Name string
	FS   fs.FS
}

// Embedded names the goose migrations in directory dir of an embedded
// file system (every service keeps them in migrations/ beside its code).
func Embedded(name string, fsys fs.FS, dir string) Migrations {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // only on a malformed literal path, caught by any test
	}
	return Migrations{Name: name, FS: sub}
}

// Migrate brings the database up to date with every set, in order.
func (db *DB) Migrate(ctx context.Context, sets ...Migrations) error {
	for _, m := range sets {
		if err := db.migrate(ctx, m); err != nil {
			return fmt.Errorf("migrate %s: %w", m.Name, err)
		}
	}
	return nil
}

func (db *DB) migrate(ctx context.Context, m Migrations) error {
	dialect := goose.DialectSQLite3
	opts := []goose.ProviderOption{goose.WithTableName("goose_" + m.Name), goose.WithDisableGlobalRegistry(true)}
	if db.Dialect == Postgres {
		dialect = goose.DialectPostgres
		// Replicas starting together must not race each other's migrations.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID(db.Schema + "/" + m.Name)))
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, db.DB, m.FS, opts...)
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

func lockID(s string) int64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return int64(h >> 1)
}

// InTx runs fn in a transaction, committing when it returns nil and rolling
// back otherwise (also on panic).
func (db *DB) InTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Ping reports whether the database answers; readiness checks use it.
func (db *DB) Ping(ctx context.Context) error { return db.PingContext(ctx) }

// IsUniqueViolation reports whether err is a unique or primary-key violation.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// IsCheckViolation reports whether err is a CHECK constraint violation.
func IsCheckViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23514"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_CHECK
	}
	return false
}

// Redacted returns the URL with any password masked, for logs.
func Redacted(url string) string {
	if url == "" {
		return ""
	}
	pc, err := pgconn.ParseConfig(url)
	if err != nil || pc.Password == "" {
		return url
	}
	return strings.Replace(url, pc.Password, "xxxxx", 1)
}

// LogValue keeps DB handles readable in structured logs.
func (db *DB) LogValue() slog.Value {
	return slog.GroupValue(slog.String("dialect", string(db.Dialect)), slog.String("schema", db.Schema))
}

// Placeholders returns "$1, $2, …" for vals and vals as arguments, for an
// IN list that both engines read.
func Placeholders(vals []string) (string, []any) {
	var b strings.Builder
	args := make([]any, len(vals))
	for i, v := range vals {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(i+1))
		args[i] = v
	}
	return b.String(), args
}

// MultiInsert completes an INSERT head ("INSERT INTO t (a, b)") with one
// VALUES tuple per row: one statement, whatever the number of rows.
func MultiInsert(head string, rows [][]any) (string, []any) {
	var b strings.Builder
	b.WriteString(head)
	b.WriteString(" VALUES ")
	var args []any
	for i, row := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j, v := range row {
			if j > 0 {
				b.WriteString(", ")
			}
			args = append(args, v)
			b.WriteString("$" + strconv.Itoa(len(args)))
		}
		b.WriteByte(')')
	}
	return b.String(), args
}
