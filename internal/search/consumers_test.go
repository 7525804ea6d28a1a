package search

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/mallhive/mallhive/internal/gen/mallhive/common/v1"
	eventsv1 "github.com/mallhive/mallhive/internal/gen/mallhive/events/v1"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/events"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// at is t0 plus n seconds.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

// testProduct is an active product snapshot with one EUR variant per SKU,
// priced 10.00, 20.00, ...
func testProduct(id, title string, updated time.Time, skus ...string) *eventsv1.Product {
	p := &eventsv1.Product{
		Id: id, SellerId: "s1", Title: title, Slug: strings.ToLower(strings.ReplaceAll(title, " ", "-")),
		Brand: "Lumen", CategoryPath: []string{"home", "lighting"}, Status: StatusActive,
		CreatedAt: timestamppb.New(t0), UpdatedAt: timestamppb.New(updated),
	}
	for i, sku := range skus {
		p.Variants = append(p.Variants, &eventsv1.ProductVariant{
			Sku: sku, Price: &commonv1.Money{Amount: int64(i+1) * 10_00, Currency: "EUR"},
		})
	}
	return p
}

// with returns a copy of p changed by fn.
func with(p *eventsv1.Product, fn func(*eventsv1.Product)) *eventsv1.Product {
	c := proto.Clone(p).(*eventsv1.Product)
	fn(c)
	return c
}

func productEvent(tb testing.TB, typ string, p *eventsv1.Product) events.Event {
	tb.Helper()
	e, err := events.New(context.Background(), "mallhive/catalog", typ, p.GetId(), &eventsv1.ProductEvent{Product: p})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func stockEvent(tb testing.TB, productID, sku string, available int64, when time.Time) events.Event {
	tb.Helper()
	e, err := events.New(context.Background(), "mallhive/cart", "stock.changed", sku, &eventsv1.StockLevelEvent{
		Sku: sku, ProductId: productID, SellerId: "s1", OnHand: available, Available: available,
		LowThreshold: 2, Reason: "adjusted", At: timestamppb.New(when),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// feedStep is one batch given to the indexer.
type feedStep struct {
	stock bool
	evs   []events.Event
}

func products(evs ...events.Event) feedStep { return feedStep{evs: evs} }
func stock(evs ...events.Event) feedStep    { return feedStep{stock: true, evs: evs} }

func mustGet(tb testing.TB, ix *Index, id string) Document {
	tb.Helper()
	d, err := ix.Get(context.Background(), id)
	if err != nil {
		tb.Fatalf("get %s: %v", id, err)
	}
	return d
}

func hitIDs(tb testing.TB, ix *Index, q Query) []string {
	tb.Helper()
	res, err := ix.Search(context.Background(), q)
	if err != nil {
		tb.Fatal(err)
	}
	out := []string{}
	for _, h := range res.Items {
		out = append(out, h.ID)
	}
	return out
}

func TestIndexerAppliesEvents(t *testing.T) {
	t.Parallel()
	lamp := testProduct("lamp", "Desk lamp", at(1), "L-1", "L-2")
	garbage := events.Event{ID: "bad", Type: "product.updated", Time: t0, Data: []byte{0xff, 0xff}}

	tests := []struct {
		name  string
		steps func(t *testing.T) []feedStep
		check func(t *testing.T, ix *Index)
	}{
		{
			name: "a newer snapshot replaces the document",
			steps: func(t *testing.T) []feedStep {
				return []feedStep{
					products(productEvent(t, "product.created", lamp)),
					products(productEvent(t, "product.updated", with(lamp, func(p *eventsv1.Product) {
						p.Title, p.UpdatedAt = "Brass desk lamp", timestamppb.New(at(2))
					}))),
				}
			},
			check: func(t *testing.T, ix *Index) {
				if d := mustGet(t, ix, "lamp"); d.Title != "Brass desk lamp" || d.MinPrice != 10_00 {
					t.Errorf("got %q at %d", d.Title, d.MinPrice)
				}
			},
		},
		{
			name: "an older snapshot is ignored",
			steps: func(t *testing.T) []feedStep {
				return []feedStep{
					products(productEvent(t, "product.updated", with(lamp, func(p *eventsv1.Product) {
						p.Title, p.UpdatedAt = "Brass desk lamp", timestamppb.New(at(2))
					}))),
					products(productEvent(t, "product.created", lamp)),
				}
			},
			check: func(t *testing.T, ix *Index) {
				if d := mustGet(t, ix, "lamp"); d.Title != "Brass desk lamp" {
					t.Errorf("title %q", d.Title)
				}
			},
		},
		{
			name: "within a batch, the newest wins whatever the order",
			steps: func(t *testing.T) []feedStep {
				newer := with(lamp, func(p *eventsv1.Product) { p.Title, p.UpdatedAt = "Brass desk lamp", timestamppb.New(at(2)) })
				return []feedStep{products(productEvent(t, "product.updated", newer), productEvent(t, "product.created", lamp))}
			},
			check: func(t *testing.T, ix *Index) {
				if d := mustGet(t, ix, "lamp"); d.Title != "Brass desk lamp" {
					t.Errorf("title %q", d.Title)
				}
			},
		},
		{
			name: "archiving leaves an unsearchable tombstone that keeps the stock",
			steps: func(t *testing.T) []feedStep {
				return []feedStep{
					stock(stockEvent(t, "lamp", "L-1", 5, at(1))),
					products(productEvent(t, "product.created", lamp)),
					products(productEvent(t, "product.archived", with(lamp, func(p *eventsv1.Product) {
						p.Status, p.UpdatedAt = "archived", timestamppb.New(at(3))
					}))),
				}
			},
			check: func(t *testing.T, ix *Index) {
				d := mustGet(t, ix, "lamp")
				if d.Status != "archived" || d.Title != "" || d.Stock["L-1"].Available != 5 || d.InStock {
					t.Errorf("tombstone %+v", d)
				}
				if got := hitIDs(t, ix, Query{Text: "lamp"}); len(got) != 0 {
					t.Errorf("archived product found: %v", got)
				}
			},
		},
		{
			name: "a product made active again is in stock without a new stock event",
			steps: func(t *testing.T) []feedStep {
				return []feedStep{
					stock(stockEvent(t, "lamp", "L-1", 5, at(1))),
					products(productEvent(t, "product.created", lamp)),
					products(productEvent(t, "product.updated", with(lamp, func(p *eventsv1.Product) {
						p.Status, p.UpdatedAt = "hidden", timestamppb.New(at(2))
					}))),
					products(productEvent(t, "product.updated", with(lamp, func(p *eventsv1.Product) { p.UpdatedAt = timestamppb.New(at(3)) }))),
				}
			},
			check: func(t *testing.T, ix *Index) {
				if got := hitIDs(t, ix, Query{Text: "lamp", InStock: true}); !slices.Equal(got, []string{"lamp"}) {
					t.Errorf("in stock: %v", got)
				}
			},
		},
		{
			name: "a snapshot older than the archiving is ignored",
			steps: func(t *testing.T) []feedStep {
				return []feedStep{
					products(productEvent(t, "product.archived", with(lamp, func(p *eventsv1.Product) {
						p.Status, p.UpdatedAt = "archived", timestamppb.New(at(3))
					}))),
					products(productEvent(t, "product.updated", with(lamp, func(p *eventsv1.Product) { p.UpdatedAt = timestamppb.New(at(2)) }))),
				}
			},
			check: func(t *testing.T, ix *Index) {
				if d := mustGet(t, ix, "lamp"); d.Status != "archived" {
					t.Errorf("status %q", d.Status)
				}
			},
		},
		{
			name: "draft and hidden products are not searchable",
			steps: func(t *testing.T) []feedStep {
				return []feedStep{products(
					productEvent(t, "product.created", with(lamp, func(p *eventsv1.Product) { p.Status = "draft" })),
					productEvent(t, "product.created", with(testProduct("lantern", "Lantern", at(1), "N-1"), func(p *eventsv1.Product) { p.Status = "hidden" })),
				)}
			},
			check: func(t *testing.T, ix *Index) {
				if got := hitIDs(t, ix, Query{}); len(got) != 0 {
					t.Errorf("found %v", got)
				}
				if d := mustGet(t, ix, "lantern"); d.Status != "hidden" {
					t.Errorf("lantern status %q", d.Status)
				}
			},
		},
		{
			name: "a stock event before its product is kept and applied",
			steps: func(t *testing.T) []feedStep {
				return []feedStep{
					stock(stockEvent(t, "lamp", "L-2", 3, at(1))),
					products(productEvent(t, "product.created", lamp)),
				}
			},
			check: func(t *testing.T, ix *Index) {
				if d := mustGet(t, ix, "lamp"); !d.InStock || d.Title != "Desk lamp" {
					t.Errorf("lamp %+v", d)
				}
			},
		},
		{
			name: "in stock while any variant has stock",
			steps: func(t *testing.T) []feedStep {
				return []feedStep{
					products(productEvent(t, "product.created", lamp)),
					stock(stockEvent(t, "lamp", "L-1", 0, at(2)), stockEvent(t, "lamp", "L-2", 2, at(2))),
				}
			},
			check: func(t *testing.T, ix *Index) {
				if d := mustGet(t, ix, "lamp"); !d.InStock {
					t.Error("not in stock")
				}
			},
		},
		{
			name: "out of stock when every variant is",
			steps: func(t *testing.T) []feedStep {
				return []feedStep{
					products(productEvent(t, "product.created", lamp)),
					stock(stockEvent(t, "lamp", "L-1", 0, at(2)), stockEvent(t, "lamp", "L-2", 2, at(2))),
					stock(stockEvent(t, "lamp", "L-2", 0, at(3))),
				}
			},
			check: func(t *testing.T, ix *Index) {
				if d := mustGet(t, ix, "lamp"); d.InStock {
					t.Error("in stock")
				}
			},
		},
		{
			name: "an older stock level is ignored",
			steps: func(t *testing.T) []feedStep {
				return []feedStep{
					products(productEvent(t, "product.created", lamp)),
					stock(stockEvent(t, "lamp", "L-1", 5, at(3))),
					stock(stockEvent(t, "lamp", "L-1", 0, at(2))),
				}
			},
			check: func(t *testing.T, ix *Index) {
				if d := mustGet(t, ix, "lamp"); !d.InStock || d.Stock["L-1"].Available != 5 {
					t.Errorf("lamp %+v", d)
				}
			},
		},
		{
			name: "stock of a SKU counts once it is a variant",
			steps: func(t *testing.T) []feedStep {
				return []feedStep{
					products(productEvent(t, "product.created", testProduct("lamp", "Desk lamp", at(1), "L-1"))),
					stock(stockEvent(t, "lamp", "L-9", 4, at(2))),
				}
			},
			check: func(t *testing.T, ix *Index) {
				if d := mustGet(t, ix, "lamp"); d.InStock {
					t.Error("in stock through a SKU that is not a variant")
				}
				f := &indexer{ix: ix, log: slog.New(slog.DiscardHandler)}
				added := testProduct("lamp", "Desk lamp", at(3), "L-1", "L-9")
				if err := f.applyProducts(context.Background(), []events.Event{productEvent(t, "product.updated", added)}); err != nil {
					t.Fatal(err)
				}
				if d := mustGet(t, ix, "lamp"); !d.InStock {
					t.Error("not in stock after the variant was added")
				}
			},
		},
		{
			name: "undecodable and id-less events are skipped, the rest applied",
			steps: func(t *testing.T) []feedStep {
				return []feedStep{
					products(garbage, productEvent(t, "product.created", testProduct("", "No id", at(1))), productEvent(t, "product.created", lamp)),
					stock(garbage, stockEvent(t, "", "L-1", 1, at(1)), stockEvent(t, "lamp", "L-1", 1, at(2))),
				}
			},
			check: func(t *testing.T, ix *Index) {
				if n, _ := ix.Count(); n != 1 {
					t.Errorf("count %d, want 1", n)
				}
				if d := mustGet(t, ix, "lamp"); !d.InStock {
					t.Error("valid stock event not applied")
				}
			},
		},
		{
			name: "stray SKUs are bounded",
			steps: func(t *testing.T) []feedStep {
				var evs []events.Event
				for i := range maxStockEntries + 50 {
					evs = append(evs, stockEvent(t, "lamp", fmt.Sprintf("STRAY-%d", i), 1, at(i)))
				}
				return []feedStep{
					products(productEvent(t, "product.created", lamp)),
					stock(stockEvent(t, "lamp", "L-1", 1, at(0))),
					stock(evs...),
				}
			},
			check: func(t *testing.T, ix *Index) {
				d := mustGet(t, ix, "lamp")
				if len(d.Stock) > maxStockEntries || d.Stock["L-1"].Available != 1 || !d.InStock {
					t.Errorf("%d stock entries, L-1 %+v, in stock %v", len(d.Stock), d.Stock["L-1"], d.InStock)
				}
				if _, ok := d.Stock["STRAY-0"]; ok {
					t.Error("the oldest stray SKU was kept")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ix, err := Open("")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ix.Close() })
			f := &indexer{ix: ix, log: slog.New(slog.DiscardHandler)}
			for i, s := range tt.steps(t) {
				apply := f.applyProducts
				if s.stock {
					apply = f.applyStock
				}
				if err := apply(context.Background(), s.evs); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			tt.check(t, ix)
		})
	}
}

// TestServiceEvents runs the service on a real embedded JetStream and, when
// MALLHIVE_TEST_NATS_URL is set, once more on that external server.
func TestServiceEvents(t *testing.T) {
	t.Parallel()
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		bus, err := events.Open(context.Background(), events.Config{DataDir: t.TempDir()}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bus.Close)
		eventSuite(t, bus, 20*time.Second)
	})
	if url := os.Getenv("MALLHIVE_TEST_NATS_URL"); url != "" {
		t.Run("external", func(t *testing.T) {
			t.Parallel()
			bus, err := events.Open(context.Background(), events.Config{URL: url}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(bus.Close)
			// The shared streams hold every earlier run's products, which a
			// fresh replica replays first.
			eventSuite(t, bus, 60*time.Second)
		})
	}
}

// eventSuite drives one replica with product and stock events, then checks
// that a fresh replica and Reindex arrive at the same index. Names (ids,
// SKUs, the seller, replica ids) are unique per run, and every assertion is
// filtered by this run's seller, since an external server's streams are
// shared.
func eventSuite(t *testing.T, bus *events.Bus, timeout time.Duration) {
	ctx := context.Background()
	run := randomHex(t, 6)
	seller := "seller-" + run
	bySeller := "seller=" + seller
	a := startTestService(t, newTestEnv(t, bus), Config{})

	publish := func(t *testing.T, e events.Event) {
		t.Helper()
		if _, err := bus.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	newProduct := func(title, brand, status string, path []string, prices ...int64) *eventsv1.Product {
		id := uuid.Must(uuid.NewV7()).String()
		p := &eventsv1.Product{
			Id: id, SellerId: seller, SellerName: "Shop " + run, Title: title, Slug: strings.ToLower(strings.ReplaceAll(title, " ", "-")) + "-" + run,
			Description: "Made to last.", Brand: brand, CategoryPath: path, ImageUrls: []string{"/images/" + id + ".jpg"},
			Status: status, CreatedAt: timestamppb.New(t0), UpdatedAt: timestamppb.New(at(1)),
		}
		for i, amount := range prices {
			p.Variants = append(p.Variants, &eventsv1.ProductVariant{
				Sku: fmt.Sprintf("%s-%d-%s", strings.ToUpper(title[:3]), i, run), Price: &commonv1.Money{Amount: amount, Currency: "EUR"},
			})
		}
		return p
	}
	sweater := newProduct("Merino wool crew sweater", "Nordwolle", StatusActive, []string{"apparel", "knitwear", "sweaters"}, 95_00, 89_00)
	scarf := newProduct("Alpaca scarf", "Andes", StatusActive, []string{"apparel", "accessories"}, 45_00)
	draft := newProduct("Draft lantern", "Lumen", "draft", []string{"home"}, 30_00)
	hidden := newProduct("Hidden lantern", "Lumen", "hidden", []string{"home"}, 30_00)
	mine := []string{sweater.Id, scarf.Id, draft.Id, hidden.Id}
	sweaterSKU, scarfSKU := sweater.Variants[1].Sku, scarf.Variants[0].Sku

	ids := func(res SearchResponse) []string {
		out := []string{}
		for _, it := range res.Items {
			out = append(out, it.ID)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }

	t.Run("a stock event before its product is remembered", func(t *testing.T) {
		publish(t, stockEvent(t, scarf.Id, scarfSKU, 3, at(1)))
		waitFor(t, timeout, "the stock stub", func() bool {
			d, err := a.ix.Get(ctx, scarf.Id)
			return err == nil && d.Stock[scarfSKU].Available == 3
		})
		if got := ids(a.searchOK(t, bySeller)); len(got) != 0 {
			t.Errorf("a stub is searchable: %v", got)
		}
	})

	t.Run("a product is findable by a misspelled title word", func(t *testing.T) {
		for _, p := range []*eventsv1.Product{sweater, scarf, draft, hidden} {
			publish(t, productEvent(t, "product.created", p))
		}
		var res SearchResponse
		waitFor(t, timeout, "the sweater", func() bool {
			res = a.searchOK(t, "q=sweter&"+bySeller)
			return len(res.Items) == 1
		})
		it := res.Items[0]
		if it.ID != sweater.Id || it.Title != sweater.Title || it.Slug != sweater.Slug || it.Brand != "Nordwolle" ||
			it.Seller.ID != seller || it.ImageURL != sweater.ImageUrls[0] || it.MinPrice.Amount != 89_00 || it.MinPrice.Currency != "EUR" ||
			!strings.Contains(strings.Join(it.Highlights["title"], ""), "<mark>") {
			t.Errorf("item %+v", it)
		}
	})

	t.Run("a stock event before the product is applied", func(t *testing.T) {
		waitFor(t, timeout, "the scarf in stock", func() bool {
			return slices.Equal(ids(a.searchOK(t, "in_stock=true&"+bySeller)), []string{scarf.Id})
		})
	})

	t.Run("filters and facets count it", func(t *testing.T) {
		waitFor(t, timeout, "both active products", func() bool { return a.searchOK(t, bySeller).Total == 2 })
		tests := []struct {
			name  string
			query string
			want  []string
		}{
			{"category", "category=knitwear", []string{sweater.Id}},
			{"parent category", "category=apparel", sorted(sweater.Id, scarf.Id)},
			{"brand, any case", "brand=nordwolle", []string{sweater.Id}},
			{"price range", "min_price=5000&max_price=9000", []string{sweater.Id}},
			{"text and category", "q=scarf&category=accessories", []string{scarf.Id}},
			{"text and another category", "q=scarf&category=knitwear", []string{}},
			{"draft and hidden never show", "q=lantern", []string{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got := ids(a.searchOK(t, tt.query+"&"+bySeller)); !slices.Equal(got, tt.want) {
					t.Errorf("got %v, want %v", got, tt.want)
				}
			})
		}
		f := a.searchOK(t, bySeller).Facets
		count := func(values []FacetValue, v string) int {
			for _, fv := range values {
				if fv.Value == v {
					return fv.Count
				}
			}
			return 0
		}
		if count(f.Category, "apparel") != 2 || count(f.Category, "knitwear") != 1 || count(f.Category, "home") != 0 {
			t.Errorf("category facet %+v", f.Category)
		}
		if count(f.Brand, "Nordwolle") != 1 || count(f.Brand, "Andes") != 1 || count(f.Brand, "Lumen") != 0 {
			t.Errorf("brand facet %+v", f.Brand)
		}
		if count(f.Seller, seller) != 2 {
			t.Errorf("seller facet %+v", f.Seller)
		}
		for _, r := range f.Price {
			want := map[string]int{"25 to 50": 1, "50 to 100": 1}[r.Label]
			if r.Count != want {
				t.Errorf("price range %q counts %d, want %d", r.Label, r.Count, want)
			}
		}
	})

	t.Run("stock events flip in_stock", func(t *testing.T) {
		publish(t, stockEvent(t, sweater.Id, sweaterSKU, 5, at(2)))
		waitFor(t, timeout, "the sweater in stock", func() bool {
			res := a.searchOK(t, "q=sweater&"+bySeller)
			return len(res.Items) == 1 && res.Items[0].InStock &&
				slices.Equal(ids(a.searchOK(t, "in_stock=true&"+bySeller)), sorted(sweater.Id, scarf.Id))
		})
		publish(t, stockEvent(t, sweater.Id, sweaterSKU, 0, at(3)))
		waitFor(t, timeout, "the sweater out of stock", func() bool {
			res := a.searchOK(t, "q=sweater&"+bySeller)
			return len(res.Items) == 1 && !res.Items[0].InStock &&
				slices.Equal(ids(a.searchOK(t, "in_stock=true&"+bySeller)), []string{scarf.Id})
		})
	})

	t.Run("archiving removes it", func(t *testing.T) {
		archived := with(sweater, func(p *eventsv1.Product) { p.Status, p.UpdatedAt = "archived", timestamppb.New(at(4)) })
		publish(t, productEvent(t, "product.archived", archived))
		waitFor(t, timeout, "the sweater gone", func() bool { return a.searchOK(t, "q=sweter&"+bySeller).Total == 0 })
		res := a.searchOK(t, bySeller)
		if !slices.Equal(ids(res), []string{scarf.Id}) || len(res.Facets.Brand) != 1 || res.Facets.Brand[0].Value != "Andes" {
			t.Errorf("after archiving: %v, brands %+v", ids(res), res.Facets.Brand)
		}
	})

	// docs renders this run's documents as an index holds them.
	docs := func(ix *Index) string {
		var b strings.Builder
		for _, id := range mine {
			d, err := ix.Get(ctx, id)
			if errs.Is(err, errs.NotFound) {
				fmt.Fprintf(&b, "%s: absent\n", id)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			j, _ := json.Marshal(d)
			fmt.Fprintf(&b, "%s\n", j)
		}
		return b.String()
	}
	want := docs(a.ix)

	// The second replica outlives its subtest: reindex takes it over.
	b := startTestService(t, newTestEnv(t, bus), Config{})
	t.Run("a fresh replica catches up by itself", func(t *testing.T) {
		if b.ReplicaID() == a.ReplicaID() {
			t.Fatal("two replicas share a replica id")
		}
		waitFor(t, timeout, "the new replica to catch up", func() bool { return docs(b.ix) == want })
		if got, w := b.searchOK(t, bySeller), a.searchOK(t, bySeller); !slices.Equal(ids(got), ids(w)) || got.Total != w.Total {
			t.Errorf("replica b %v, replica a %v", ids(got), ids(w))
		}
	})

	t.Run("reindex rebuilds an equivalent index", func(t *testing.T) {
		t.Run("not under a running replica", func(t *testing.T) {
			err := Reindex(ctx, a.env, a.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), "in use") {
				t.Errorf("got %v, want an in-use error", err)
			}
		})
		t.Run("into a new directory", func(t *testing.T) {
			env := newTestEnv(t, bus)
			var out strings.Builder
			if err := Reindex(ctx, env, Config{}, &out); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "replaying events") || !strings.Contains(out.String(), "documents in") {
				t.Errorf("progress output %q", out.String())
			}
			s := newTestService(t, env, Config{})
			if got := docs(s.ix); got != want {
				t.Errorf("reindexed:\n%s\nwant:\n%s", got, want)
			}
		})
		t.Run("over a stopped replica, keeping its identity", func(t *testing.T) {
			id := b.ReplicaID()
			b.stop()
			if err := Reindex(ctx, b.env, b.cfg, nil); err != nil {
				t.Fatal(err)
			}
			c := startTestService(t, b.env, b.cfg)
			if c.ReplicaID() != id {
				t.Errorf("replica id %q, want %q", c.ReplicaID(), id)
			}
			if got := docs(c.ix); got != want {
				t.Errorf("reindexed:\n%s\nwant:\n%s", got, want)
			}
			// Its consumers resume: a new event still reaches it.
			publish(t, stockEvent(t, scarf.Id, scarfSKU, 0, at(5)))
			waitFor(t, timeout, "the scarf out of stock on the reindexed replica", func() bool {
				return len(ids(c.searchOK(t, "in_stock=true&"+bySeller))) == 0
			})
		})
	})

	t.Run("search.performed events carry the result count", func(t *testing.T) {
		start := time.Now().Add(-time.Second)
		user := "user-" + run
		res := a.get(t, "/api/v1/search?q=scarf&"+bySeller, user)
		if res.status != http.StatusOK {
			t.Fatalf("search: %d %s", res.status, res.body)
		}
		miss := "nothingmatches" + run
		a.searchOK(t, "q="+miss)

		got := readPerformed(t, bus, user, start, timeout, func(m *eventsv1.SearchPerformed) bool { return m.GetQuery() == "scarf" })
		if got.GetResultCount() != 1 || got.GetUserId() != user || got.GetFilters()["seller"] != seller || !got.GetAt().IsValid() {
			t.Errorf("event %v", got)
		}
		zero := readPerformed(t, bus, "guest", start, timeout, func(m *eventsv1.SearchPerformed) bool { return m.GetQuery() == miss })
		if zero.GetResultCount() != 0 || zero.GetUserId() != "" {
			t.Errorf("zero-result event %v", zero)
		}
	})
}

// readPerformed waits for a search.performed event about subject, stored
// since start, that match accepts.
func readPerformed(tb testing.TB, bus *events.Bus, subject string, start time.Time, timeout time.Duration, match func(*eventsv1.SearchPerformed) bool) *eventsv1.SearchPerformed {
	tb.Helper()
	ctx := context.Background()
	var found *eventsv1.SearchPerformed
	waitFor(tb, timeout, "a search.performed event for "+subject, func() bool {
		cons, err := bus.JS.OrderedConsumer(ctx, bus.StreamName("search"), jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{"mallhive.search.performed." + subject},
			DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
			OptStartTime:   &start,
		})
		if err != nil {
			return false // the stream appears with the first event
		}
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			return false
		}
		for msg := range batch.Messages() {
			var m eventsv1.SearchPerformed
			if err := proto.Unmarshal(msg.Data(), &m); err == nil && match(&m) {
				found = &m
			}
		}
		return found != nil
	})
	return found
}
