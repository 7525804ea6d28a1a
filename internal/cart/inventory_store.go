package cart

// This file holds the inventory's SQL: one code path for SQLite and
// PostgreSQL. Every change of a stock row happens in a transaction that also
// writes its ledger row and its stock events (the outbox), so the three can
// never disagree.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/mallhive/mallhive/internal/gen/mallhive/events/v1"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

// eventSource names the cart service in the events it emits.
const eventSource = "mallhive/cart"

// Stock event types.
const (
	EventStockChanged = "stock.changed"
	EventStockLow     = "stock.low"
	EventStockOut     = "stock.out"
)

type inventoryStore struct {
	db      *sqldb.DB
	batcher *reserveBatcher // gathers concurrent reservations (inventory_batch.go)
}

func newInventoryStore(db *sqldb.DB) *inventoryStore {
	s := &inventoryStore{db: db}
	s.batcher = newReserveBatcher(s.reserveBatch)
	return s
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const levelCols = `sku, seller_id, product_id, on_hand, reserved, low_threshold, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanLevel(row scanner) (Level, error) {
	var l Level
	err := row.Scan(&l.SKU, &l.SellerID, &l.ProductID, &l.OnHand, &l.Reserved, &l.LowThreshold, &l.UpdatedAt)
	l.UpdatedAt = l.UpdatedAt.UTC()
	return l, err
}

// stampAt is the updated_at a stock UPDATE writes for a change at param:
// never earlier than the row's. Transactions can commit in another order
// than their clocks read (a batch waits for the one before it), and the
// stock events carry updated_at, which readers such as the catalog use to
// keep the newest level; so a SKU's times must never go back.
func stampAt(param string) string {
	return "CASE WHEN updated_at > " + param + " THEN updated_at ELSE " + param + " END"
}

// laterOf is stampAt in Go, for rows already read under lock.
func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// level reads one SKU's stock; lock takes the row lock on PostgreSQL
// (SQLite transactions already hold the database's write lock).
func (s *inventoryStore) level(ctx context.Context, q querier, sku string, lock bool) (Level, bool, error) {
	query := `SELECT ` + levelCols + ` FROM stock WHERE sku = $1`
	if lock && s.db.Dialect == sqldb.Postgres {
		query += ` FOR UPDATE`
	}
	l, err := scanLevel(q.QueryRowContext(ctx, query, sku))
	if errors.Is(err, sql.ErrNoRows) {
		return Level{}, false, nil
	}
	if err != nil {
		return Level{}, false, fmt.Errorf("read stock %s: %w", sku, err)
	}
	return l, true, nil
}

func (s *inventoryStore) levels(ctx context.Context, skus []string) (map[string]Level, error) {
	out := make(map[string]Level, len(skus))
	for start := 0; start < len(skus); start += 100 {
		batch := skus[start:min(start+100, len(skus))]
		marks := make([]string, len(batch))
		args := make([]any, len(batch))
		for i, sku := range batch {
			marks[i] = fmt.Sprintf("$%d", i+1)
			args[i] = sku
		}
		rows, err := s.db.QueryContext(ctx, `SELECT `+levelCols+` FROM stock WHERE sku IN (`+strings.Join(marks, ", ")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("read stock levels: %w", err)
		}
		for rows.Next() {
			l, err := scanLevel(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("scan stock level: %w", err)
			}
			out[l.SKU] = l
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read stock levels: %w", err)
		}
	}
	return out, nil
}

func (s *inventoryStore) list(ctx context.Context, sellerID, after string, limit int) ([]Level, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+levelCols+` FROM stock WHERE seller_id = $1 AND sku > $2 ORDER BY sku LIMIT $3`, sellerID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list stock: %w", err)
	}
	defer rows.Close()
	var out []Level
	for rows.Next() {
		l, err := scanLevel(rows)
		if err != nil {
			return nil, fmt.Errorf("scan stock: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

func (s *inventoryStore) ledger(ctx context.Context, sku, before string, limit int) ([]LedgerEntry, error) {
	query := `SELECT id, sku, delta_on_hand, delta_reserved, reason, actor, order_id, note, at FROM stock_ledger WHERE sku = $1`
	args := []any{sku}
	if before != "" {
		query += ` AND id < $3`
		args = append(args, limit, before)
	} else {
		args = append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, query+` ORDER BY id DESC LIMIT $2`, args...)
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	defer rows.Close()
	var out []LedgerEntry
	for rows.Next() {
		var e LedgerEntry
		if err := rows.Scan(&e.ID, &e.SKU, &e.DeltaOnHand, &e.DeltaReserved, &e.Reason, &e.Actor, &e.OrderID, &e.Note, &e.At); err != nil {
			return nil, fmt.Errorf("scan ledger: %w", err)
		}
		e.At = e.At.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// create inserts a SKU's first stock row; ok is false when another request
// created it first.
func (s *inventoryStore) create(ctx context.Context, l Level, now time.Time) (Level, bool, error) {
	l.UpdatedAt = now
	var ok bool
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO stock (sku, seller_id, product_id, on_hand, reserved, low_threshold, updated_at)
			 VALUES ($1, $2, $3, $4, 0, $5, $6) ON CONFLICT (sku) DO NOTHING`,
			l.SKU, l.SellerID, l.ProductID, l.OnHand, l.LowThreshold, now)
		if err != nil {
			return fmt.Errorf("create stock %s: %w", l.SKU, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		ok = true
		return s.record(ctx, tx, change{created: true, before: Level{SKU: l.SKU, SellerID: l.SellerID, ProductID: l.ProductID},
			after: l, reason: ReasonAdjusted, actor: l.SellerID, note: "stock set", at: now})
	})
	return l, ok, err
}

// set replaces on_hand (and the threshold when low is set) of a SKU the
// seller owns.
func (s *inventoryStore) set(ctx context.Context, sellerID, sku string, onHand int64, low *int64, now time.Time) (Level, error) {
	var after Level
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		before, found, err := s.level(ctx, tx, sku, true)
		if err != nil {
			return err
		}
		if !found || before.SellerID != sellerID {
			return errNoStock(sku)
		}
		if onHand < before.Reserved {
			return errs.E(errs.Conflict, "on_hand cannot go below the %d units reserved for open orders", before.Reserved)
		}
		after = before
		after.OnHand, after.UpdatedAt = onHand, laterOf(before.UpdatedAt, now)
		if low != nil {
			after.LowThreshold = *low
		}
		if after.OnHand == before.OnHand && after.LowThreshold == before.LowThreshold {
			after = before
			return nil // nothing changed: no ledger row, no event
		}
		if _, err := tx.ExecContext(ctx, `UPDATE stock SET on_hand = $1, low_threshold = $2, updated_at = $3 WHERE sku = $4`,
			after.OnHand, after.LowThreshold, after.UpdatedAt, sku); err != nil {
			return stockWriteError(sku, err)
		}
		return s.record(ctx, tx, change{before: before, after: after, reason: ReasonAdjusted, actor: sellerID, note: "stock set", at: now})
	})
	return after, err
}

// adjust adds delta to on_hand in one conditional UPDATE.
func (s *inventoryStore) adjust(ctx context.Context, sellerID, sku string, delta int64, note string, now time.Time) (Level, error) {
	var after Level
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		after, err = scanLevel(tx.QueryRowContext(ctx,
			`UPDATE stock SET on_hand = on_hand + $1, updated_at = `+stampAt("$2")+`
			 WHERE sku = $3 AND seller_id = $4 AND on_hand + $1 >= reserved AND on_hand + $1 <= $5
			 RETURNING `+levelCols, delta, now, sku, sellerID, MaxOnHand))
		if errors.Is(err, sql.ErrNoRows) {
			cur, found, err := s.level(ctx, tx, sku, false)
			switch {
			case err != nil:
				return err
			case !found || cur.SellerID != sellerID:
				return errNoStock(sku)
			case cur.OnHand+delta > MaxOnHand:
				return errs.E(errs.Conflict, "on_hand would exceed %d", MaxOnHand)
			default:
				return errs.E(errs.Conflict, "on_hand would drop to %d, below the %d units reserved for open orders (on hand %d)",
					cur.OnHand+delta, cur.Reserved, cur.OnHand)
			}
		}
		if err != nil {
			return stockWriteError(sku, err)
		}
		before := after
		before.OnHand -= delta
		reason := ReasonAdjusted
		if delta > 0 {
			reason = ReasonRestocked
		}
		return s.record(ctx, tx, change{before: before, after: after, reason: reason, actor: sellerID, note: note, at: now})
	})
	return after, err
}

func (s *inventoryStore) reservation(ctx context.Context, q querier, orderID string) (Reservation, bool, error) {
	r := Reservation{OrderID: orderID}
	err := q.QueryRowContext(ctx, `SELECT status, expires_at FROM reservations WHERE order_id = $1`, orderID).Scan(&r.Status, &r.ExpiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Reservation{}, false, nil
	}
	if err != nil {
		return Reservation{}, false, fmt.Errorf("read reservation %s: %w", orderID, err)
	}
	r.ExpiresAt = r.ExpiresAt.UTC()
	r.Lines, err = s.reservationLines(ctx, q, orderID)
	return r, true, err
}

func (s *inventoryStore) reservationLines(ctx context.Context, q querier, orderID string) ([]ReserveLine, error) {
	rows, err := q.QueryContext(ctx, `SELECT sku, quantity FROM reservation_lines WHERE order_id = $1 ORDER BY sku`, orderID)
	if err != nil {
		return nil, fmt.Errorf("read reservation lines: %w", err)
	}
	defer rows.Close()
	var lines []ReserveLine
	for rows.Next() {
		var l ReserveLine
		if err := rows.Scan(&l.SKU, &l.Quantity); err != nil {
			return nil, fmt.Errorf("scan reservation line: %w", err)
		}
		lines = append(lines, l)
	}
	return lines, rows.Err()
}

// transition moves a reservation from reserved to status, when the extra
// condition holds. It is the one place where a reservation's fate is
// decided: a conditional UPDATE, so of a commit and an expiry racing each
// other exactly one matches the row.
func (s *inventoryStore) transition(ctx context.Context, tx *sql.Tx, orderID, status, cond string, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx,
		`UPDATE reservations SET status = $1, updated_at = $2 WHERE order_id = $3 AND status = 'reserved'`+cond,
		status, now, orderID)
	if err != nil {
		return false, fmt.Errorf("mark reservation %s %s: %w", orderID, status, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Conditions on expires_at ($2 is now). A reservation is live while
// expires_at > now and expired from expires_at <= now: at any instant
// exactly one of commit and expire can apply.
const (
	condLive    = ` AND expires_at > $2`
	condExpired = ` AND expires_at <= $2`
)

// settle moves the order's reserved units out of reserved: into a sale
// (commit) or back to available.
func (s *inventoryStore) settle(ctx context.Context, tx *sql.Tx, orderID, reason, actor, note string, now time.Time) error {
	lines, err := s.reservationLines(ctx, tx, orderID)
	if err != nil {
		return err
	}
	sold := int64(0)
	if reason == ReasonCommitted {
		sold = 1
	}
	changes := make([]change, len(lines))
	for i, l := range lines {
		after, err := scanLevel(tx.QueryRowContext(ctx,
			`UPDATE stock SET on_hand = on_hand - $1, reserved = reserved - $2, updated_at = `+stampAt("$3")+` WHERE sku = $4 RETURNING `+levelCols,
			sold*l.Quantity, l.Quantity, now, l.SKU))
		if err != nil {
			return stockWriteError(l.SKU, err)
		}
		before := after
		before.OnHand += sold * l.Quantity
		before.Reserved += l.Quantity
		changes[i] = change{before: before, after: after, reason: reason, actor: actor, orderID: orderID, note: note, at: now}
	}
	return s.record(ctx, tx, changes...)
}

// commit commits a live reservation and returns the order's reservation
// status afterwards ("" when there is none). A reservation found past its
// expiry is expired on the spot.
func (s *inventoryStore) commit(ctx context.Context, orderID string, now time.Time) (string, error) {
	var status string
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		ok, err := s.transition(ctx, tx, orderID, StatusCommitted, condLive, now)
		if err != nil {
			return err
		}
		if ok {
			status = StatusCommitted
			return s.settle(ctx, tx, orderID, ReasonCommitted, actorSystem, "", now)
		}
		cur, found, err := s.reservation(ctx, tx, orderID)
		if err != nil || !found {
			return err
		}
		status = cur.Status
		if status != StatusReserved {
			return nil
		}
		// Live status but past its time: the sweeper has not come yet.
		ok, err = s.transition(ctx, tx, orderID, StatusExpired, condExpired, now)
		if err != nil {
			return err
		}
		if !ok {
			// The sweeper (or a Release) settled it meanwhile.
			cur, _, err := s.reservation(ctx, tx, orderID)
			status = cur.Status
			return err
		}
		status = StatusExpired
		return s.settle(ctx, tx, orderID, ReasonExpired, actorSystem, "expired at commit", now)
	})
	return status, err
}

// release releases a held reservation and returns the order's reservation
// status afterwards.
func (s *inventoryStore) release(ctx context.Context, orderID, note string, now time.Time) (string, error) {
	for range 3 {
		var status string
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			ok, err := s.transition(ctx, tx, orderID, StatusReleased, "", now)
			if err != nil {
				return err
			}
			if ok {
				status = StatusReleased
				return s.settle(ctx, tx, orderID, ReasonReleased, actorSystem, note, now)
			}
			cur, found, err := s.reservation(ctx, tx, orderID)
			if err != nil {
				return err
			}
			if found {
				status = cur.Status
				return nil
			}
			// Released before it was reserved (a checkout that timed out
			// before its Reserve arrived): leave a tombstone so that the
			// late Reserve cannot hold stock for a dead order.
			res, err := tx.ExecContext(ctx,
				`INSERT INTO reservations (order_id, status, created_at, expires_at, updated_at) VALUES ($1, $2, $3, $3, $3)
				 ON CONFLICT (order_id) DO NOTHING`, orderID, StatusReleased, now)
			if err != nil {
				return fmt.Errorf("insert release tombstone: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				status = StatusReleased
			}
			return nil
		})
		if err != nil {
			return "", err
		}
		if status != "" && status != StatusReserved {
			return status, nil
		}
		// A Reserve committed between our read and our insert: release it.
	}
	return "", errs.E(errs.Conflict, "the reservation for order %s is being changed concurrently; try again", orderID)
}

// expiredOrders lists reservations whose time is up, oldest first.
func (s *inventoryStore) expiredOrders(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT order_id FROM reservations WHERE status = 'reserved' AND expires_at <= $1 ORDER BY expires_at LIMIT $2`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("list expired reservations: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan expired reservation: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// expire releases one reservation if it is still held and past its time.
func (s *inventoryStore) expire(ctx context.Context, orderID string, now time.Time) (bool, error) {
	var ok bool
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if ok, err = s.transition(ctx, tx, orderID, StatusExpired, condExpired, now); err != nil || !ok {
			return err
		}
		return s.settle(ctx, tx, orderID, ReasonExpired, actorSweeper, "", now)
	})
	return ok, err
}

// stockWriteError turns a violated no-oversell constraint into a Conflict:
// the conditions in our statements should make it unreachable, and if they
// ever do not, the database still refuses.
func stockWriteError(sku string, err error) error {
	if sqldb.IsCheckViolation(err) {
		return &errs.Error{Code: errs.Conflict, Message: fmt.Sprintf("the change would oversell SKU %s", sku), Err: err}
	}
	return fmt.Errorf("write stock %s: %w", sku, err)
}

// change is one stock row going from before to after.
type change struct {
	created       bool
	before, after Level
	reason        string
	actor         string
	orderID       string
	note          string
	at            time.Time
}

// ledgerRow is one stock_ledger row.
type ledgerRow struct {
	sku                 string
	dOnHand, dReserved  int64
	reason, actor, note string
	orderID             string
	at                  time.Time
}

func (c change) ledger() ledgerRow {
	return ledgerRow{sku: c.after.SKU, dOnHand: c.after.OnHand - c.before.OnHand, dReserved: c.after.Reserved - c.before.Reserved,
		reason: c.reason, actor: c.actor, note: c.note, orderID: c.orderID, at: c.at}
}

// record writes changes' ledger rows and their events, in the changes'
// transaction.
func (s *inventoryStore) record(ctx context.Context, tx *sql.Tx, cs ...change) error {
	rows := make([]ledgerRow, 0, len(cs))
	for _, c := range cs {
		rows = append(rows, c.ledger())
	}
	if err := writeLedger(ctx, tx, rows...); err != nil {
		return err
	}
	return enqueueChanges(ctx, tx, cs...)
}

const ledgerInsert = `INSERT INTO stock_ledger (id, sku, delta_on_hand, delta_reserved, reason, actor, order_id, note, at)`

func (r ledgerRow) values() []any {
	return []any{uuid.Must(uuid.NewV7()).String(), r.sku, r.dOnHand, r.dReserved, r.reason, r.actor, r.orderID, r.note, r.at}
}

// writeLedger inserts the rows that change stock, in one statement.
func writeLedger(ctx context.Context, tx *sql.Tx, rows ...ledgerRow) error {
	values := make([][]any, 0, len(rows))
	for _, r := range rows {
		if r.dOnHand != 0 || r.dReserved != 0 {
			values = append(values, r.values())
		}
	}
	if len(values) == 0 {
		return nil
	}
	q, args := sqldb.MultiInsert(ledgerInsert, values)
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	return nil
}

// enqueueChanges writes the changes' stock events to the outbox.
func enqueueChanges(ctx context.Context, tx *sql.Tx, cs ...change) error {
	evs, err := changeEvents(ctx, cs...)
	if err != nil || len(evs) == 0 {
		return err
	}
	return events.Enqueue(ctx, tx, evs...)
}

// changeEvents returns the stock events of changes. stock.low and
// stock.out fire only when available drops across the threshold or to
// zero, so a SKU that stays low is not announced again on every sale. A
// drop from above the threshold straight to zero (one large order, or a
// batch of reservations) crosses both, and announces both.
func changeEvents(ctx context.Context, cs ...change) ([]events.Event, error) {
	var evs []events.Event
	for _, c := range cs {
		dOnHand := c.after.OnHand - c.before.OnHand
		dReserved := c.after.Reserved - c.before.Reserved
		if !c.created && dOnHand == 0 && dReserved == 0 && c.before.LowThreshold == c.after.LowThreshold {
			continue
		}
		types := []string{EventStockChanged}
		dropped := c.after.Available() < c.before.Available()
		threshold := c.after.LowThreshold
		if dropped && threshold > 0 && c.after.Available() <= threshold && c.before.Available() > threshold {
			types = append(types, EventStockLow)
		}
		if dropped && c.after.Available() == 0 {
			types = append(types, EventStockOut)
		}
		msg := &eventsv1.StockLevelEvent{
			Sku:          c.after.SKU,
			ProductId:    c.after.ProductID,
			SellerId:     c.after.SellerID,
			OnHand:       c.after.OnHand,
			Reserved:     c.after.Reserved,
			Available:    c.after.Available(),
			LowThreshold: c.after.LowThreshold,
			Reason:       c.reason,
			At:           timestamppb.New(c.after.UpdatedAt),
		}
		for _, typ := range types {
			ev, err := events.New(ctx, eventSource, typ, c.after.SKU, msg)
			if err != nil {
				return nil, err
			}
			evs = append(evs, ev)
		}
	}
	return evs, nil
}
