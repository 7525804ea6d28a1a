package cart

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

// Store keeps carts: the SQL store in the embedded shape, Redis in the
// distributed one. A cart that does not exist reads as empty and an empty
// cart is not kept. A guest cart expires after the store's guest TTL without
// a write; user carts persist.
type Store interface {
	// Get returns the cart; empty when there is none or it expired.
	Get(ctx context.Context, key Key) (Cart, error)
	// Update loads the cart, lets fn change it and saves the result, atomic
	// with respect to every other write of the cart. fn may run more than
	// once (so it must only change the cart); when it fails nothing is
	// written and Update returns its error. A write renews a guest cart's TTL.
	Update(ctx context.Context, key Key, fn func(c *Cart) error) (Cart, error)
	// Merge lets fn fold cart from into cart to, saves to and deletes from,
	// all atomically. fn may run more than once.
	Merge(ctx context.Context, from, to Key, fn func(from Cart, to *Cart) error) (Cart, error)
	// Delete removes a cart; removing a missing cart succeeds.
	Delete(ctx context.Context, key Key) error
	// Sweep deletes expired guest carts where the store does not expire
	// them by itself, and returns how many.
	Sweep(ctx context.Context) (int, error)
}

// SQLStore keeps carts in the service's SQL database.
type SQLStore struct {
	db       *sqldb.DB
	guestTTL time.Duration
	now      func() time.Time
}

// NewSQLStore returns a cart store on db (migrated with the cart service's
// migrations) whose guest carts live guestTTL after their last write.
func NewSQLStore(db *sqldb.DB, guestTTL time.Duration) *SQLStore {
	return &SQLStore{db: db, guestTTL: guestTTL, now: time.Now}
}

// Get implements Store.
func (s *SQLStore) Get(ctx context.Context, key Key) (Cart, error) {
	c, _, err := s.load(ctx, s.db, key, false)
	return c, err
}

// load reads a cart; exists reports a row, even an expired one. lock takes
// the row lock on PostgreSQL (SQLite transactions hold the write lock).
func (s *SQLStore) load(ctx context.Context, q querier, key Key, lock bool) (c Cart, exists bool, err error) {
	query := `SELECT expires_at FROM carts WHERE cart_key = $1`
	if lock && s.db.Dialect == sqldb.Postgres {
		query += ` FOR UPDATE`
	}
	var expires sql.NullTime
	err = q.QueryRowContext(ctx, query, key.String()).Scan(&expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Cart{}, false, nil
	}
	if err != nil {
		return Cart{}, false, fmt.Errorf("read cart: %w", err)
	}
	if expires.Valid && !expires.Time.After(s.now()) {
		return Cart{}, true, nil
	}
	rows, err := q.QueryContext(ctx,
		`SELECT sku, quantity, added_amount, added_currency, added_at FROM cart_lines WHERE cart_key = $1`, key.String())
	if err != nil {
		return Cart{}, false, fmt.Errorf("read cart lines: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var l Line
		if err := rows.Scan(&l.SKU, &l.Quantity, &l.AddedPrice.Amount, &l.AddedPrice.Currency, &l.AddedAt); err != nil {
			return Cart{}, false, fmt.Errorf("scan cart line: %w", err)
		}
		l.AddedAt = l.AddedAt.UTC()
		c.Lines = append(c.Lines, l)
	}
	if err := rows.Err(); err != nil {
		return Cart{}, false, fmt.Errorf("read cart lines: %w", err)
	}
	c.sortLines()
	return c, true, nil
}

// lockOrCreate loads a cart for writing, creating its row so that there is
// something to lock: concurrent writers of one cart queue on it.
func (s *SQLStore) lockOrCreate(ctx context.Context, tx *sql.Tx, key Key, now time.Time) (Cart, error) {
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO carts (cart_key, updated_at, expires_at) VALUES ($1, $2, $3) ON CONFLICT (cart_key) DO NOTHING`,
		key.String(), now, s.expiry(key, now)); err != nil {
		return Cart{}, fmt.Errorf("create cart: %w", err)
	}
	c, _, err := s.load(ctx, tx, key, true)
	return c, err
}

func (s *SQLStore) expiry(key Key, now time.Time) sql.NullTime {
	if !key.Guest() {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: now.Add(s.guestTTL), Valid: true}
}

// Update implements Store.
func (s *SQLStore) Update(ctx context.Context, key Key, fn func(c *Cart) error) (Cart, error) {
	var out Cart
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		now := s.now().UTC()
		old, err := s.lockOrCreate(ctx, tx, key, now)
		if err != nil {
			return err
		}
		c := Cart{Lines: append([]Line(nil), old.Lines...)}
		if err := fn(&c); err != nil {
			return err
		}
		out = c
		return s.save(ctx, tx, key, old, c, now)
	})
	return out, err
}

// Merge implements Store.
func (s *SQLStore) Merge(ctx context.Context, from, to Key, fn func(from Cart, to *Cart) error) (Cart, error) {
	var out Cart
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		now := s.now().UTC()
		// Guest keys sort before user keys: every merge locks in one order.
		src, _, err := s.load(ctx, tx, from, true)
		if err != nil {
			return err
		}
		old, err := s.lockOrCreate(ctx, tx, to, now)
		if err != nil {
			return err
		}
		c := Cart{Lines: append([]Line(nil), old.Lines...)}
		if err := fn(src, &c); err != nil {
			return err
		}
		out = c
		if err := s.save(ctx, tx, to, old, c, now); err != nil {
			return err
		}
		return s.delete(ctx, tx, from)
	})
	return out, err
}

// save writes the difference between old and c, or deletes an empty cart.
func (s *SQLStore) save(ctx context.Context, tx *sql.Tx, key Key, old, c Cart, now time.Time) error {
	if len(c.Lines) == 0 {
		return s.delete(ctx, tx, key)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE carts SET updated_at = $1, expires_at = $2 WHERE cart_key = $3`,
		now, s.expiry(key, now), key.String()); err != nil {
		return fmt.Errorf("touch cart: %w", err)
	}
	// stored also holds the lines of an expired cart, which go now.
	stored, err := s.storedSKUs(ctx, tx, key)
	if err != nil {
		return err
	}
	keep := make(map[string]Line, len(old.Lines))
	for _, l := range old.Lines {
		keep[l.SKU] = l
	}
	for _, l := range c.Lines {
		delete(stored, l.SKU)
		if prev, ok := keep[l.SKU]; ok && sameLine(prev, l) {
			continue
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO cart_lines (cart_key, sku, quantity, added_amount, added_currency, added_at) VALUES ($1, $2, $3, $4, $5, $6)
			 ON CONFLICT (cart_key, sku) DO UPDATE SET quantity = excluded.quantity, added_amount = excluded.added_amount,
			   added_currency = excluded.added_currency, added_at = excluded.added_at`,
			key.String(), l.SKU, l.Quantity, l.AddedPrice.Amount, l.AddedPrice.Currency, l.AddedAt.UTC()); err != nil {
			return fmt.Errorf("write cart line: %w", err)
		}
	}
	for sku := range stored {
		if _, err := tx.ExecContext(ctx, `DELETE FROM cart_lines WHERE cart_key = $1 AND sku = $2`, key.String(), sku); err != nil {
			return fmt.Errorf("delete cart line: %w", err)
		}
	}
	return nil
}

func sameLine(a, b Line) bool {
	return a.SKU == b.SKU && a.Quantity == b.Quantity && a.AddedPrice == b.AddedPrice && a.AddedAt.Equal(b.AddedAt)
}

// storedSKUs lists the SKUs of the rows a cart has in cart_lines, expired
// or not.
func (s *SQLStore) storedSKUs(ctx context.Context, tx *sql.Tx, key Key) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT sku FROM cart_lines WHERE cart_key = $1`, key.String())
	if err != nil {
		return nil, fmt.Errorf("read cart lines: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var sku string
		if err := rows.Scan(&sku); err != nil {
			return nil, fmt.Errorf("scan cart line: %w", err)
		}
		out[sku] = true
	}
	return out, rows.Err()
}

func (s *SQLStore) delete(ctx context.Context, tx *sql.Tx, key Key) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM cart_lines WHERE cart_key = $1`, key.String()); err != nil {
		return fmt.Errorf("delete cart lines: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM carts WHERE cart_key = $1`, key.String()); err != nil {
		return fmt.Errorf("delete cart: %w", err)
	}
	return nil
}

// Delete implements Store.
func (s *SQLStore) Delete(ctx context.Context, key Key) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error { return s.delete(ctx, tx, key) })
}

// Sweep implements Store: it deletes guest carts past their expiry.
func (s *SQLStore) Sweep(ctx context.Context) (int, error) {
	var n int64
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		now := s.now().UTC()
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM cart_lines WHERE cart_key IN (SELECT cart_key FROM carts WHERE expires_at IS NOT NULL AND expires_at <= $1)`, now); err != nil {
			return fmt.Errorf("sweep cart lines: %w", err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM carts WHERE expires_at IS NOT NULL AND expires_at <= $1`, now)
		if err != nil {
			return fmt.Errorf("sweep carts: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return int(n), err
}

// Compile-time checks that both stores implement Store.
var (
	_ Store = (*SQLStore)(nil)
	_ Store = (*RedisStore)(nil)
)
