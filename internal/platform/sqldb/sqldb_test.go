package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/sqldb/sqldbtest"
)

var things = []sqldb.Migrations{{Name: "things", FS: os.DirFS("testdata/things")}}

func TestOneSQLTextOnBothEngines(t *testing.T) {
	t.Parallel()
	sqldbtest.Each(t, "things", things, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		at := time.Date(2026, 11, 25, 10, 30, 0, 123456000, time.UTC)
		if _, err := db.ExecContext(ctx, `INSERT INTO things (id, n, at, blob) VALUES ($1, $2, $3, $4)`, "a", 5, at, []byte{0, 1, 2}); err != nil {
			t.Fatal(err)
		}
		var n int64
		var got time.Time
		var blob []byte
		if err := db.QueryRowContext(ctx, `SELECT n, at, blob FROM things WHERE id = $1`, "a").Scan(&n, &got, &blob); err != nil {
			t.Fatal(err)
		}
		if n != 5 || !got.Equal(at) || len(blob) != 3 || blob[2] != 2 {
			t.Fatalf("round trip: n=%d at=%v blob=%v", n, got, blob)
		}

		_, err := db.ExecContext(ctx, `INSERT INTO things (id, n, at) VALUES ($1, $2, $3)`, "a", 1, at)
		if !sqldb.IsUniqueViolation(err) {
			t.Fatalf("duplicate key: want unique violation, got %v", err)
		}
		_, err = db.ExecContext(ctx, `UPDATE things SET n = n - 10 WHERE id = $1`, "a")
		if !sqldb.IsCheckViolation(err) {
			t.Fatalf("negative n: want check violation, got %v", err)
		}
		var upserted int64
		if err := db.QueryRowContext(ctx, `INSERT INTO things (id, n, at) VALUES ($1, $2, $3)
			ON CONFLICT (id) DO UPDATE SET n = things.n + excluded.n RETURNING n`, "a", 2, at).Scan(&upserted); err != nil || upserted != 7 {
			t.Fatalf("upsert returning: %d %v", upserted, err)
		}
	})
}

func TestInTxRollsBackOnErrorAndPanic(t *testing.T) {
	t.Parallel()
	sqldbtest.Each(t, "things", things, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		insert := func(tx *sql.Tx, id string) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO things (id, n, at) VALUES ($1, 1, $2)`, id, time.Now().UTC())
			return err
		}
		boom := errors.New("boom")
		if err := db.InTx(ctx, func(tx *sql.Tx) error {
			if err := insert(tx, "x"); err != nil {
				return err
			}
			return boom
		}); !errors.Is(err, boom) {
			t.Fatal(err)
		}
		func() {
			defer func() { _ = recover() }()
			_ = db.InTx(ctx, func(tx *sql.Tx) error {
				_ = insert(tx, "y")
				panic("mid-transaction")
			})
		}()
		if err := db.InTx(ctx, func(tx *sql.Tx) error { return insert(tx, "z") }); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM things`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("rows = %d (%v), want only the committed one", n, err)
		}
	})
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	sqldbtest.Each(t, "things", things, func(t *testing.T, db *sqldb.DB) {
		if err := db.Migrate(context.Background(), things...); err != nil {
			t.Fatal(err)
		}
	})
}

func TestOpenRefusesBadNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "Auth", "a;drop", "x-y"} {
		if _, err := sqldb.Open(context.Background(), sqldb.Config{Service: name, DataDir: t.TempDir()}); err == nil {
			t.Errorf("service %q accepted", name)
		}
	}
}

func TestPlaceholders(t *testing.T) {
	q, args := sqldb.Placeholders([]string{"a", "b", "c"})
	if q != "$1, $2, $3" || len(args) != 3 || args[2] != "c" {
		t.Fatalf("%q %v", q, args)
	}
}

func TestMultiInsert(t *testing.T) {
	q, args := sqldb.MultiInsert("INSERT INTO t (a, b)", [][]any{{1, "x"}, {2, "y"}})
	if q != "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)" || len(args) != 4 || args[3] != "y" {
		t.Fatalf("%q %v", q, args)
	}
}
