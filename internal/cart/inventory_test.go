package cart

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	cartv1 "github.com/mallhive/mallhive/internal/gen/mallhive/cart/v1"
	eventsv1 "github.com/mallhive/mallhive/internal/gen/mallhive/events/v1"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

// TestOversell: stock 100, 1,000 concurrent single-unit reservations
// released together by a barrier. Exactly 100 succeed, available never goes
// below zero, and the ledger and outbox agree with the stock row.
func TestOversell(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		h := newHarness(t, db, nil, "")
		ctx := context.Background()
		const stock, buyers = 100, 1000
		h.stock(sellerA, "HOT-1", stock)

		var (
			start      = make(chan struct{})
			wg         sync.WaitGroup
			ok, refuse atomic.Int64
			unexpected = make(chan error, buyers)
		)
		// Half the buyers go through a second store, as through a second
		// replica of the service: its reservation transactions race the
		// first one's in the database.
		replica := *h.svc.inventory
		replica.store = newInventoryStore(db)
		for i := range buyers {
			inv := h.svc.inventory
			if i%2 == 1 {
				inv = &replica
			}
			wg.Go(func() {
				<-start
				_, err := inv.Reserve(ctx, fmt.Sprintf("order-%04d", i), []ReserveLine{{SKU: "HOT-1", Quantity: 1}}, 0)
				switch {
				case err == nil:
					ok.Add(1)
				case errs.Is(err, errs.Conflict):
					refuse.Add(1)
				default:
					unexpected <- err
				}
			})
		}
		// Watch available while the storm runs.
		stop := make(chan struct{})
		var watched sync.WaitGroup
		var lowest atomic.Int64
		lowest.Store(stock)
		watched.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var onHand, reserved int64
				if err := db.QueryRow(`SELECT on_hand, reserved FROM stock WHERE sku = 'HOT-1'`).Scan(&onHand, &reserved); err == nil {
					if a := onHand - reserved; a < lowest.Load() {
						lowest.Store(a)
					}
				}
				time.Sleep(time.Millisecond)
			}
		})
		close(start)
		wg.Wait()
		close(stop)
		watched.Wait()
		close(unexpected)
		for err := range unexpected {
			t.Errorf("unexpected reserve error: %v", err)
		}

		if ok.Load() != stock || refuse.Load() != buyers-stock {
			t.Fatalf("%d reservations succeeded and %d were refused; want %d and %d", ok.Load(), refuse.Load(), stock, buyers-stock)
		}
		if lowest.Load() < 0 {
			t.Fatalf("available was seen at %d", lowest.Load())
		}
		l := h.level("HOT-1")
		if l.OnHand != stock || l.Reserved != stock || l.Available() != 0 {
			t.Fatalf("after the storm: %+v", l)
		}
		checkLedger(t, db, "HOT-1")
		if n := count(t, db, `SELECT COUNT(*) FROM reservations WHERE status = 'reserved'`); n != stock {
			t.Fatalf("%d reservations stored, want %d", n, stock)
		}
		if n := count(t, db, `SELECT COALESCE(SUM(quantity), 0) FROM reservation_lines`); n != stock {
			t.Fatalf("reservation lines hold %d units, want %d", n, stock)
		}
		types := outboxTypes(t, db, "HOT-1")
		counts := map[string]int{}
		for _, typ := range types {
			counts[typ]++
		}
		// One change for the initial stock and one per transaction of
		// reservations (concurrent ones share a transaction); the threshold
		// (5) and zero are each crossed once; the last change says sold out.
		if counts[EventStockChanged] < 2 || counts[EventStockChanged] > stock+1 || counts[EventStockLow] != 1 || counts[EventStockOut] != 1 {
			t.Fatalf("outbox events %v", counts)
		}
		var headers string
		var payload []byte
		if err := db.QueryRow(`SELECT headers, payload FROM outbox WHERE subject = 'HOT-1' AND type = $1 ORDER BY id DESC LIMIT 1`, EventStockChanged).Scan(&headers, &payload); err != nil {
			t.Fatal(err)
		}
		if last := outboxStockEvent(t, headers, payload); last.GetAvailable() != 0 || last.GetReserved() != stock {
			t.Fatalf("last stock.changed %v", last)
		}
		// The relay publishes in id order and the stock stream keeps each
		// SKU's last event, so ids follow the order the changes committed.
		rows, err := db.Query(`SELECT headers, payload FROM outbox WHERE subject = 'HOT-1' AND type = $1 ORDER BY id`, EventStockChanged)
		if err != nil {
			t.Fatal(err)
		}
		reserved := int64(-1)
		for rows.Next() {
			if err := rows.Scan(&headers, &payload); err != nil {
				t.Fatal(err)
			}
			ev := outboxStockEvent(t, headers, payload)
			if ev.GetReserved() < reserved {
				t.Fatalf("stock.changed in id order went from reserved %d back to %d", reserved, ev.GetReserved())
			}
			reserved = ev.GetReserved()
		}
		rows.Close()
		t.Logf("%d reservations in %d transactions", stock, counts[EventStockChanged]-1)

		// Settle them all concurrently: half commit, half release.
		var ids []string
		rows, err = db.Query(`SELECT order_id FROM reservations ORDER BY order_id`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			_ = rows.Scan(&id)
			ids = append(ids, id)
		}
		rows.Close()
		for i, id := range ids {
			wg.Go(func() {
				var err error
				if i%2 == 0 {
					err = h.svc.inventory.Commit(ctx, id)
				} else {
					err = h.svc.inventory.Release(ctx, id, "cancelled")
				}
				if err != nil {
					t.Errorf("settle %s: %v", id, err)
				}
			})
		}
		wg.Wait()
		l = h.level("HOT-1")
		if l.OnHand != stock/2 || l.Reserved != 0 {
			t.Fatalf("after settling: %+v", l)
		}
		checkLedger(t, db, "HOT-1")
	})
}

// TestCommitRacesSweeper: a reservation reaching its expiry while its
// commit races the sweeper ends committed or expired, never both, and the
// stock matches the outcome.
func TestCommitRacesSweeper(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		h := newHarness(t, db, nil, "")
		ctx := context.Background()
		const initial = 10_000
		h.stock(sellerA, "RACE-1", initial)
		base := time.Now().UTC().Truncate(time.Microsecond)
		outcomes := map[string]int{}
		sold := int64(0)
		for i := range 150 {
			order := fmt.Sprintf("race-%03d", i)
			q := int64(1 + i%3)
			res, err := h.svc.inventory.reserveAt(ctx, order, []ReserveLine{{SKU: "RACE-1", Quantity: q}}, time.Minute, base)
			if err != nil {
				t.Fatal(err)
			}
			// The commit sees the reservation just alive, the sweeper just
			// expired: both are entitled to it, and the race decides.
			commitAt := res.ExpiresAt.Add(-time.Millisecond)
			sweepAt := res.ExpiresAt.Add(time.Duration(rand.IntN(2)) * time.Millisecond)
			var (
				commitErr error
				swept     int
				sweepErr  error
				wg        sync.WaitGroup
				go1       = make(chan struct{})
			)
			wg.Go(func() { <-go1; commitErr = h.svc.inventory.commitAt(ctx, order, commitAt) })
			wg.Go(func() { <-go1; swept, sweepErr = h.svc.inventory.sweepAt(ctx, sweepAt) })
			close(go1)
			wg.Wait()
			if sweepErr != nil {
				t.Fatal(sweepErr)
			}
			var status string
			if err := db.QueryRow(`SELECT status FROM reservations WHERE order_id = $1`, order).Scan(&status); err != nil {
				t.Fatal(err)
			}
			outcomes[status]++
			switch status {
			case StatusCommitted:
				if commitErr != nil || swept != 0 {
					t.Fatalf("%s committed, but commit said %v and the sweeper released %d", order, commitErr, swept)
				}
				sold += q
			case StatusExpired:
				if !errs.Is(commitErr, errs.Conflict) || swept != 1 {
					t.Fatalf("%s expired, but commit said %v and the sweeper released %d", order, commitErr, swept)
				}
			default:
				t.Fatalf("%s ended %s", order, status)
			}
			l := h.level("RACE-1")
			if l.Reserved != 0 || l.OnHand != initial-sold {
				t.Fatalf("after %s (%s): %+v, want on hand %d and nothing reserved", order, status, l, initial-sold)
			}
		}
		checkLedger(t, db, "RACE-1")
		t.Logf("outcomes: %v", outcomes)

		// A commit that comes after the expiry, before any sweep, releases
		// the reservation itself and fails.
		res, err := h.svc.inventory.reserveAt(ctx, "late-commit", []ReserveLine{{SKU: "RACE-1", Quantity: 5}}, time.Minute, base)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.svc.inventory.commitAt(ctx, "late-commit", res.ExpiresAt); !errs.Is(err, errs.Conflict) {
			t.Fatalf("late commit: %v", err)
		}
		if l := h.level("RACE-1"); l.Reserved != 0 {
			t.Fatalf("late commit left %d reserved", l.Reserved)
		}
		if n, err := h.svc.inventory.sweepAt(ctx, res.ExpiresAt.Add(time.Hour)); err != nil || n != 0 {
			t.Fatalf("sweep after late commit: %d, %v", n, err)
		}
		checkLedger(t, db, "RACE-1")
	})
}

// TestReservationRetries: the order service's calls retried and
// redelivered (same order id) change stock once; the RPC codes are those
// the proto documents.
func TestReservationRetries(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		h := newHarness(t, db, nil, "")
		ctx := context.Background()
		h.stock(sellerA, "A-1", 10)
		h.stock(sellerA, "A-2", 10)
		h.stock(sellerB, "B-1", 3)

		reserve := func(order string, lines ...*cartv1.ReserveLine) (*cartv1.ReserveResponse, error) {
			res, err := h.inv.Reserve(ctx, connect.NewRequest(&cartv1.ReserveRequest{OrderId: order, Lines: lines}))
			if err != nil {
				return nil, err
			}
			return res.Msg, nil
		}
		line := func(sku string, q int32) *cartv1.ReserveLine { return &cartv1.ReserveLine{Sku: sku, Quantity: q} }
		commit := func(order string) error {
			_, err := h.inv.Commit(ctx, connect.NewRequest(&cartv1.CommitRequest{OrderId: order}))
			return err
		}
		release := func(order string) error {
			_, err := h.inv.Release(ctx, connect.NewRequest(&cartv1.ReleaseRequest{OrderId: order, Reason: "payment_failed"}))
			return err
		}
		wantLevels := func(step string, want map[string][2]int64) {
			t.Helper()
			for sku, w := range want {
				l := h.level(sku)
				if l.OnHand != w[0] || l.Reserved != w[1] {
					t.Fatalf("%s: %s on hand %d reserved %d, want %d and %d", step, sku, l.OnHand, l.Reserved, w[0], w[1])
				}
				checkLedger(t, db, sku)
			}
		}

		// Reserve, retried concurrently and redelivered later.
		var wg sync.WaitGroup
		results := make([]*cartv1.ReserveResponse, 8)
		for i := range results {
			wg.Go(func() {
				res, err := reserve("order-1", line("A-2", 2), line("A-1", 3))
				if err != nil {
					t.Errorf("reserve attempt %d: %v", i, err)
				}
				results[i] = res
			})
		}
		wg.Wait()
		for _, r := range results[1:] {
			if !proto.Equal(r, results[0]) {
				t.Fatalf("retries answered differently: %v and %v", r, results[0])
			}
		}
		if got := results[0].GetLines(); len(got) != 2 || got[0].GetSku() != "A-1" || got[0].GetQuantity() != 3 {
			t.Fatalf("reserved lines %v", got)
		}
		wantLevels("reserved", map[string][2]int64{"A-1": {10, 3}, "A-2": {10, 2}})
		if n := count(t, db, `SELECT COUNT(*) FROM stock_ledger WHERE order_id = 'order-1'`); n != 2 {
			t.Fatalf("%d ledger rows for order-1, want 2", n)
		}

		cases := []struct {
			name string
			call func() error
			want connect.Code
		}{
			{"same order, other lines", func() error { _, err := reserve("order-1", line("A-1", 4)); return err }, connect.CodeAlreadyExists},
			{"commit", func() error { return commit("order-1") }, 0},
			{"commit redelivered", func() error { return commit("order-1") }, 0},
			{"reserve after commit", func() error { _, err := reserve("order-1", line("A-1", 3), line("A-2", 2)); return err }, 0},
			{"release after commit", func() error { return release("order-1") }, connect.CodeFailedPrecondition},
			{"commit unknown order", func() error { return commit("order-404") }, connect.CodeNotFound},
			{"insufficient", func() error { _, err := reserve("order-2", line("A-1", 1), line("B-1", 4)); return err }, connect.CodeFailedPrecondition},
			{"unknown sku", func() error { _, err := reserve("order-3", line("A-1", 1), line("NOPE", 1)); return err }, connect.CodeNotFound},
			{"empty order id", func() error { _, err := reserve("", line("A-1", 1)); return err }, connect.CodeInvalidArgument},
			{"no lines", func() error { _, err := reserve("order-4"); return err }, connect.CodeInvalidArgument},
			{"zero quantity", func() error { _, err := reserve("order-4", line("A-1", 0)); return err }, connect.CodeInvalidArgument},
			{"negative quantity", func() error { _, err := reserve("order-4", line("A-1", -1)); return err }, connect.CodeInvalidArgument},
			{"duplicate sku", func() error { _, err := reserve("order-4", line("A-1", 1), line("A-1", 1)); return err }, connect.CodeInvalidArgument},
			{"too many lines", func() error {
				lines := make([]*cartv1.ReserveLine, MaxReserveLines+1)
				for i := range lines {
					lines[i] = line(fmt.Sprintf("X-%d", i), 1)
				}
				_, err := reserve("order-4", lines...)
				return err
			}, connect.CodeInvalidArgument},
			{"negative ttl", func() error {
				_, err := h.inv.Reserve(ctx, connect.NewRequest(&cartv1.ReserveRequest{OrderId: "order-4",
					Lines: []*cartv1.ReserveLine{line("A-1", 1)}, Ttl: durationpb.New(-time.Second)}))
				return err
			}, connect.CodeInvalidArgument},
			{"bad order id", func() error { _, err := reserve("order 4; drop", line("A-1", 1)); return err }, connect.CodeInvalidArgument},
		}
		for _, c := range cases {
			if got := connectCodeOf(c.call()); got != c.want {
				t.Fatalf("%s: code %v, want %v", c.name, got, c.want)
			}
		}
		// Only order-1's commit changed stock: once.
		wantLevels("after the matrix", map[string][2]int64{"A-1": {7, 0}, "A-2": {8, 0}, "B-1": {3, 0}})

		// Release, retried concurrently; then the order is dead.
		if _, err := reserve("order-5", line("B-1", 3)); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			wg.Go(func() {
				if err := release("order-5"); err != nil {
					t.Errorf("release: %v", err)
				}
			})
		}
		wg.Wait()
		wantLevels("released", map[string][2]int64{"B-1": {3, 0}})
		for name, call := range map[string]func() error{
			"commit after release":  func() error { return commit("order-5") },
			"reserve after release": func() error { _, err := reserve("order-5", line("B-1", 3)); return err },
		} {
			if got := connectCodeOf(call()); got != connect.CodeFailedPrecondition {
				t.Fatalf("%s: %v", name, got)
			}
		}

		// A Release that overtakes its Reserve leaves a tombstone.
		if err := release("order-6"); err != nil {
			t.Fatal(err)
		}
		if _, err := reserve("order-6", line("B-1", 1)); connectCodeOf(err) != connect.CodeFailedPrecondition {
			t.Fatalf("reserve after early release: %v", err)
		}
		wantLevels("tombstone", map[string][2]int64{"B-1": {3, 0}})

		// The TTL is capped at the maximum.
		before := time.Now()
		res, err := h.inv.Reserve(ctx, connect.NewRequest(&cartv1.ReserveRequest{OrderId: "order-7",
			Lines: []*cartv1.ReserveLine{line("A-1", 1)}, Ttl: durationpb.New(100 * time.Hour)}))
		if err != nil {
			t.Fatal(err)
		}
		if exp := res.Msg.GetExpiresAt().AsTime(); exp.After(before.Add(DefaultConfig().MaxReservationTTL + time.Minute)) {
			t.Fatalf("expires at %v: TTL not capped", exp)
		}

		// GetStock leaves unknown SKUs out.
		st, err := h.inv.GetStock(ctx, connect.NewRequest(&cartv1.GetStockRequest{Skus: []string{"A-1", "NOPE", "B-1"}}))
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Msg.GetLevels()) != 2 || st.Msg.GetLevels()[0].GetAvailable() != 6 || st.Msg.GetLevels()[1].GetSellerId() != sellerB.id {
			t.Fatalf("GetStock: %v", st.Msg.GetLevels())
		}
		if _, err := h.inv.GetStock(ctx, connect.NewRequest(&cartv1.GetStockRequest{})); connectCodeOf(err) != connect.CodeInvalidArgument {
			t.Fatalf("GetStock without SKUs: %v", err)
		}
	})
}

// TestStockEvents: each change writes its stock events to the outbox in its
// own transaction; threshold events fire once per crossing; a refused
// change writes none.
func TestStockEvents(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		h := newHarness(t, db, nil, "")
		ctx := context.Background()
		inv := h.svc.inventory
		h.catalog.put("EV-1", sellerA.id, ProductActive, 500, "EUR")
		low := int64(3)

		steps := []struct {
			name      string
			do        func() error
			types     []string
			available int64
			reason    string
			fails     bool
		}{
			{"set", func() error { _, _, err := inv.Set(ctx, sellerA.id, "EV-1", 10, &low); return err },
				[]string{EventStockChanged}, 10, ReasonAdjusted, false},
			{"reserve into low", func() error { _, err := inv.Reserve(ctx, "o1", []ReserveLine{{"EV-1", 7}}, 0); return err },
				[]string{EventStockChanged, EventStockLow}, 3, ReasonReserved, false},
			{"reserve while low", func() error { _, err := inv.Reserve(ctx, "o2", []ReserveLine{{"EV-1", 1}}, 0); return err },
				[]string{EventStockChanged}, 2, ReasonReserved, false},
			{"refused reserve", func() error { _, err := inv.Reserve(ctx, "o3", []ReserveLine{{"EV-1", 3}}, 0); return err },
				nil, 2, "", true},
			{"reserve to zero", func() error { _, err := inv.Reserve(ctx, "o4", []ReserveLine{{"EV-1", 2}}, 0); return err },
				[]string{EventStockChanged, EventStockOut}, 0, ReasonReserved, false},
			{"refused adjust", func() error { _, err := inv.Adjust(ctx, sellerA.id, "EV-1", -1, "broken"); return err },
				nil, 0, "", true},
			{"release", func() error { return inv.Release(ctx, "o4", "cancelled") },
				[]string{EventStockChanged}, 2, ReasonReleased, false},
			{"restock", func() error { _, err := inv.Adjust(ctx, sellerA.id, "EV-1", 20, "delivery"); return err },
				[]string{EventStockChanged}, 22, ReasonRestocked, false},
			{"commit", func() error { return inv.Commit(ctx, "o1") },
				[]string{EventStockChanged}, 22, ReasonCommitted, false},
			{"set unchanged", func() error { _, _, err := inv.Set(ctx, sellerA.id, "EV-1", 23, &low); return err },
				nil, 22, "", false},
			{"set below threshold", func() error { _, _, err := inv.Set(ctx, sellerA.id, "EV-1", 4, nil); return err },
				[]string{EventStockChanged, EventStockLow}, 3, ReasonAdjusted, false},
		}
		seen := 0
		for _, s := range steps {
			err := s.do()
			if (err != nil) != s.fails {
				t.Fatalf("%s: err %v", s.name, err)
			}
			rows, qerr := db.Query(`SELECT type, headers, payload FROM outbox WHERE subject = 'EV-1' ORDER BY id`)
			if qerr != nil {
				t.Fatal(qerr)
			}
			var types []string
			last := &eventsv1.StockLevelEvent{}
			for i := 0; rows.Next(); i++ {
				var typ, headers string
				var payload []byte
				if err := rows.Scan(&typ, &headers, &payload); err != nil {
					t.Fatal(err)
				}
				if i >= seen {
					types = append(types, typ)
					last = outboxStockEvent(t, headers, payload)
				}
			}
			rows.Close()
			if !slices.Equal(types, s.types) {
				t.Fatalf("%s: new events %v, want %v", s.name, types, s.types)
			}
			seen += len(types)
			if len(types) > 0 && (last.GetAvailable() != s.available || last.GetReason() != s.reason ||
				last.GetSellerId() != sellerA.id || last.GetProductId() != "prod-EV-1" || last.GetAt() == nil) {
				t.Fatalf("%s: event payload %v", s.name, last)
			}
			if l := h.level("EV-1"); l.Available() != s.available {
				t.Fatalf("%s: available %d, want %d", s.name, l.Available(), s.available)
			}
			checkLedger(t, db, "EV-1")
		}
	})
}
