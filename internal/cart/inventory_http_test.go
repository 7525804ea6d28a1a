package cart

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

// TestSellerStock: the owning seller manages a SKU's stock; other sellers
// get 404, buyers 403, anonymous callers 401, and none of them write.
func TestSellerStock(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db *sqldb.DB) {
		h := newHarness(t, db, nil, "")
		h.catalog.put("SKU-A", sellerA.id, ProductActive, 1000, "EUR")
		h.catalog.put("SKU-B", sellerA.id, ProductActive, 1000, "EUR")
		h.catalog.put("SKU-C", sellerA.id, "draft", 1000, "EUR")
		h.catalog.put("SKU-Z", sellerB.id, ProductActive, 1000, "EUR")

		var s stockJSON
		h.do(sellerA, "PUT", "/api/v1/inventory/SKU-A", map[string]any{"on_hand": 10}).want(t, 201).json(t, &s)
		if s.SKU != "SKU-A" || s.SellerID != sellerA.id || s.ProductID != "prod-SKU-A" || s.OnHand != 10 || s.Available != 10 ||
			s.LowThreshold != DefaultConfig().LowThreshold {
			t.Fatalf("created %+v", s)
		}
		h.do(sellerA, "PUT", "/api/v1/inventory/SKU-A", map[string]any{"on_hand": 12, "low_threshold": 2}).want(t, 200).json(t, &s)
		if s.OnHand != 12 || s.LowThreshold != 2 {
			t.Fatalf("updated %+v", s)
		}
		h.do(sellerA, "PUT", "/api/v1/inventory/SKU-B", map[string]any{"on_hand": 1}).want(t, 201)
		h.do(sellerA, "PUT", "/api/v1/inventory/SKU-C", map[string]any{"on_hand": 0}).want(t, 201) // draft products can be stocked
		h.do(sellerB, "PUT", "/api/v1/inventory/SKU-Z", map[string]any{"on_hand": 7}).want(t, 201)

		before := snapshot(t, h)
		access := []struct {
			name   string
			who    user
			method string
			path   string
			body   any
			status int
		}{
			{"anonymous reads", anon, "GET", "/api/v1/inventory/SKU-A", nil, 401},
			{"anonymous lists", anon, "GET", "/api/v1/inventory", nil, 401},
			{"anonymous sets", anon, "PUT", "/api/v1/inventory/SKU-A", map[string]any{"on_hand": 1}, 401},
			{"anonymous adjusts", anon, "POST", "/api/v1/inventory/SKU-A/adjustments", map[string]any{"delta": 1, "reason": "x"}, 401},
			{"buyer reads", buyer1, "GET", "/api/v1/inventory/SKU-A", nil, 403},
			{"buyer lists", buyer1, "GET", "/api/v1/inventory", nil, 403},
			{"buyer sets", buyer1, "PUT", "/api/v1/inventory/SKU-A", map[string]any{"on_hand": 1}, 403},
			{"buyer adjusts", buyer1, "POST", "/api/v1/inventory/SKU-A/adjustments", map[string]any{"delta": 1, "reason": "x"}, 403},
			{"admin without seller role", user{id: "admin-1", roles: "admin"}, "GET", "/api/v1/inventory/SKU-A", nil, 403},
			{"other seller reads", sellerB, "GET", "/api/v1/inventory/SKU-A", nil, 404},
			{"other seller sets", sellerB, "PUT", "/api/v1/inventory/SKU-A", map[string]any{"on_hand": 1}, 404},
			{"other seller adjusts", sellerB, "POST", "/api/v1/inventory/SKU-A/adjustments", map[string]any{"delta": -1, "reason": "x"}, 404},
			{"other seller reads the ledger", sellerB, "GET", "/api/v1/inventory/SKU-A/ledger", nil, 404},
			{"other seller stocks a SKU first", sellerB, "PUT", "/api/v1/inventory/SKU-B2", map[string]any{"on_hand": 1}, 404},
			{"other seller's unstocked SKU", sellerB, "PUT", "/api/v1/inventory/SKU-NEW", map[string]any{"on_hand": 1}, 404},
			{"unknown SKU", sellerA, "PUT", "/api/v1/inventory/NOPE", map[string]any{"on_hand": 1}, 404},
			{"adjust before set", sellerA, "POST", "/api/v1/inventory/SKU-NEW/adjustments", map[string]any{"delta": 1, "reason": "x"}, 404},
			{"owner reads an unstocked SKU", sellerA, "GET", "/api/v1/inventory/SKU-NEW", nil, 404},
		}
		h.catalog.put("SKU-NEW", sellerA.id, ProductActive, 1000, "EUR")
		h.catalog.put("SKU-B2", sellerA.id, ProductActive, 1000, "EUR")
		for _, c := range access {
			t.Run(c.name, func(t *testing.T) {
				p := h.do(c.who, c.method, c.path, c.body).want(t, c.status).problem(t)
				if c.status == 404 && strings.Contains(p["detail"].(string), sellerA.id) {
					t.Fatalf("404 reveals the owner: %v", p)
				}
			})
		}
		if after := snapshot(t, h); after != before {
			t.Fatalf("refused requests wrote: %v -> %v", before, after)
		}

		// The owner reads, adjusts and lists.
		h.do(sellerA, "GET", "/api/v1/inventory/SKU-A", nil).want(t, 200).json(t, &s)
		if s.OnHand != 12 {
			t.Fatalf("read %+v", s)
		}
		h.do(sellerA, "POST", "/api/v1/inventory/SKU-A/adjustments", map[string]any{"delta": -2, "reason": "damaged in storage"}).want(t, 200).json(t, &s)
		if s.OnHand != 10 {
			t.Fatalf("adjusted %+v", s)
		}
		// Stock held by reservations cannot be taken away.
		if _, err := h.svc.inventory.Reserve(context.Background(), "order-1", []ReserveLine{{SKU: "SKU-A", Quantity: 8}}, 0); err != nil {
			t.Fatal(err)
		}
		p := h.do(sellerA, "PUT", "/api/v1/inventory/SKU-A", map[string]any{"on_hand": 7}).want(t, 409).problem(t)
		if !strings.Contains(p["detail"].(string), "8 units reserved") {
			t.Fatalf("problem %v", p)
		}
		h.do(sellerA, "POST", "/api/v1/inventory/SKU-A/adjustments", map[string]any{"delta": -3, "reason": "lost"}).want(t, 409)
		h.do(sellerA, "PUT", "/api/v1/inventory/SKU-A", map[string]any{"on_hand": 8}).want(t, 200)
		checkLedger(t, db, "SKU-A")

		var list struct {
			Items []stockJSON `json:"items"`
			Next  string      `json:"next_page_token"`
		}
		h.do(sellerA, "GET", "/api/v1/inventory?page_size=2", nil).want(t, 200).json(t, &list)
		if len(list.Items) != 2 || list.Items[0].SKU != "SKU-A" || list.Items[1].SKU != "SKU-B" || list.Next == "" {
			t.Fatalf("first page %+v", list)
		}
		next := list.Next
		list.Items, list.Next = nil, ""
		h.do(sellerA, "GET", "/api/v1/inventory?page_size=2&page_token="+next, nil).want(t, 200).json(t, &list)
		if len(list.Items) != 1 || list.Items[0].SKU != "SKU-C" || list.Next != "" {
			t.Fatalf("second page %+v", list)
		}
		list.Items = nil
		h.do(sellerB, "GET", "/api/v1/inventory", nil).want(t, 200).json(t, &list)
		if len(list.Items) != 1 || list.Items[0].SKU != "SKU-Z" {
			t.Fatalf("seller B's list %+v", list)
		}

		var ledger struct {
			Items []ledgerJSON `json:"items"`
			Next  string       `json:"next_page_token"`
		}
		h.do(sellerA, "GET", "/api/v1/inventory/SKU-A/ledger?page_size=3", nil).want(t, 200).json(t, &ledger)
		if len(ledger.Items) != 3 || ledger.Next == "" {
			t.Fatalf("ledger %+v", ledger)
		}
		if e := ledger.Items[0]; e.Reason != ReasonAdjusted || e.DeltaOnHand != -2 || e.Actor != sellerA.id {
			t.Fatalf("newest entry %+v", e)
		}
		if e := ledger.Items[1]; e.Reason != ReasonReserved || e.DeltaReserved != 8 || e.OrderID != "order-1" {
			t.Fatalf("reservation entry %+v", e)
		}
		if e := ledger.Items[2]; e.Note != "damaged in storage" || e.DeltaOnHand != -2 {
			t.Fatalf("adjustment entry %+v", e)
		}
		next = ledger.Next
		ledger.Items, ledger.Next = nil, ""
		h.do(sellerA, "GET", "/api/v1/inventory/SKU-A/ledger?page_size=3&page_token="+next, nil).want(t, 200).json(t, &ledger)
		if len(ledger.Items) != 2 || ledger.Next != "" || ledger.Items[1].DeltaOnHand != 10 || ledger.Items[1].OrderID != "" {
			t.Fatalf("ledger page 2 %+v", ledger)
		}
	})
}

// state is what a refused request must leave untouched.
type state struct {
	stock, ledger, outbox, reservations, carts, lines, redisKeys int
	sums                                                         string
}

func snapshot(tb testing.TB, h *harness) state {
	tb.Helper()
	s := state{
		stock:        count(tb, h.db, `SELECT COUNT(*) FROM stock`),
		ledger:       count(tb, h.db, `SELECT COUNT(*) FROM stock_ledger`),
		outbox:       count(tb, h.db, `SELECT COUNT(*) FROM outbox`),
		reservations: count(tb, h.db, `SELECT COUNT(*) FROM reservations`),
		carts:        count(tb, h.db, `SELECT COUNT(*) FROM carts`),
		lines:        count(tb, h.db, `SELECT COALESCE(SUM(quantity), 0) FROM cart_lines`),
	}
	var onHand, reserved, low int64
	if err := h.db.QueryRow(`SELECT COALESCE(SUM(on_hand), 0), COALESCE(SUM(reserved), 0), COALESCE(SUM(low_threshold), 0) FROM stock`).
		Scan(&onHand, &reserved, &low); err != nil {
		tb.Fatal(err)
	}
	s.sums = fmt.Sprintf("%d/%d/%d", onHand, reserved, low)
	if h.redis != nil {
		s.redisKeys = redisKeys(tb, h.redis, h.svc.cfg.RedisPrefix)
	}
	return s
}
