package catalog

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/mallhive/mallhive/internal/gen/mallhive/events/v1"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

// TestEvents runs the service against a real embedded JetStream: stock
// events become availability, and the outbox reaches the product stream.
func TestEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bus, err := events.Open(ctx, events.Config{DataDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	ts := newTestService(t, sqldb.SQLite, bus)
	cat := ts.category("things", "", 0)
	p := ts.product(sellerA, "Stocked", cat.ID, StatusActive, 1000, 2000)

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ts.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})

	at := time.Now()
	publish := func(typ, sku string, available int64, when time.Time) events.Event {
		t.Helper()
		ev, err := events.New(ctx, "mallhive/cart", typ, sku, &eventsv1.StockLevelEvent{
			Sku: sku, ProductId: p.ID, SellerId: sellerA.id, OnHand: available, Available: available,
			LowThreshold: 3, Reason: "adjusted", At: timestamppb.New(when),
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bus.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	availabilityOf := func(i int) string {
		var got Product
		ts.do("GET", "/api/v1/products/"+p.ID, buyer, nil).must(t, http.StatusOK).json(t, &got)
		return got.Variants[i].Availability
	}
	inStockIDs := func() []string {
		var page Page
		ts.do("GET", "/api/v1/products?in_stock=true", buyer, nil).must(t, http.StatusOK).json(t, &page)
		var ids []string
		for _, it := range page.Items {
			ids = append(ids, it.ID)
		}
		return ids
	}

	if availabilityOf(0) != OutOfStock || len(inStockIDs()) != 0 {
		t.Fatal("available before any stock event")
	}
	first := publish("stock.changed", p.Variants[0].SKU, 10, at)
	eventually(t, "in stock", func() bool { return availabilityOf(0) == InStock })
	if ids := inStockIDs(); len(ids) != 1 || ids[0] != p.ID {
		t.Fatalf("in_stock filter %v", ids)
	}
	publish("stock.low", p.Variants[1].SKU, 2, at)
	eventually(t, "low stock", func() bool { return availabilityOf(1) == LowStock })
	publish("stock.out", p.Variants[0].SKU, 0, at.Add(time.Second))
	eventually(t, "out of stock", func() bool { return availabilityOf(0) == OutOfStock })

	// A redelivered event is recorded once and changes nothing.
	if _, err := bus.Publish(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := ts.handleStock(ctx, first); err != nil {
		t.Fatal(err)
	}
	if availabilityOf(0) != OutOfStock {
		t.Fatal("a replayed event overwrote a newer level")
	}

	// The relay publishes product.created from the outbox.
	got := make(chan *eventsv1.Product, 10)
	sub, err := bus.Consume(ctx, events.ConsumerConfig{Name: "test", Domain: "product"}, func(_ context.Context, e events.Event) error {
		var m eventsv1.ProductEvent
		if err := e.Decode(&m); err != nil {
			return events.Permanent(err)
		}
		got <- m.GetProduct()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	select {
	case snap := <-got:
		if snap.GetId() != p.ID || len(snap.GetVariants()) != 2 || snap.GetCategoryPath()[0] != "things" {
			t.Fatalf("snapshot %v", snap)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("product.created never reached the stream")
	}
	eventually(t, "outbox drained", func() bool { return len(outbox(t, ts.db)) == 0 })
}
