package catalog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
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

	// A redelivered older event changes nothing.
	if _, err := bus.Publish(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := ts.handleStockBatch(ctx, []events.Event{first}); err != nil {
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

// stockEvent is a stock event as the cart emits it.
func stockEvent(t testing.TB, typ, sku string, available int64, at time.Time) events.Event {
	t.Helper()
	ev, err := events.New(context.Background(), "mallhive/cart", typ, sku, &eventsv1.StockLevelEvent{
		Sku: sku, OnHand: available, Available: available, LowThreshold: 3, Reason: "adjusted", At: timestamppb.New(at),
	})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// badStockEvents can never be applied: an undecodable payload and bad SKUs.
func badStockEvents(t testing.TB, at time.Time) []events.Event {
	t.Helper()
	garbage := stockEvent(t, "stock.changed", "GARBAGE-1", 5, at)
	garbage.Data = []byte{0xff, 0xff, 0xff}
	return []events.Event{
		garbage,
		stockEvent(t, "stock.changed", "", 5, at),
		stockEvent(t, "stock.changed", strings.Repeat("S", MaxSKU+1), 5, at),
		stockEvent(t, "stock.changed", "BAD\nSKU", 5, at),
	}
}

// availability is what GET /api/v1/products/{id} shows for a variant; with
// the long-lived test cache it also shows that the page was invalidated.
func (ts *testService) availability(t *testing.T, productID string, variant int) string {
	t.Helper()
	var got Product
	ts.do("GET", "/api/v1/products/"+productID, buyer, nil).must(t, http.StatusOK).json(t, &got)
	return got.Variants[variant].Availability
}

// TestStockBatches hands batches to the stock consumer's handler on every
// engine and reads the result back through the (cached) product page.
func TestStockBatches(t *testing.T) {
	t.Parallel()
	for _, dialect := range dialects {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			ts := newTestService(t, dialect, nil)
			cat := ts.category("things", "", 0)
			ctx := context.Background()
			at := time.Now()
			ev := func(sku string, available int64, when time.Duration) events.Event {
				return stockEvent(t, "stock.changed", sku, available, at.Add(when))
			}

			tests := []struct {
				name    string
				batches func(sku string) [][]events.Event
				want    string
			}{
				{"the newest level in a batch wins, wherever it is", func(sku string) [][]events.Event {
					return [][]events.Event{{ev(sku, 2, time.Second), ev(sku, 10, 2*time.Second), ev(sku, 0, 0)}}
				}, InStock},
				{"on equal times the later event wins", func(sku string) [][]events.Event {
					return [][]events.Event{{ev(sku, 10, 0), ev(sku, 2, 0)}}
				}, LowStock},
				{"on equal times the later batch wins", func(sku string) [][]events.Event {
					return [][]events.Event{{ev(sku, 10, 0)}, {ev(sku, 0, 0)}}
				}, OutOfStock},
				{"an older event redelivered in a later batch changes nothing", func(sku string) [][]events.Event {
					older := ev(sku, 10, 0)
					return [][]events.Event{{older}, {ev(sku, 0, time.Second)}, {older}}
				}, OutOfStock},
				{"an older event after a newer one in a batch changes nothing", func(sku string) [][]events.Event {
					return [][]events.Event{{ev(sku, 2, time.Second), ev(sku, 10, 0)}}
				}, LowStock},
				{"bad events do not block the others", func(sku string) [][]events.Event {
					return [][]events.Event{append(badStockEvents(t, at), ev(sku, 10, 0))}
				}, InStock},
				{"a batch of bad events only is acknowledged", func(string) [][]events.Event {
					return [][]events.Event{badStockEvents(t, at)}
				}, OutOfStock},
			}
			for i, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					p := ts.product(sellerA, fmt.Sprintf("Item %d", i), cat.ID, StatusActive, 1000)
					if got := ts.availability(t, p.ID, 0); got != OutOfStock { // also caches the page
						t.Fatalf("%s before any event", got)
					}
					for _, b := range tt.batches(p.Variants[0].SKU) {
						if err := ts.handleStockBatch(ctx, b); err != nil {
							t.Fatalf("batch: %v", err)
						}
					}
					if got := ts.availability(t, p.ID, 0); got != tt.want {
						t.Fatalf("%s, want %s", got, tt.want)
					}
				})
			}

			t.Run("a batch larger than one statement", func(t *testing.T) {
				p := ts.product(sellerA, "Bulk", cat.ID, StatusActive, 1000)
				ts.availability(t, p.ID, 0)
				before := count(t, ts.db, "variant_stock")
				batch := []events.Event{ev(p.Variants[0].SKU, 10, 0)}
				for i := range 2*stockRowsPerStatement + 1 {
					batch = append(batch, ev(fmt.Sprintf("STRAY-%d", i), int64(i), 0))
				}
				if err := ts.handleStockBatch(ctx, batch); err != nil {
					t.Fatal(err)
				}
				if n := count(t, ts.db, "variant_stock") - before; n != len(batch) {
					t.Fatalf("%d levels stored, want %d", n, len(batch))
				}
				if got := ts.availability(t, p.ID, 0); got != InStock {
					t.Fatalf("%s, want %s", got, InStock)
				}
			})

			// Levels are idempotent by their time: no per-event records.
			if n := count(t, ts.db, "processed_events"); n != 0 {
				t.Fatalf("%d processed_events rows", n)
			}
		})
	}
}

// TestStockConsumerResumes runs the service against JetStream (embedded,
// and external when MALLHIVE_TEST_NATS_URL is set) on every engine. A
// durable left by the old one-at-a-time consumer is taken over where it
// stopped, and batches of stock events reach the product page.
func TestStockConsumerResumes(t *testing.T) {
	t.Parallel()
	buses := []struct {
		name string
		url  string
	}{{"embedded", ""}, {"external", os.Getenv("MALLHIVE_TEST_NATS_URL")}}
	for _, b := range buses {
		for _, dialect := range dialects {
			t.Run(b.name+"/"+string(dialect), func(t *testing.T) {
				t.Parallel()
				if b.name == "external" && b.url == "" {
					t.Skip("MALLHIVE_TEST_NATS_URL not set")
				}
				ctx := context.Background()
				bus := openTestBus(t, b.url)
				ts := newTestService(t, dialect, bus)
				cat := ts.category("things", "", 0)
				p := ts.product(sellerA, "Stocked", cat.ID, StatusActive, 1000, 2000)
				sku0, sku1 := p.Variants[0].SKU, p.Variants[1].SKU
				at := time.Now()

				// The old consumer acknowledged this event without applying
				// it here, so sku0 stays out of stock unless it is redelivered.
				if _, err := bus.Publish(ctx, stockEvent(t, "stock.changed", sku0, 10, at)); err != nil {
					t.Fatal(err)
				}
				handled := make(chan struct{}, 1)
				old, err := bus.Consume(ctx, events.ConsumerConfig{Name: stockConsumer, Domain: "stock"},
					func(context.Context, events.Event) error { handled <- struct{}{}; return nil })
				if err != nil {
					t.Fatal(err)
				}
				select {
				case <-handled:
				case <-time.After(10 * time.Second):
					t.Fatal("the old consumer got nothing")
				}
				eventually(t, "old consumer acked", func() bool { n, err := old.Pending(ctx); return err == nil && n == 0 })
				old.Stop()

				if got := ts.availability(t, p.ID, 0); got != OutOfStock {
					t.Fatalf("%s before the service ran", got)
				}
				runCtx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- ts.Run(runCtx) }()
				t.Cleanup(func() {
					cancel()
					if err := <-done; err != nil {
						t.Errorf("run: %v", err)
					}
				})

				// Several levels of sku1 and bad events, sent at once so they
				// arrive as few batches.
				batch := append(badStockEvents(t, at), stockEvent(t, "stock.changed", sku1, 10, at))
				for i := range 20 {
					batch = append(batch, stockEvent(t, "stock.low", sku1, int64(3-i%3), at.Add(time.Duration(i+1)*time.Millisecond)))
				}
				if _, err := bus.PublishBatch(ctx, batch); err != nil {
					t.Fatal(err)
				}
				eventually(t, "sku1 low", func() bool { return ts.availability(t, p.ID, 1) == LowStock })
				if got := ts.availability(t, p.ID, 0); got != OutOfStock {
					t.Fatalf("sku0 %s: an event the old consumer acknowledged came again", got)
				}

				if _, err := bus.Publish(ctx, stockEvent(t, "stock.out", sku1, 0, at.Add(time.Second))); err != nil {
					t.Fatal(err)
				}
				eventually(t, "sku1 out", func() bool { return ts.availability(t, p.ID, 1) == OutOfStock })
			})
		}
	}
}

// openTestBus opens an embedded bus, or one on the external server at url
// under a namespace of its own whose streams go when the test ends.
func openTestBus(t *testing.T, url string) *events.Bus {
	t.Helper()
	cfg := events.Config{URL: url, DataDir: t.TempDir()}
	if url != "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		cfg.Namespace = "t" + hex.EncodeToString(b[:])
	}
	bus, err := events.Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if url != "" {
			for _, d := range []string{"stock", "product"} {
				_ = bus.JS.DeleteStream(context.Background(), bus.StreamName(d))
			}
		}
		bus.Close()
	})
	return bus
}
