package cart

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/sqldb/sqldbtest"
)

// TestReserveBatchDecidesEachCall: one transaction holding calls of every
// kind gives each its own outcome, in arrival order against what is left,
// and writes only the accepted ones.
func TestReserveBatchDecidesEachCall(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		h := newHarness(t, db, nil, "")
		ctx := context.Background()
		inv := h.svc.inventory
		h.stock(sellerA, "B-1", 5)
		h.stock(sellerA, "B-2", 2)
		if _, err := inv.Reserve(ctx, "old", []ReserveLine{{"B-1", 1}}, 0); err != nil {
			t.Fatal(err)
		}
		now := inv.clock()
		call := func(order string, lines ...ReserveLine) *reserveCall {
			return &reserveCall{ctx: ctx, orderID: order, lines: lines, now: now, expires: now.Add(time.Hour),
				done: make(chan reserveOutcome, 1)}
		}
		calls := []*reserveCall{
			call("a", ReserveLine{"B-1", 3}, ReserveLine{"B-2", 1}),  // fits: B-1 4→1, B-2 2→1
			call("b", ReserveLine{"B-1", 2}),                         // only 1 of B-1 left
			call("old", ReserveLine{"B-1", 1}),                       // exists already
			call("c", ReserveLine{"B-2", 1}, ReserveLine{"NOPE", 1}), // unknown SKU: nothing of it
			call("d", ReserveLine{"B-1", 1}, ReserveLine{"B-2", 1}),  // exactly what is left
			call("e", ReserveLine{"B-2", 1}),                         // nothing left
		}
		inv.store.reserveBatch(ctx, calls)
		out := make(map[string]reserveOutcome)
		for _, c := range calls {
			out[c.orderID] = <-c.done
		}
		for _, ok := range []string{"a", "d"} {
			if o := out[ok]; o.err != nil || o.existed || o.res.Status != StatusReserved || len(o.res.Lines) != 2 {
				t.Errorf("%s: %+v", ok, o)
			}
		}
		if o := out["old"]; o.err != nil || !o.existed || o.res.Lines[0] != (ReserveLine{"B-1", 1}) {
			t.Errorf("old: %+v", o)
		}
		if o := out["b"]; !errs.Is(o.err, errs.Conflict) || !strings.HasSuffix(o.err.Error(), "insufficient stock for SKU B-1: 1 available, 2 requested") {
			t.Errorf("b: %v", o.err)
		}
		if o := out["c"]; !errs.Is(o.err, errs.NotFound) {
			t.Errorf("c: %v", o.err)
		}
		if o := out["e"]; !errs.Is(o.err, errs.Conflict) {
			t.Errorf("e: %v", o.err)
		}
		if l := h.level("B-1"); l.Reserved != 5 || l.Available() != 0 {
			t.Errorf("B-1 %+v", l)
		}
		if l := h.level("B-2"); l.Reserved != 2 || l.Available() != 0 {
			t.Errorf("B-2 %+v", l)
		}
		// Refused calls leave nothing behind, so their order ids stay free.
		if n := count(t, db, `SELECT COUNT(*) FROM reservations WHERE order_id IN ('b', 'c', 'e')`); n != 0 {
			t.Errorf("%d reservations of refused orders", n)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM stock_ledger WHERE order_id IN ('b', 'c', 'e')`); n != 0 {
			t.Errorf("%d ledger rows of refused orders", n)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM stock_ledger WHERE order_id IN ('a', 'd')`); n != 4 {
			t.Errorf("%d ledger rows of accepted orders, want one per line", n)
		}
		checkLedger(t, db, "B-1")
		checkLedger(t, db, "B-2")
		// One stock.changed per SKU for the whole transaction, and both
		// SKUs ran out in it.
		for _, sku := range []string{"B-1", "B-2"} {
			types := outboxTypes(t, db, sku)
			if got := fmt.Sprint(types[len(types)-2:]); got != "[stock.changed stock.out]" {
				t.Errorf("%s events %v", sku, types)
			}
		}
		h.stock(sellerA, "B-1", 7)
		if res, err := inv.Reserve(ctx, "b", []ReserveLine{{"B-1", 2}}, 0); err != nil || res.Lines[0].Quantity != 2 {
			t.Errorf("a refused order id is free again: %v %+v", err, res)
		}
	})
}

// TestReserveSameOrderConcurrently: the same order reserved from many
// callers at once is held once; callers with other lines are told so.
func TestReserveSameOrderConcurrently(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		h := newHarness(t, db, nil, "")
		ctx := context.Background()
		h.stock(sellerA, "S-1", 100)
		var wg sync.WaitGroup
		var same, differ atomic.Int64
		for i := range 40 {
			wg.Go(func() {
				q := int64(2)
				if i%4 == 0 {
					q = 3
				}
				_, err := h.svc.inventory.Reserve(ctx, "one-order", []ReserveLine{{"S-1", q}}, 0)
				switch {
				case err == nil:
					same.Add(1)
				case errors.Is(err, errLinesDiffer):
					differ.Add(1)
				default:
					t.Errorf("reserve: %v", err)
				}
			})
		}
		wg.Wait()
		l := h.level("S-1")
		if l.Reserved != 2 && l.Reserved != 3 {
			t.Fatalf("reserved %d, want one order's lines", l.Reserved)
		}
		if same.Load()+differ.Load() != 40 || same.Load() == 0 {
			t.Fatalf("%d same, %d differ", same.Load(), differ.Load())
		}
		checkLedger(t, db, "S-1")
	})
}

// TestReserveBatcherQueue: the queue answers every call, never runs more
// than reserveParallel transactions, gathers what waits into one batch,
// never puts one order twice in a batch and drops callers that left.
func TestReserveBatcherQueue(t *testing.T) {
	t.Parallel()
	var (
		running, most atomic.Int64
		taken         atomic.Int64
		mu            sync.Mutex
		sizes         []int
		release       = make(chan struct{})
	)
	b := newReserveBatcher(func(_ context.Context, calls []*reserveCall) {
		if n := running.Add(1); n > most.Load() {
			most.Store(n)
		}
		taken.Add(int64(len(calls)))
		<-release
		seen := map[string]bool{}
		for _, c := range calls {
			if seen[c.orderID] {
				t.Errorf("order %s twice in one batch", c.orderID)
			}
			seen[c.orderID] = true
			c.done <- reserveOutcome{res: Reservation{OrderID: c.orderID}}
		}
		mu.Lock()
		sizes = append(sizes, len(calls))
		mu.Unlock()
		running.Add(-1)
	})
	ctx := context.Background()
	var wg sync.WaitGroup
	answered := make(chan string, 200)
	for i := range 200 {
		wg.Go(func() {
			o := b.do(&reserveCall{ctx: ctx, orderID: fmt.Sprintf("o-%d", i%150), lines: []ReserveLine{{"X", 1}}})
			answered <- o.res.OrderID
		})
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if o := b.do(&reserveCall{ctx: gone, orderID: "left"}); !errors.Is(o.err, context.Canceled) {
		t.Errorf("a caller that left: %+v", o)
	}
	// Let every call reach the two blocked batches or the queue behind
	// them, then let go.
	eventually(t, "200 calls queued", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return running.Load() == reserveParallel && taken.Load()+int64(len(b.queue)) >= 200
	})
	close(release)
	wg.Wait()
	close(answered)
	n := 0
	for id := range answered {
		if id == "" {
			t.Error("a call was answered without its reservation")
		}
		n++
	}
	if n != 200 || most.Load() > reserveParallel {
		t.Fatalf("%d answered, %d batches ran at once", n, most.Load())
	}
	// Two batches were blocked with a call each; the rest gathered into
	// batches of up to 150 distinct orders.
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) > 6 {
		t.Fatalf("batch sizes %v: the waiting calls were not gathered", sizes)
	}
}

// TestReserveAtOnce: on PostgreSQL a batch whose orders are new and whose
// lines fit is one statement; any other batch fails it without writing a
// thing, leaving the decisions to the two-flight transaction.
func TestReserveAtOnce(t *testing.T) {
	t.Parallel()
	db := sqldbtest.Open(t, sqldb.Postgres, Name, migrationSets)
	h := newHarness(t, db, nil, "")
	ctx := context.Background()
	store := h.svc.inventory.store
	h.stock(sellerA, "F-1", 10)
	h.stock(sellerA, "F-2", 3)
	low := int64(4)
	if _, _, err := h.svc.inventory.Set(ctx, sellerA.id, "F-1", 10, &low); err != nil {
		t.Fatal(err)
	}
	now := h.svc.inventory.clock()
	call := func(order string, lines ...ReserveLine) *reserveCall {
		return &reserveCall{ctx: ctx, orderID: order, lines: lines, now: now, expires: now.Add(time.Hour)}
	}
	state := func() string {
		return fmt.Sprintf("%+v %+v reservations=%d lines=%d ledger=%d outbox=%d", h.level("F-1"), h.level("F-2"),
			count(t, db, `SELECT COUNT(*) FROM reservations`), count(t, db, `SELECT COUNT(*) FROM reservation_lines`),
			count(t, db, `SELECT COUNT(*) FROM stock_ledger`), count(t, db, `SELECT COUNT(*) FROM outbox`))
	}

	idBefore := uuid.Must(uuid.NewV7()).String()
	if err := store.reserveAtOnce(ctx, []*reserveCall{
		call("f1", ReserveLine{"F-1", 4}, ReserveLine{"F-2", 1}),
		call("f2", ReserveLine{"F-1", 2}),
		call("f3", ReserveLine{"F-2", 2}),
	}); err != nil {
		t.Fatalf("a batch that fits: %v", err)
	}
	idAfter := uuid.Must(uuid.NewV7()).String()
	// The statement's event ids are UUIDv7 that sort with the ones Go
	// makes: after those made before it, before those made after it.
	var ids []string
	rows, err := db.Query(`SELECT id FROM outbox WHERE id > $1 ORDER BY id`, idBefore)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) != 4 { // F-1 changed and low, F-2 changed and out
		t.Fatalf("statement wrote events %v", ids)
	}
	for _, id := range ids {
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 || u.String() != id || id >= idAfter {
			t.Fatalf("event id %s (%v): not a UUIDv7 between %s and %s", id, err, idBefore, idAfter)
		}
	}
	if l := h.level("F-1"); l.Reserved != 6 {
		t.Fatalf("F-1 %+v", l)
	}
	if l := h.level("F-2"); l.Reserved != 3 {
		t.Fatalf("F-2 %+v", l)
	}
	checkLedger(t, db, "F-1")
	checkLedger(t, db, "F-2")
	if n := count(t, db, `SELECT COUNT(*) FROM reservation_lines WHERE order_id IN ('f1', 'f2', 'f3')`); n != 4 {
		t.Fatalf("%d reservation lines", n)
	}
	// F-1 went 10 → 4 across its threshold (4), F-2 3 → 0.
	want := map[string][]string{
		"F-1": {EventStockChanged, EventStockChanged, EventStockChanged, EventStockLow}, // set, threshold, batch
		"F-2": {EventStockChanged, EventStockChanged, EventStockOut},
	}
	for sku, types := range want {
		if got := outboxTypes(t, db, sku); !slices.Equal(got, types) {
			t.Fatalf("%s events %v, want %v", sku, got, types)
		}
		var headers string
		var payload []byte
		if err := db.QueryRow(`SELECT headers, payload FROM outbox WHERE subject = $1 AND type = $2 ORDER BY id DESC LIMIT 1`,
			sku, EventStockChanged).Scan(&headers, &payload); err != nil {
			t.Fatal(err)
		}
		ev := outboxStockEvent(t, headers, payload)
		l := h.level(sku)
		if ev.GetSku() != sku || ev.GetOnHand() != l.OnHand || ev.GetReserved() != l.Reserved || ev.GetAvailable() != l.Available() ||
			ev.GetLowThreshold() != l.LowThreshold || ev.GetSellerId() != sellerA.id || ev.GetProductId() != "prod-"+sku ||
			ev.GetReason() != ReasonReserved || !ev.GetAt().AsTime().Equal(now) {
			t.Fatalf("%s event %v, level %+v", sku, ev, l)
		}
	}

	before := state()
	for name, calls := range map[string][]*reserveCall{
		"existing order": {call("g1", ReserveLine{"F-1", 1}), call("f1", ReserveLine{"F-1", 1})},
		"too few":        {call("g1", ReserveLine{"F-1", 1}), call("g2", ReserveLine{"F-1", 4})},
		"unknown SKU":    {call("g1", ReserveLine{"F-1", 1}), call("g2", ReserveLine{"NOPE", 1})},
	} {
		if err := store.reserveAtOnce(ctx, calls); err == nil {
			t.Fatalf("%s: no error", name)
		}
		if after := state(); after != before {
			t.Fatalf("%s changed something:\n%s\n%s", name, before, after)
		}
	}
}

// TestStockTimesNeverGoBack: a change whose clock reads earlier than the
// SKU's last change (a transaction that committed after a later-stamped
// one) still moves updated_at and the event's time forward, on every path
// that writes stock, so readers keeping the newest level never drop it.
func TestStockTimesNeverGoBack(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		h := newHarness(t, db, nil, "")
		ctx := context.Background()
		inv := h.svc.inventory
		store := inv.store
		h.stock(sellerA, "T-1", 100)
		h.stock(sellerA, "T-2", 100)
		latest := h.level("T-1").UpdatedAt
		earlier := latest.Add(-time.Hour)
		lastEventAt := func(sku string) time.Time {
			var headers string
			var payload []byte
			if err := db.QueryRow(`SELECT headers, payload FROM outbox WHERE subject = $1 ORDER BY id DESC LIMIT 1`, sku).Scan(&headers, &payload); err != nil {
				t.Fatal(err)
			}
			return outboxStockEvent(t, headers, payload).GetAt().AsTime()
		}
		check := func(step string, sku string) {
			t.Helper()
			if got := h.level(sku).UpdatedAt; !got.Equal(latest) {
				t.Fatalf("%s: updated_at %s, want it kept at %s", step, got, latest)
			}
			if got := lastEventAt(sku); !got.Equal(latest) {
				t.Fatalf("%s: event at %s, want %s", step, got, latest)
			}
		}
		if _, err := inv.reserveAt(ctx, "early-1", []ReserveLine{{"T-1", 1}}, 0, earlier); err != nil {
			t.Fatal(err)
		}
		check("reserve", "T-1")
		// A batch with a refused call takes the two-flight path on both engines.
		call := func(order string, l ReserveLine) *reserveCall {
			return &reserveCall{ctx: ctx, orderID: order, lines: []ReserveLine{l}, now: earlier, expires: earlier.Add(time.Hour * 2),
				done: make(chan reserveOutcome, 1)}
		}
		calls := []*reserveCall{call("early-2", ReserveLine{"T-1", 1}), call("too-many", ReserveLine{"T-2", 1000})}
		store.reserveBatch(ctx, calls)
		if o := <-calls[0].done; o.err != nil {
			t.Fatal(o.err)
		}
		check("reserve in a shared transaction", "T-1")
		if _, err := store.adjust(ctx, sellerA.id, "T-1", 5, "delivery", earlier); err != nil {
			t.Fatal(err)
		}
		check("adjust", "T-1")
		if _, err := store.set(ctx, sellerA.id, "T-1", 200, nil, earlier); err != nil {
			t.Fatal(err)
		}
		check("set", "T-1")
		if _, err := store.release(ctx, "early-1", "cancelled", earlier); err != nil {
			t.Fatal(err)
		}
		check("release", "T-1")
		checkLedger(t, db, "T-1")
	})
}
