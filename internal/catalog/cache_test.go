package catalog

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/mallhive/mallhive/internal/gen/mallhive/events/v1"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/httpx"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

var dialects = []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres}

// setStock applies a stock event the way the consumer does.
func (ts *testService) setStock(sku string, available int64) {
	ts.t.Helper()
	ctx := context.Background()
	ev, err := events.New(ctx, "mallhive/cart", "stock.changed", sku, &eventsv1.StockLevelEvent{
		Sku: sku, Available: available, LowThreshold: 3, At: timestamppb.Now(),
	})
	if err != nil {
		ts.t.Fatal(err)
	}
	if err := ts.handleStockBatch(ctx, []events.Event{ev}); err != nil {
		ts.t.Fatal(err)
	}
}

// page reads a product page as who, by id or slug.
func (ts *testService) page(key string, as who) (Product, int) {
	ts.t.Helper()
	res := ts.do("GET", "/api/v1/products/"+key, as, nil)
	var p Product
	if res.Status == http.StatusOK {
		res.json(ts.t, &p)
	}
	return p, res.Status
}

// TestProductCacheShowsChangesAtOnce warms the cache, changes the product
// every way it can change, and expects the next read by id and by slug to
// show the change.
func TestProductCacheShowsChangesAtOnce(t *testing.T) {
	t.Parallel()
	for _, dialect := range dialects {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			ts := newTestService(t, dialect, nil)
			cat := ts.category("things", "", 0)
			ctx := context.Background()

			cases := []struct {
				name   string
				change func(p Product)
				as     who
				check  func(got Product, status int) bool
			}{
				{"patched over HTTP", func(p Product) {
					ts.do("PATCH", "/api/v1/products/"+p.ID, sellerA, map[string]any{"title": "Renamed"}).must(t, http.StatusOK)
				}, anon, func(got Product, status int) bool { return status == 200 && got.Title == "Renamed" }},
				{"updated through the store (seeders, tools)", func(p Product) {
					if _, err := ts.store.UpdateProduct(ctx, p.ID, func(p *Product) error { p.Brand = "Other"; return nil }); err != nil {
						t.Fatal(err)
					}
				}, anon, func(got Product, status int) bool { return status == 200 && got.Brand == "Other" }},
				{"hidden by an admin", func(p Product) {
					ts.do("PATCH", "/api/v1/products/"+p.ID, admin, map[string]any{"hidden": true}).must(t, http.StatusOK)
				}, anon, func(_ Product, status int) bool { return status == http.StatusNotFound }},
				{"archived", func(p Product) {
					ts.do("DELETE", "/api/v1/products/"+p.ID, sellerA, nil).must(t, http.StatusOK)
				}, sellerA, func(got Product, status int) bool { return status == 200 && got.Status == StatusArchived }},
				{"stock arrives", func(p Product) {
					ts.setStock(p.Variants[1].SKU, 50)
				}, anon, func(got Product, _ int) bool {
					return got.Variants[0].Availability == OutOfStock && got.Variants[1].Availability == InStock
				}},
				{"stock of a variant moved from another product", func(p Product) {
					other := ts.product(sellerA, "Donor "+p.ID[len(p.ID)-6:], cat.ID, StatusActive, 500)
					ts.page(other.ID, anon)
					sku := other.Variants[0].SKU
					if _, err := ts.store.UpdateProduct(ctx, other.ID, func(o *Product) error {
						o.Variants = []Variant{{SKU: sku + "-NEW", Price: o.Variants[0].Price}}
						return nil
					}); err != nil {
						t.Fatal(err)
					}
					if _, err := ts.store.UpdateProduct(ctx, p.ID, func(q *Product) error {
						q.Variants = append(q.Variants, Variant{SKU: sku, Price: q.Variants[0].Price})
						return nil
					}); err != nil {
						t.Fatal(err)
					}
					ts.page(p.ID, anon)
					ts.page(p.Slug, anon)
					ts.setStock(sku, 2)
				}, anon, func(got Product, _ int) bool {
					return len(got.Variants) == 3 && got.Variants[2].Availability == LowStock
				}},
			}
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					p := ts.product(sellerA, fmt.Sprintf("Cached product %d", i), cat.ID, StatusActive, 1000, 2000)
					for _, key := range []string{p.ID, p.Slug} {
						if _, status := ts.page(key, tc.as); status != http.StatusOK {
							t.Fatalf("warm %s: %d", key, status)
						}
					}
					tc.change(p)
					for _, key := range []string{p.ID, p.Slug} {
						if got, status := ts.page(key, tc.as); !tc.check(got, status) {
							t.Fatalf("read by %s after the change: %d %+v", key, status, got)
						}
					}
				})
			}
		})
	}
}

// TestProductCacheServesFromMemory changes a row behind the store's back
// (as another replica would): the page stays as cached until the TTL ends.
func TestProductCacheServesFromMemory(t *testing.T) {
	t.Parallel()
	for _, dialect := range dialects {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			cases := []struct {
				name      string
				ttl       time.Duration
				wantStale bool
			}{
				{"cached until the ttl ends", 2 * time.Second, true},
				{"off", 0, false},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					ts := newTestServiceConfig(t, dialect, nil, Config{ProductCacheTTL: tc.ttl})
					p := ts.product(sellerA, "Replicated", ts.category("things", "", 0).ID, StatusActive)
					ts.page(p.ID, anon)
					if _, err := ts.db.Exec(`UPDATE products SET title = 'Changed elsewhere' WHERE id = $1`, p.ID); err != nil {
						t.Fatal(err)
					}
					got, _ := ts.page(p.ID, anon)
					if stale := got.Title == "Replicated"; stale != tc.wantStale {
						t.Fatalf("title %q right after the change; want stale: %v", got.Title, tc.wantStale)
					}
					eventually(t, "the change after the ttl", func() bool {
						got, _ := ts.page(p.ID, anon)
						return got.Title == "Changed elsewhere"
					})
				})
			}
		})
	}
}

// TestProductCacheAnswer: a cached answer has the bytes and headers
// httpx.WriteJSON gives the product, and visibility is decided per request.
func TestProductCacheAnswer(t *testing.T) {
	t.Parallel()
	ts := newTestService(t, sqldb.SQLite, nil)
	cat := ts.category("things", "", 0)
	p := ts.product(sellerA, "Bytes", cat.ID, StatusActive, 1000, 1500)
	ts.setStock(p.Variants[0].SKU, 2)

	stored, err := ts.store.Product(context.Background(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := httptest.NewRecorder()
	httpx.WriteJSON(want, http.StatusOK, stored)
	for i := range 2 { // a miss, then a hit
		res := ts.do("GET", "/api/v1/products/"+p.ID, anon, nil).must(t, http.StatusOK)
		if !bytes.Equal(res.Body, want.Body.Bytes()) || res.Header.Get("Content-Type") != want.Header().Get("Content-Type") || len(res.Header) != len(want.Header()) {
			t.Fatalf("read %d: %v %s, want %v %s", i, res.Header, res.Body, want.Header(), want.Body)
		}
	}

	draft := ts.product(sellerA, "Draft", cat.ID, StatusDraft)
	for _, c := range []struct {
		as   who
		want int
	}{{sellerA, 200}, {anon, 404}, {buyer, 404}, {sellerB, 404}, {admin, 200}, {sellerA, 200}} {
		if _, status := ts.page(draft.ID, c.as); status != c.want {
			t.Fatalf("draft as %q: %d, want %d", c.as.id, status, c.want)
		}
	}
}

// TestProductCacheNeverStaleAfterUpdate races readers against a writer:
// once an update returns, no read may show an older title.
func TestProductCacheNeverStaleAfterUpdate(t *testing.T) {
	t.Parallel()
	ts := newTestService(t, sqldb.SQLite, nil)
	p := ts.product(sellerA, "Racing", ts.category("things", "", 0).ID, StatusActive)
	ctx := context.Background()

	var done sync.WaitGroup
	stop := make(chan struct{})
	for i := range 4 {
		done.Go(func() {
			key := []string{p.ID, p.Slug}[i%2]
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = ts.store.productJSON(ctx, key)
			}
		})
	}
	defer func() { close(stop); done.Wait() }()
	for i := range 50 {
		title := fmt.Sprintf("Racing v%d", i)
		if _, err := ts.store.UpdateProduct(ctx, p.ID, func(p *Product) error { p.Title = title; return nil }); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{p.ID, p.Slug} {
			e, err := ts.store.productJSON(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(e.body), `"title":"`+title+`"`) {
				t.Fatalf("after update %d, read by %s: %s", i, key, e.body)
			}
		}
	}
}

func TestProductCacheEntries(t *testing.T) {
	t.Parallel()
	bodies := make([]byte, 64<<10) // entries never change their body, so they may share one
	entry := func(id string, size int) *productEntry {
		return &productEntry{id: id, slug: "slug-" + id, body: bodies[:size], expires: time.Now().Add(time.Minute)}
	}
	t.Run("a fill that began before a drop is not kept", func(t *testing.T) {
		c := newProductCache(time.Minute)
		_, gen := c.get("a", time.Now())
		c.drop("a", "slug-a") // the change commits while the fill reads
		c.put("a", entry("a", 10), gen)
		if e, _ := c.get("a", time.Now()); e != nil {
			t.Fatal("kept a fill that may have read the old rows")
		}
		_, gen = c.get("a", time.Now())
		c.put("a", entry("a", 10), gen)
		if e, _ := c.get("a", time.Now()); e == nil {
			t.Fatal("a fill after the drop was not kept")
		}
	})
	t.Run("drop forgets both keys", func(t *testing.T) {
		c := newProductCache(time.Minute)
		for _, k := range []string{"a", "slug-a", "b"} {
			_, gen := c.get(k, time.Now())
			c.put(k, entry(strings.TrimPrefix(k, "slug-"), 10), gen)
		}
		c.drop("a", "slug-a")
		for k, want := range map[string]bool{"a": false, "slug-a": false, "b": true} {
			if e, _ := c.get(k, time.Now()); (e != nil) != want {
				t.Fatalf("%s cached: %v, want %v", k, e != nil, want)
			}
		}
		if c.size != 10 {
			t.Fatalf("size %d, want 10", c.size)
		}
	})
	t.Run("expired entries are not served", func(t *testing.T) {
		c := newProductCache(time.Minute)
		_, gen := c.get("a", time.Now())
		c.put("a", entry("a", 10), gen)
		if e, _ := c.get("a", time.Now().Add(2*time.Minute)); e != nil {
			t.Fatal("served after its ttl")
		}
	})
	t.Run("memory stays bounded", func(t *testing.T) {
		c := newProductCache(time.Minute)
		for i := range 3 * maxCacheBytes / (64 << 10) {
			k := fmt.Sprint(i)
			_, gen := c.get(k, time.Now())
			c.put(k, entry(k, 64<<10), gen)
			if c.size > maxCacheBytes {
				t.Fatalf("holds %d bytes after %d puts", c.size, i+1)
			}
		}
		if len(c.entries) == 0 {
			t.Fatal("holds nothing")
		}
	})
}
