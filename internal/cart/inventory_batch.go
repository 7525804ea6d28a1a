package cart

// This file makes reservations that arrive together share one transaction.
//
// A reservation on its own is a small transaction whose price is its commit:
// one WAL flush on PostgreSQL, during which a popular SKU's row stays locked,
// so one hot SKU could never take more reservations per second than the disk
// takes flushes. Reserve calls therefore queue, and each transaction takes
// every call waiting (up to a bound): it inserts their reservation rows, locks
// the stock rows they name, decides each call against what is left in turn
// (all of a call's lines or none), and writes the lines, ledger rows, stock
// updates and events of the accepted calls, then commits once. A call that
// finds nothing else waiting runs at once, so a quiet shop pays no delay.
//
// Each call keeps its own outcome: a ledger row per line and order, its own
// reservation, its own error. What a batch shares is the stock row's update
// and so the stock events: one stock.changed per SKU and transaction, holding
// the level after it.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/mallhive/mallhive/internal/gen/mallhive/events/v1"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

const (
	// reserveParallel is how many reservation transactions run at once:
	// one gathers calls while another commits.
	reserveParallel = 2
	// reserveBatchLines bounds the lines of one transaction, which keeps
	// its statements far below both databases' parameter limits. A call
	// (at most MaxReserveLines) always fits in an empty batch.
	reserveBatchLines = 500
	// reserveGather is how long a batch that starts while another is
	// running waits for calls on their way, so that under load batches
	// fill up instead of the first caller of each taking a slot alone
	// (PostgreSQL's commit_delay, for the same reason). A batch on an
	// idle store starts at once.
	reserveGather = 500 * time.Microsecond
	// reserveTxTimeout bounds one reservation transaction; callers wait
	// on their own contexts.
	reserveTxTimeout = 30 * time.Second
)

// reserveCall is one Reserve waiting for its transaction.
type reserveCall struct {
	ctx          context.Context
	orderID      string
	lines        []ReserveLine // sorted by SKU
	now, expires time.Time
	done         chan reserveOutcome // buffered, so a batch never waits for its caller
}

type reserveOutcome struct {
	res     Reservation
	existed bool // the order already had a reservation; res is it, unchanged
	err     error
}

// reserveBatcher queues calls and runs them in batches, at most
// reserveParallel at a time. Batches run on goroutines that exist only
// while calls wait, so there is nothing to start or stop.
type reserveBatcher struct {
	run   func(ctx context.Context, calls []*reserveCall) // answers every call
	slots chan struct{}

	mu    sync.Mutex
	queue []*reserveCall
}

func newReserveBatcher(run func(context.Context, []*reserveCall)) *reserveBatcher {
	return &reserveBatcher{run: run, slots: make(chan struct{}, reserveParallel)}
}

// do queues c and waits for its outcome. A caller that gives up leaves its
// call to finish on its own: Reserve is idempotent per order and an
// unclaimed reservation expires.
func (b *reserveBatcher) do(c *reserveCall) reserveOutcome {
	c.done = make(chan reserveOutcome, 1)
	b.mu.Lock()
	b.queue = append(b.queue, c)
	b.mu.Unlock()
	b.startBatch()
	select {
	case o := <-c.done:
		return o
	case <-c.ctx.Done():
		return reserveOutcome{err: c.ctx.Err()}
	}
}

// startBatch starts a batch if a slot is free; otherwise a running batch
// starts the next one when it ends.
func (b *reserveBatcher) startBatch() {
	select {
	case b.slots <- struct{}{}:
		go b.runBatch()
	default:
	}
}

func (b *reserveBatcher) runBatch() {
	if len(b.slots) > 1 { // another batch holds a slot too
		time.Sleep(reserveGather)
	}
	if calls := b.take(); len(calls) > 0 {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(calls[0].ctx), reserveTxTimeout)
		b.run(ctx, calls)
		cancel()
	}
	<-b.slots
	// Calls queued while every slot was busy found none free: start them.
	b.mu.Lock()
	waiting := len(b.queue) > 0
	b.mu.Unlock()
	if waiting {
		b.startBatch()
	}
}

// take removes the next batch from the queue, oldest first: calls whose
// callers left are answered and dropped, and a second call for an order
// already in the batch waits for the next one (so within a batch each
// order is decided once).
func (b *reserveBatcher) take() []*reserveCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	var (
		batch []*reserveCall
		lines int
		seen  = map[string]bool{}
		rest  = b.queue[:0]
	)
	for _, c := range b.queue {
		switch {
		case c.ctx.Err() != nil:
			c.done <- reserveOutcome{err: c.ctx.Err()}
		case !seen[c.orderID] && (len(batch) == 0 || lines+len(c.lines) <= reserveBatchLines):
			seen[c.orderID] = true
			lines += len(c.lines)
			batch = append(batch, c)
		default:
			rest = append(rest, c)
		}
	}
	clear(b.queue[len(rest):])
	b.queue = rest
	return batch
}

// reserve holds every line for the order, or nothing, in a transaction it
// may share with other orders' reservations. existed reports that the
// order already had a reservation, which res then holds unchanged.
func (s *inventoryStore) reserve(ctx context.Context, orderID string, lines []ReserveLine, now, expires time.Time) (Reservation, bool, error) {
	o := s.batcher.do(&reserveCall{ctx: ctx, orderID: orderID, lines: lines, now: now, expires: expires})
	return o.res, o.existed, o.err
}

// reserveBatch runs calls in one transaction and answers each. If the
// transaction fails, each call is retried alone, so one call's trouble
// cannot fail the others; a transaction that committed after all reads
// back as existing reservations, as any retried Reserve does.
func (s *inventoryStore) reserveBatch(ctx context.Context, calls []*reserveCall) {
	if s.db.Dialect == sqldb.Postgres && s.reserveAtOnce(ctx, calls) == nil {
		for _, c := range calls {
			c.done <- reserveOutcome{res: Reservation{OrderID: c.orderID, Status: StatusReserved, ExpiresAt: c.expires, Lines: c.lines}}
		}
		return
	}
	outcomes := make([]reserveOutcome, len(calls))
	err := s.reserveTx(ctx, calls, outcomes)
	if err != nil && len(calls) > 1 {
		for _, c := range calls {
			s.reserveBatch(ctx, []*reserveCall{c})
		}
		return
	}
	for i, c := range calls {
		o := outcomes[i]
		switch {
		case err != nil:
			o = reserveOutcome{err: fmt.Errorf("reserve for order %s: %w", c.orderID, err)}
		case o.existed:
			var found bool
			o.res, found, o.err = s.reservation(ctx, s.db, c.orderID)
			if o.err == nil && !found {
				o.err = fmt.Errorf("reservation %s neither inserted nor found", c.orderID)
			}
		}
		c.done <- o
	}
}

// reserveAtOnceSQL reserves every line of a batch in one PostgreSQL
// statement — one round trip, committed on its own — when every order is
// new and every line fits; otherwise it fails and changes nothing. It is
// reserveTx's work for the common case, in SQL: lock the stock rows in SKU
// order (lk, evaluated once before the UPDATE touches a row), insert the
// reservations (a plain INSERT: an order that already has one fails it),
// add each SKU's units to reserved (the stock_no_oversell constraint fails
// it when they do not fit; updated_at never goes back, see stampAt), write
// lines and ledger rows, and the stock events with changeEvents' rules,
// their payload as protojson that the relay turns into protobuf. The last
// SELECT divides by zero when a SKU has no stock row, so that too fails
// the whole statement.
//
// t holds one row per SKU with its total, so every step reaches stock
// through its primary key and no step searches an array row by row
// (EXPLAIN ANALYZE showed seq scans with = ANY and a nested loop over the
// event ids costing half the statement).
//
// The events' ids are made here, after the row lock, not in Go before the
// statement: the relay publishes in id order, and the stock stream keeps
// only the last event per SKU, so a batch that got its ids first but the
// lock second would leave an old level as the SKU's last word. They are
// UUIDv7 laid out as github.com/google/uuid makes them (milliseconds, then
// 12 bits of the sub-millisecond time; changed, low, out one apart), from
// the database's clock read after the lock, so they sort after every event
// the previous holder of the lock wrote.
const reserveAtOnceSQL = `
WITH o AS (SELECT * FROM unnest($1::text[], $2::timestamp[], $3::timestamp[]) AS o (order_id, created_at, expires_at)),
w AS (SELECT * FROM unnest($4::text[], $5::text[], $6::bigint[], $7::text[]) AS w (order_id, sku, qty, ledger_id)),
t AS (SELECT * FROM unnest($11::text[], $12::bigint[]) AS t (sku, q)),
lk AS (SELECT stock.sku FROM t JOIN stock ON stock.sku = t.sku ORDER BY stock.sku FOR UPDATE OF stock),
r AS (INSERT INTO reservations (order_id, status, created_at, expires_at, updated_at)
	SELECT order_id, 'reserved', created_at, expires_at, created_at FROM o),
u AS (UPDATE stock SET reserved = stock.reserved + t.q,
		updated_at = CASE WHEN stock.updated_at > $8 THEN stock.updated_at ELSE $8 END
	FROM t WHERE stock.sku = t.sku AND (SELECT count(*) FROM lk) > 0
	RETURNING stock.sku, stock.product_id, stock.seller_id, stock.on_hand, stock.reserved, stock.low_threshold,
		stock.updated_at, stock.on_hand - stock.reserved AS after, stock.on_hand - stock.reserved + t.q AS before,
		(extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS us),
l AS (INSERT INTO reservation_lines (order_id, sku, quantity) SELECT order_id, sku, qty FROM w),
g AS (INSERT INTO stock_ledger (id, sku, delta_on_hand, delta_reserved, reason, actor, order_id, note, at)
	SELECT w.ledger_id, w.sku, 0, w.qty, 'reserved', 'system', w.order_id, '', o.created_at FROM w JOIN o USING (order_id)),
e AS (INSERT INTO outbox (id, type, source, subject, occurred_at, headers, payload)
	SELECT substr(v.h, 1, 8) || '-' || substr(v.h, 9, 4) || '-7' || substr(v.h, 13, 3) || '-' ||
		substr('89ab', 1 + floor(random() * 4)::int, 1) || substr(v.r, 1, 3) || '-' || substr(v.r, 4, 12),
		x.type, $9, u.sku, $8, $10, convert_to(json_build_object(
		'sku', u.sku, 'product_id', u.product_id, 'seller_id', u.seller_id, 'on_hand', u.on_hand,
		'reserved', u.reserved, 'available', u.after, 'low_threshold', u.low_threshold,
		'reason', 'reserved', 'at', to_char(u.updated_at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text, 'UTF8')
	FROM u CROSS JOIN LATERAL (VALUES
		(0, 'stock.changed', true),
		(1, 'stock.low', u.low_threshold > 0 AND u.after <= u.low_threshold AND u.before > u.low_threshold),
		(2, 'stock.out', u.after = 0 AND u.before > 0)) AS x (k, type, fire)
	CROSS JOIN LATERAL (SELECT lpad(to_hex(((u.us / 1000) << 12) + (u.us % 1000) * 1000 / 256 + x.k), 15, '0') AS h,
		md5(random()::text) AS r) AS v
	WHERE x.fire)
SELECT 1 / ((SELECT count(*) FROM u) = (SELECT count(*) FROM t))::int`

// reserveAtOnce runs reserveAtOnceSQL for calls. Any error means nothing
// was written and the batch goes the careful way (reserveTx), which tells
// each call what happened.
func (s *inventoryStore) reserveAtOnce(ctx context.Context, calls []*reserveCall) error {
	args, err := reserveAtOnceArgs(calls)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, reserveAtOnceSQL, args...)
	return err
}

// reserveAtOnceArgs are reserveAtOnceSQL's parameters for calls.
func reserveAtOnceArgs(calls []*reserveCall) ([]any, error) {
	var (
		orders           []string
		created, expires []time.Time
		lineOrders, skus []string
		qtys             []int64
		ledgerIDs        []string
		latest           time.Time
	)
	total := make(map[string]int64)
	for _, c := range calls {
		orders = append(orders, c.orderID)
		created = append(created, c.now)
		expires = append(expires, c.expires)
		if c.now.After(latest) {
			latest = c.now
		}
		for _, l := range c.lines {
			lineOrders = append(lineOrders, c.orderID)
			skus = append(skus, l.SKU)
			qtys = append(qtys, l.Quantity)
			ledgerIDs = append(ledgerIDs, uuid.Must(uuid.NewV7()).String())
			total[l.SKU] += l.Quantity
		}
	}
	distinct := slices.Sorted(maps.Keys(total))
	sums := make([]int64, len(distinct))
	for i, sku := range distinct {
		sums[i] = total[sku]
	}
	hdr := events.TraceHeaders(calls[0].ctx)
	hdr[events.JSONPayloadHeader] = string(proto.MessageName(&eventsv1.StockLevelEvent{}))
	headers, err := json.Marshal(hdr)
	if err != nil {
		return nil, err
	}
	return []any{orders, created, expires, lineOrders, skus, qtys, ledgerIDs,
		latest, eventSource, string(headers), distinct, sums}, nil
}

// reserveTx is the transaction of a batch, two flights (see
// inventory_pipeline.go). The first inserts every call's reservation row
// (the primary key tells which orders already had one: on PostgreSQL a
// concurrent insert of the same order waits for the other transaction) and
// locks the stock rows of every SKU named, in SKU order so that
// transactions never deadlock. Go then decides each call against the
// locked levels. The second flight writes what was decided and commits;
// the stock UPDATEs are not conditional because the rows are locked and
// the decision exact, and the stock_no_oversell constraint would refuse
// (and roll back) any UPDATE that oversold.
func (s *inventoryStore) reserveTx(ctx context.Context, calls []*reserveCall, outcomes []reserveOutcome) error {
	orders := make([][]any, len(calls))
	var skus []string
	for i, c := range calls {
		orders[i] = []any{c.orderID, StatusReserved, c.now, c.expires, c.now}
		for _, l := range c.lines {
			skus = append(skus, l.SKU)
		}
	}
	slices.Sort(skus)
	skus = slices.Compact(skus)

	return inFlights(ctx, s.db, func(tx sender) (*flight, error) {
		var f flight
		inserted := make(map[string]bool, len(calls))
		q, args := sqldb.MultiInsert(`INSERT INTO reservations (order_id, status, created_at, expires_at, updated_at)`, orders)
		f.query(func(row scanner) error {
			var id string
			err := row.Scan(&id)
			inserted[id] = true
			return err
		}, q+` ON CONFLICT (order_id) DO NOTHING RETURNING order_id`, args...)
		levels := make(map[string]Level, len(skus))
		in, args := sqldb.Placeholders(skus)
		q = `SELECT ` + levelCols + ` FROM stock WHERE sku IN (` + in + `) ORDER BY sku`
		if s.db.Dialect == sqldb.Postgres {
			q += ` FOR UPDATE`
		}
		f.query(func(row scanner) error {
			l, err := scanLevel(row)
			levels[l.SKU] = l
			return err
		}, q, args...)
		if err := tx.send(ctx, &f); err != nil {
			return nil, err
		}
		return s.decide(ctx, calls, outcomes, inserted, levels)
	})
}

// decide takes the calls in turn against what is left, fills their
// outcomes and returns the flight that records the accepted ones.
func (s *inventoryStore) decide(ctx context.Context, calls []*reserveCall, outcomes []reserveOutcome,
	inserted map[string]bool, levels map[string]Level) (*flight, error) {
	var (
		last     = &flight{}
		left     = make(map[string]int64, len(levels))
		held     = make(map[string]int64, len(levels)) // units reserved per SKU by this batch
		refused  []string
		lineRows [][]any
		ledger   [][]any
		latest   time.Time
	)
	for sku, l := range levels {
		left[sku] = l.Available()
	}
	for i, c := range calls {
		if !inserted[c.orderID] {
			outcomes[i].existed = true
			continue
		}
		if err := fits(c.lines, levels, left); err != nil {
			outcomes[i].err = err
			refused = append(refused, c.orderID)
			continue
		}
		for _, l := range c.lines {
			left[l.SKU] -= l.Quantity
			held[l.SKU] += l.Quantity
			lineRows = append(lineRows, []any{c.orderID, l.SKU, l.Quantity})
			ledger = append(ledger, ledgerRow{sku: l.SKU, dReserved: l.Quantity, reason: ReasonReserved,
				actor: actorSystem, orderID: c.orderID, at: c.now}.values())
		}
		if c.now.After(latest) {
			latest = c.now
		}
		outcomes[i].res = Reservation{OrderID: c.orderID, Status: StatusReserved, ExpiresAt: c.expires, Lines: c.lines}
	}
	if len(refused) > 0 {
		in, args := sqldb.Placeholders(refused)
		last.exec(`DELETE FROM reservations WHERE order_id IN (`+in+`)`, args...)
	}
	if len(lineRows) == 0 {
		return last, nil
	}
	q, args := sqldb.MultiInsert(`INSERT INTO reservation_lines (order_id, sku, quantity)`, lineRows)
	last.exec(q, args...)
	q, args = sqldb.MultiInsert(ledgerInsert, ledger)
	last.exec(q, args...)
	var (
		changes []change
		update  strings.Builder // one UPDATE for every SKU: reserved + CASE sku WHEN … THEN … END
		upArgs  = []any{latest}
	)
	update.WriteString(`UPDATE stock SET updated_at = ` + stampAt("$1") + `, reserved = reserved + CASE sku`)
	skus := slices.Sorted(maps.Keys(held))
	for _, sku := range skus {
		before := levels[sku]
		after := before
		after.Reserved += held[sku]
		after.UpdatedAt = laterOf(before.UpdatedAt, latest)
		changes = append(changes, change{before: before, after: after, reason: ReasonReserved, actor: actorSystem, at: latest})
		upArgs = append(upArgs, sku, held[sku])
		fmt.Fprintf(&update, " WHEN $%d THEN CAST($%d AS BIGINT)", len(upArgs)-1, len(upArgs))
	}
	update.WriteString(" END WHERE sku IN (")
	for i := range skus {
		if i > 0 {
			update.WriteString(", ")
		}
		fmt.Fprintf(&update, "$%d", 2+2*i) // the WHEN values
	}
	update.WriteString(")")
	last.exec(update.String(), upArgs...)
	evs, err := changeEvents(ctx, changes...)
	if err != nil {
		return nil, err
	}
	if len(evs) > 0 {
		q, args := events.OutboxInsert(evs)
		last.exec(q, args...)
	}
	return last, nil
}

// fits checks a call's lines against what is left: NotFound for a SKU
// without stock, Conflict for one with too little.
func fits(lines []ReserveLine, levels map[string]Level, left map[string]int64) error {
	for _, l := range lines {
		if _, ok := levels[l.SKU]; !ok {
			return errs.E(errs.NotFound, "no stock recorded for SKU %s", l.SKU)
		}
		if left[l.SKU] < l.Quantity {
			return errs.E(errs.Conflict, "insufficient stock for SKU %s: %d available, %d requested", l.SKU, max(left[l.SKU], 0), l.Quantity)
		}
	}
	return nil
}
