package cart

// This file lets a transaction send its statements in flights. A
// reservation is a handful of statements, and on PostgreSQL each one sent on
// its own costs a network round trip during which the reserved SKUs' rows
// stay locked; a flight goes out as one pgx pipeline, so a reservation
// costs two round trips whatever its size. SQLite runs in the process, has
// no round trips to save and simply runs a flight's statements in turn.
// Both engines run the same SQL text.

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

// flight is statements sent to the database together, run in order.
type flight struct {
	stmts []flightStmt
}

type flightStmt struct {
	query string
	args  []any
	// each reads every row the statement returns, in turn; nil runs it as
	// an exec. An error it returns ends the flight: the rest of the
	// statements are not run (SQLite) or their results are discarded
	// (PostgreSQL).
	each func(scanner) error
}

func (f *flight) exec(query string, args ...any) {
	f.stmts = append(f.stmts, flightStmt{query: query, args: args})
}

func (f *flight) query(each func(scanner) error, query string, args ...any) {
	f.stmts = append(f.stmts, flightStmt{query: query, args: args, each: each})
}

// sender sends flights inside a transaction.
type sender interface {
	send(ctx context.Context, f *flight) error
}

// inFlights runs fn in a transaction. fn sends what it needs to see the
// results of, and returns the last flight, which is sent with the commit.
// When fn fails, the transaction rolls back.
func inFlights(ctx context.Context, db *sqldb.DB, fn func(s sender) (*flight, error)) error {
	if db.Dialect != sqldb.Postgres {
		return db.InTx(ctx, func(tx *sql.Tx) error {
			last, err := fn(txSender{tx})
			if err != nil {
				return err
			}
			return txSender{tx}.send(ctx, last)
		})
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("begin: unexpected driver connection %T", dc)
		}
		p := &pipeSender{conn: sc.Conn(), begin: true}
		defer p.rollbackUnlessDone()
		last, err := fn(p)
		if err != nil {
			return err
		}
		last.exec("COMMIT")
		if err := p.send(ctx, last); err != nil {
			return err
		}
		// Belt and braces: PostgreSQL answers a COMMIT of a failed
		// transaction with ROLLBACK, not an error.
		if st := p.conn.PgConn().TxStatus(); st != 'I' {
			return fmt.Errorf("commit: transaction status %q after COMMIT", st)
		}
		return nil
	})
}

type txSender struct{ tx *sql.Tx }

func (s txSender) send(ctx context.Context, f *flight) error {
	for _, st := range f.stmts {
		var err error
		switch {
		case st.each != nil:
			err = eachRow(s.tx.QueryContext(ctx, st.query, st.args...))(st.each)
		default:
			_, err = s.tx.ExecContext(ctx, st.query, st.args...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// eachRow calls fn for every row of a query's result.
func eachRow(rows *sql.Rows, err error) func(fn func(scanner) error) error {
	return func(fn func(scanner) error) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := fn(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
}

// pipeSender sends each flight as one pgx batch: the statements and a
// single Sync, so one round trip. The first flight also carries the BEGIN.
type pipeSender struct {
	conn  *pgx.Conn
	begin bool
}

func (p *pipeSender) send(ctx context.Context, f *flight) error {
	var b pgx.Batch
	if p.begin {
		b.Queue("BEGIN")
		p.begin = false
	}
	for _, st := range f.stmts {
		q := b.Queue(st.query, st.args...)
		switch {
		case st.each != nil:
			q.Query(func(rows pgx.Rows) error {
				for rows.Next() {
					if err := st.each(rows); err != nil {
						return err
					}
				}
				return rows.Err()
			})
		default:
			q.Exec(func(pgconn.CommandTag) error { return nil })
		}
	}
	return p.conn.SendBatch(ctx, &b).Close()
}

// rollbackUnlessDone ends a transaction left open by an error, so the
// connection goes back to the pool clean (database/sql would otherwise
// discard it).
func (p *pipeSender) rollbackUnlessDone() {
	if p.begin || p.conn.IsClosed() || p.conn.PgConn().TxStatus() == 'I' {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
	defer cancel()
	if _, err := p.conn.Exec(ctx, "ROLLBACK"); err != nil {
		_ = p.conn.Close(ctx) // database/sql then drops it
	}
}

// rollbackTimeout bounds the ROLLBACK of a transaction an error left open.
const rollbackTimeout = 5 * time.Second
