package search

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mallhive/mallhive/internal/platform/errs"
)

// catalog is a small shop: knitwear with near-miss titles, two scarves
// that differ only in where "alpaca" appears, an out-of-stock item, an
// archived one, and a tent in a separate category tree.
func catalog() []Document {
	day := func(d int) time.Time { return time.Date(2024, 1, d, 12, 0, 0, 0, time.UTC) }
	variant := func(sku string, price int64) Variant {
		return Variant{SKU: sku, Price: price, Currency: "EUR", Options: map[string]string{"size": "M"}}
	}
	return []Document{
		{
			ID: "merino", SellerID: "s1", SellerName: "Nordic Knits", Title: "Merino wool crew sweater",
			Description: "Soft merino wool, knitted in Scotland.", Brand: "Nordwolle",
			CategoryPath: []string{"apparel", "knitwear", "sweaters"}, Status: StatusActive,
			// MinPrice is left wrong on purpose: Upsert derives it.
			Variants: []Variant{variant("MER-L", 95_00), variant("MER-M", 89_00)}, InStock: true, CreatedAt: day(5),
			Attributes: map[string]string{"colour": "Heather grey"},
		},
		{
			ID: "cotton", SellerID: "s2", SellerName: "Trail Co", Title: "Cotton crew sweater",
			Description: "Everyday cotton knit.", Brand: "Basics",
			CategoryPath: []string{"apparel", "knitwear", "sweaters"}, Status: StatusActive,
			Variants: []Variant{variant("COT-M", 39_00)}, InStock: true, CreatedAt: day(4),
		},
		{
			ID: "socks", SellerID: "s2", SellerName: "Trail Co", Title: "Merino hiking socks",
			Description: "Cushioned merino socks for long trails.", Brand: "Trailhead",
			CategoryPath: []string{"apparel", "socks"}, Status: StatusActive,
			Variants: []Variant{variant("SOX-M", 19_00)}, InStock: false, CreatedAt: day(3),
		},
		{
			ID: "alpaca-scarf", SellerID: "s1", SellerName: "Nordic Knits", Title: "Alpaca scarf",
			Description: "Warm and light.", Brand: "Andes",
			CategoryPath: []string{"apparel", "accessories"}, Status: StatusActive,
			Variants: []Variant{variant("ALP-1", 45_00)}, InStock: true, CreatedAt: day(2),
		},
		{
			ID: "winter-scarf", SellerID: "s2", SellerName: "Trail Co", Title: "Winter scarf",
			Description: "A wool blend with a touch of alpaca.", Brand: "Basics",
			CategoryPath: []string{"apparel", "accessories"}, Status: StatusActive,
			Variants: []Variant{variant("WIN-1", 25_00)}, InStock: true, CreatedAt: day(1),
		},
		{
			ID: "cashmere", SellerID: "s1", SellerName: "Nordic Knits", Title: "Cashmere cardigan",
			Description: "Pure cashmere.", Brand: "Nordwolle",
			CategoryPath: []string{"apparel", "knitwear", "cardigans"}, Status: StatusActive,
			Variants: []Variant{variant("CSH-1", 249_00)}, InStock: true, CreatedAt: day(6),
		},
		{
			ID: "tent", SellerID: "s2", SellerName: "Trail Co", Title: "Two person tent",
			Description: "Lightweight tent for trails.", Brand: "Trailhead",
			CategoryPath: []string{"outdoor", "tents"}, Status: StatusActive,
			Variants: []Variant{variant("TNT-2", 199_00)}, InStock: true, CreatedAt: time.Date(2023, 12, 31, 0, 0, 0, 0, time.UTC),
		},
		{
			ID: "archived", SellerID: "s1", SellerName: "Nordic Knits", Title: "Merino wool sweater old stock",
			Description: "Merino.", Brand: "Nordwolle",
			CategoryPath: []string{"apparel", "knitwear", "sweaters"}, Status: "archived",
			Variants: []Variant{variant("OLD-1", 50_00)}, InStock: true, CreatedAt: day(7),
		},
	}
}

// newTestIndex opens an in-memory index holding docs, closed at cleanup.
func newTestIndex(tb testing.TB, docs ...Document) *Index {
	tb.Helper()
	ix, err := Open("")
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { ix.Close() })
	if err := ix.Upsert(context.Background(), docs...); err != nil {
		tb.Fatalf("upsert: %v", err)
	}
	return ix
}

func search(tb testing.TB, ix *Index, q Query) Result {
	tb.Helper()
	res, err := ix.Search(context.Background(), q)
	if err != nil {
		tb.Fatalf("search %+v: %v", q, err)
	}
	return res
}

func ids(hits []Hit) []string {
	out := []string{}
	for _, h := range hits {
		out = append(out, h.ID)
	}
	return out
}

func price(v int64) *int64 { return &v }

func TestIndexSearchText(t *testing.T) {
	t.Parallel()
	ix := newTestIndex(t, catalog()...)
	tests := []struct {
		name  string
		text  string
		first string   // the expected best hit, if any
		want  []string // the expected set of hits, in any order
	}{
		{name: "exact", text: "cardigan", first: "cashmere", want: []string{"cashmere"}},
		{name: "all words must match", text: "merino sweater", first: "merino", want: []string{"merino"}},
		{name: "one typo", text: "mrino", want: []string{"merino", "socks"}},
		{name: "typo in the second word", text: "merino sweter", first: "merino", want: []string{"merino"}},
		{name: "two typos in a long word", text: "cahsmere", first: "cashmere", want: []string{"cashmere"}},
		{name: "no typos in short words", text: "xa", want: []string{}},
		{name: "prefix of the last word", text: "swea", want: []string{"merino", "cotton"}},
		{name: "prefix after a whole word", text: "merino swe", first: "merino", want: []string{"merino"}},
		{name: "plural finds singular", text: "sweaters", want: []string{"merino", "cotton"}},
		{name: "stems in descriptions", text: "knits", want: []string{"merino", "cotton"}},
		// Three edits from "knit" and "knitted": only the stems can match.
		{name: "stems beyond typo reach", text: "knitting", want: []string{"merino", "cotton"}},
		{name: "stop words are skipped", text: "socks for hiking", first: "socks", want: []string{"socks"}},
		{name: "case-insensitive", text: "MERINO Crew", first: "merino", want: []string{"merino"}},
		{name: "brand", text: "nordwolle", want: []string{"merino", "cashmere"}},
		{name: "attribute values", text: "heather grey", want: []string{"merino"}},
		{name: "sku", text: "TNT-2", want: []string{"tent"}},
		{name: "title ranks above description", text: "alpaca", first: "alpaca-scarf", want: []string{"alpaca-scarf", "winter-scarf"}},
		{name: "nothing matches", text: "zzqxv", want: []string{}},
		{name: "archived never shows", text: "stock", want: []string{}},
		{name: "punctuation only browses", text: "?!", want: []string{"cashmere", "merino", "cotton", "socks", "alpaca-scarf", "winter-scarf", "tent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := search(t, ix, Query{Text: tt.text})
			got := ids(res.Items)
			if tt.first != "" && (len(got) == 0 || got[0] != tt.first) {
				t.Errorf("first hit: got %v, want %s first", got, tt.first)
			}
			if !sameSet(got, tt.want) {
				t.Errorf("hits: got %v, want %v", got, tt.want)
			}
			if res.Total != uint64(len(tt.want)) {
				t.Errorf("total: got %d, want %d", res.Total, len(tt.want))
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestIndexSearchFilters(t *testing.T) {
	t.Parallel()
	ix := newTestIndex(t, catalog()...)
	tests := []struct {
		name string
		q    Query
		want []string
	}{
		{name: "category includes descendants", q: Query{Category: "knitwear"}, want: []string{"merino", "cotton", "cashmere"}},
		{name: "leaf category", q: Query{Category: "sweaters"}, want: []string{"merino", "cotton"}},
		{name: "root category", q: Query{Category: "outdoor"}, want: []string{"tent"}},
		{name: "brand ignores case", q: Query{Brand: "NORDWOLLE"}, want: []string{"merino", "cashmere"}},
		{name: "seller", q: Query{Seller: "s2"}, want: []string{"cotton", "socks", "winter-scarf", "tent"}},
		{name: "price range is inclusive", q: Query{MinPrice: price(25_00), MaxPrice: price(45_00)}, want: []string{"cotton", "alpaca-scarf", "winter-scarf"}},
		{name: "min price only", q: Query{MinPrice: price(199_00)}, want: []string{"tent", "cashmere"}},
		{name: "max price only", q: Query{MaxPrice: price(24_99)}, want: []string{"socks"}},
		{name: "price is the cheapest variant", q: Query{MaxPrice: price(89_00), Category: "sweaters"}, want: []string{"merino", "cotton"}},
		{name: "in stock", q: Query{InStock: true, Category: "apparel"}, want: []string{"merino", "cotton", "alpaca-scarf", "winter-scarf", "cashmere"}},
		{name: "text and filters", q: Query{Text: "scarf", Seller: "s1"}, want: []string{"alpaca-scarf"}},
		{name: "filters combine", q: Query{Text: "merino", InStock: true}, want: []string{"merino"}},
		{name: "unknown category", q: Query{Category: "toys"}, want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ids(search(t, ix, tt.q).Items); !sameSet(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIndexSearchFacets(t *testing.T) {
	t.Parallel()
	ix := newTestIndex(t, catalog()...)
	res := search(t, ix, Query{Category: "knitwear"})

	want := Facets{
		Category: []FacetValue{{Value: "apparel", Count: 3}, {Value: "knitwear", Count: 3}, {Value: "sweaters", Count: 2}, {Value: "cardigans", Count: 1}},
		Brand:    []FacetValue{{Value: "Nordwolle", Count: 2}, {Value: "Basics", Count: 1}},
		Seller:   []FacetValue{{Value: "s1", Label: "Nordic Knits", Count: 2}, {Value: "s2", Label: "Trail Co", Count: 1}},
	}
	for _, c := range []struct {
		name      string
		got, want []FacetValue
	}{
		{"category", res.Facets.Category, want.Category},
		{"brand", res.Facets.Brand, want.Brand},
		{"seller", res.Facets.Seller, want.Seller},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s facet: got %+v, want %+v", c.name, c.got, c.want)
		}
	}

	var counts []int
	for _, r := range res.Facets.Price {
		counts = append(counts, r.Count)
	}
	// cotton 39.00, merino 89.00, cashmere 249.00
	if want := []int{0, 1, 1, 0, 1}; !slices.Equal(counts, want) {
		t.Errorf("price facet counts: got %v, want %v (%+v)", counts, want, res.Facets.Price)
	}

	t.Run("a price bucket used as a filter counts the same", func(t *testing.T) {
		t.Parallel()
		for _, r := range res.Facets.Price {
			got := search(t, ix, Query{Category: "knitwear", MinPrice: price(r.Min), MaxPrice: r.Max})
			if got.Total != uint64(r.Count) {
				t.Errorf("%s: filter finds %d, facet says %d", r.Label, got.Total, r.Count)
			}
		}
	})
}

func TestIndexSearchSort(t *testing.T) {
	t.Parallel()
	ix := newTestIndex(t, catalog()...)
	tests := []struct {
		name string
		q    Query
		want []string
	}{
		{name: "browsing defaults to newest", q: Query{}, want: []string{"cashmere", "merino", "cotton", "socks", "alpaca-scarf", "winter-scarf", "tent"}},
		{name: "newest", q: Query{Sort: SortNewest, Text: "scarf"}, want: []string{"alpaca-scarf", "winter-scarf"}},
		{name: "price ascending", q: Query{Sort: SortPriceAsc}, want: []string{"socks", "winter-scarf", "cotton", "alpaca-scarf", "merino", "tent", "cashmere"}},
		{name: "price descending", q: Query{Sort: SortPriceDesc, Category: "knitwear"}, want: []string{"cashmere", "merino", "cotton"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ids(search(t, ix, tt.q).Items); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIndexSearchPagination(t *testing.T) {
	t.Parallel()
	ix := newTestIndex(t, catalog()...)
	all := ids(search(t, ix, Query{Sort: SortPriceAsc}).Items)

	var got []string
	var pages int
	q := Query{Sort: SortPriceAsc, PageSize: 3}
	for {
		res := search(t, ix, q)
		pages++
		if res.Total != uint64(len(all)) {
			t.Fatalf("page %d total: got %d, want %d", pages, res.Total, len(all))
		}
		got = append(got, ids(res.Items)...)
		if res.NextPageToken == "" {
			break
		}
		q.PageToken = res.NextPageToken
	}
	if pages != 3 || !slices.Equal(got, all) {
		t.Errorf("%d pages of %v, want 3 pages of %v", pages, got, all)
	}
}

func TestIndexSearchHighlights(t *testing.T) {
	t.Parallel()
	ix := newTestIndex(t, Document{
		ID: "mug", Title: "Enamel mug <b>&</b> lid", Description: "A camping mug.", Status: StatusActive,
	})
	res := search(t, ix, Query{Text: "mug"})
	if len(res.Items) != 1 {
		t.Fatalf("got %d hits, want 1", len(res.Items))
	}
	h := res.Items[0].Highlights
	if want := []string{"Enamel <mark>mug</mark> &lt;b&gt;&amp;&lt;/b&gt; lid"}; !slices.Equal(h["title"], want) {
		t.Errorf("title highlights: got %q, want %q", h["title"], want)
	}
	if len(h["description"]) != 1 || !strings.Contains(h["description"][0], "<mark>mug</mark>") {
		t.Errorf("description highlights: got %q", h["description"])
	}

	res = search(t, ix, Query{Text: "camping"})
	if _, ok := res.Items[0].Highlights["title"]; ok {
		t.Errorf("title highlighted without a match: %q", res.Items[0].Highlights)
	}
}

func TestIndexSearchInvalid(t *testing.T) {
	t.Parallel()
	ix := newTestIndex(t)
	tests := []struct {
		name  string
		q     Query
		field string
	}{
		{name: "unknown sort", q: Query{Sort: "cheapest"}, field: "sort"},
		{name: "page too big", q: Query{PageSize: MaxPageSize + 1}, field: "page_size"},
		{name: "negative page size", q: Query{PageSize: -1}, field: "page_size"},
		{name: "negative price", q: Query{MinPrice: price(-1)}, field: "min_price"},
		{name: "min above max", q: Query{MinPrice: price(10), MaxPrice: price(9)}, field: "max_price"},
		{name: "long text", q: Query{Text: strings.Repeat("a", MaxTextLen+1)}, field: "text"},
		{name: "too many words", q: Query{Text: strings.Repeat("a ", MaxWords+1)}, field: "text"},
		{name: "invalid UTF-8", q: Query{Text: "\xff"}, field: "text"},
		{name: "bad page token", q: Query{PageToken: "nope"}, field: "page_token"},
		{name: "page token too deep", q: Query{PageToken: EncodePageToken(MaxOffset + 1)}, field: "page_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ix.Search(context.Background(), tt.q)
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("got %v, want an invalid error", err)
			}
			var e *errs.Error
			if !errors.As(err, &e) || e.Fields[tt.field] == "" {
				t.Errorf("got fields %v, want %q named", e.Fields, tt.field)
			}
		})
	}
}

func TestIndexSuggest(t *testing.T) {
	t.Parallel()
	ix := newTestIndex(t, catalog()...)
	tests := []struct {
		name   string
		prefix string
		n      int
		want   []Suggestion
	}{
		{name: "brand", prefix: "nord", n: 5, want: []Suggestion{{Text: "Nordwolle", Kind: KindBrand}}},
		{name: "category and products", prefix: "swe", n: 5, want: []Suggestion{
			{Text: "sweaters", Kind: KindCategory},
			{Text: "Merino wool crew sweater", Kind: KindProduct, ID: "merino"},
			{Text: "Cotton crew sweater", Kind: KindProduct, ID: "cotton"},
		}},
		{name: "earlier words must match", prefix: "merino s", n: 5, want: []Suggestion{
			{Text: "Merino wool crew sweater", Kind: KindProduct, ID: "merino"},
			{Text: "Merino hiking socks", Kind: KindProduct, ID: "socks"},
		}},
		{name: "case-insensitive", prefix: "KNIT", n: 5, want: []Suggestion{{Text: "knitwear", Kind: KindCategory}}},
		{name: "at most n, best first", prefix: "merino", n: 1, want: []Suggestion{{Text: "Merino hiking socks", Kind: KindProduct, ID: "socks"}}},
		{name: "archived products are not suggested", prefix: "old", n: 5, want: []Suggestion{}},
		{name: "empty prefix", prefix: "  ", n: 5, want: []Suggestion{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ix.Suggest(context.Background(), tt.prefix, tt.n)
			if err != nil {
				t.Fatalf("suggest: %v", err)
			}
			// Products with equal scores may come in either order.
			if !sameSuggestions(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}

	t.Run("n is capped", func(t *testing.T) {
		t.Parallel()
		many := make([]Document, 30)
		for i := range many {
			many[i] = Document{ID: strings.Repeat("x", i+1), Title: "Scarf " + strings.Repeat("x", i+1), Status: StatusActive}
		}
		got, err := newTestIndex(t, many...).Suggest(context.Background(), "scar", 100)
		if err != nil || len(got) != MaxSuggestions {
			t.Errorf("got %d suggestions (%v), want %d", len(got), err, MaxSuggestions)
		}
	})
	t.Run("long prefix is invalid", func(t *testing.T) {
		t.Parallel()
		if _, err := ix.Suggest(context.Background(), strings.Repeat("a", MaxTextLen+1), 5); !errs.Is(err, errs.Invalid) {
			t.Errorf("got %v, want an invalid error", err)
		}
	})
}

func sameSuggestions(got, want []Suggestion) bool {
	key := func(s Suggestion) string { return string(s.Kind) + "|" + s.Text + "|" + s.ID }
	var g, w []string
	for _, s := range got {
		g = append(g, key(s))
	}
	for _, s := range want {
		w = append(w, key(s))
	}
	// Kinds keep their relative order; within products, order is by score.
	kinds := func(ss []Suggestion) []SuggestionKind {
		var k []SuggestionKind
		for _, s := range ss {
			k = append(k, s.Kind)
		}
		return k
	}
	return sameSet(g, w) && slices.Equal(kinds(got), kinds(want))
}

func TestIndexWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("delete removes from results", func(t *testing.T) {
		t.Parallel()
		ix := newTestIndex(t, catalog()...)
		if err := ix.Delete(ctx, "merino", "no-such-product"); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if got := ids(search(t, ix, Query{Text: "merino"}).Items); !slices.Equal(got, []string{"socks"}) {
			t.Errorf("after delete: got %v, want [socks]", got)
		}
		if _, err := ix.Get(ctx, "merino"); !errs.Is(err, errs.NotFound) {
			t.Errorf("get deleted: got %v, want not found", err)
		}
		if n, err := ix.Count(); err != nil || n != uint64(len(catalog())-1) {
			t.Errorf("count: got %d, %v; want %d", n, err, len(catalog())-1)
		}
	})

	t.Run("upsert replaces and derives the minimum price", func(t *testing.T) {
		t.Parallel()
		ix := newTestIndex(t, catalog()...)
		d, err := ix.Get(ctx, "merino")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if d.MinPrice != 89_00 || d.Title != "Merino wool crew sweater" {
			t.Errorf("got min price %d, title %q", d.MinPrice, d.Title)
		}
		d.Title = "Merino wool hoodie"
		if err := ix.Upsert(ctx, d); err != nil {
			t.Fatalf("upsert: %v", err)
		}
		if got := ids(search(t, ix, Query{Text: "hoodie"}).Items); !slices.Equal(got, []string{"merino"}) {
			t.Errorf("new title: got %v", got)
		}
		if got := ids(search(t, ix, Query{Text: "merino crew"}).Items); len(got) != 0 {
			t.Errorf("old title still matches: %v", got)
		}
	})

	t.Run("set stock", func(t *testing.T) {
		t.Parallel()
		ix := newTestIndex(t, catalog()...)
		if err := ix.SetStock(ctx, "socks", true); err != nil {
			t.Fatalf("set stock: %v", err)
		}
		if got := ids(search(t, ix, Query{Text: "socks", InStock: true}).Items); !slices.Equal(got, []string{"socks"}) {
			t.Errorf("in stock: got %v, want [socks]", got)
		}
		if err := ix.SetStock(ctx, "merino", false); err != nil {
			t.Fatalf("set stock: %v", err)
		}
		if d, _ := ix.Get(ctx, "merino"); d.InStock || d.Title != "Merino wool crew sweater" {
			t.Errorf("after set stock: %+v", d)
		}
		if err := ix.SetStock(ctx, "nope", true); !errs.Is(err, errs.NotFound) {
			t.Errorf("unknown product: got %v, want not found", err)
		}
	})

	t.Run("missing id is invalid and writes nothing", func(t *testing.T) {
		t.Parallel()
		ix := newTestIndex(t)
		err := ix.Upsert(ctx, Document{ID: "a", Status: StatusActive}, Document{Title: "no id"})
		if !errs.Is(err, errs.Invalid) {
			t.Errorf("got %v, want an invalid error", err)
		}
		if n, _ := ix.Count(); n != 0 {
			t.Errorf("count: got %d, want 0", n)
		}
	})

	t.Run("batches larger than one flush", func(t *testing.T) {
		t.Parallel()
		docs := make([]Document, batchSize*2+7)
		for i := range docs {
			docs[i] = Document{ID: EncodePageToken(i), Title: "Item", Status: StatusActive}
		}
		ix := newTestIndex(t, docs...)
		if n, err := ix.Count(); err != nil || n != uint64(len(docs)) {
			t.Errorf("count: got %d, %v; want %d", n, err, len(docs))
		}
	})
}

func TestIndexReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "products.bleve")

	ix, err := Open(path)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := ix.Upsert(ctx, catalog()...); err != nil {
		t.Fatalf("upsert: %v", err)
	}
	if err := ix.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	ix, err = Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer ix.Close()
	if n, err := ix.Count(); err != nil || n != uint64(len(catalog())) {
		t.Errorf("count: got %d, %v; want %d", n, err, len(catalog()))
	}
	// The reopened index must analyze as the original did (stored analyzers).
	if got := ids(search(t, ix, Query{Text: "merino sweter"}).Items); !slices.Equal(got, []string{"merino"}) {
		t.Errorf("search after reopen: got %v, want [merino]", got)
	}
	if s, err := ix.Suggest(ctx, "nord", 5); err != nil || len(s) != 1 {
		t.Errorf("suggest after reopen: got %v, %v", s, err)
	}
}

func TestIndexOpen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		wantErr bool
	}{
		{name: "missing directory is created", prepare: func(*testing.T, string) {}},
		{name: "empty directory is initialised", prepare: func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "directory without an index is refused", wantErr: true, prepare: func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(path, "notes.txt"), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "another schema version is refused", wantErr: true, prepare: func(t *testing.T, path string) {
			ix, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := ix.bleve.SetInternal(schemaKey, []byte("0")); err != nil {
				t.Fatal(err)
			}
			ix.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "index")
			tt.prepare(t, path)
			ix, err := Open(path)
			if err == nil {
				defer ix.Close()
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("open: got %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestIndexPageToken(t *testing.T) {
	t.Parallel()
	for _, offset := range []int{0, 1, 20, 999, MaxOffset} {
		t.Run(EncodePageToken(offset), func(t *testing.T) {
			t.Parallel()
			got, err := DecodePageToken(EncodePageToken(offset))
			if err != nil || got != offset {
				t.Errorf("round trip of %d: got %d, %v", offset, got, err)
			}
		})
	}
	for _, tt := range []struct{ name, token string }{
		{"empty", ""},
		{"not base64", "!!!"},
		{"wrong prefix", b64("x1:5")},
		{"not a number", b64("o1:five")},
		{"negative", b64("o1:-1")},
		{"plus sign", b64("o1:+5")},
		{"leading zero", b64("o1:05")},
		{"too deep", EncodePageToken(MaxOffset + 1)},
		{"padded", EncodePageToken(5) + "="},
		{"newline", EncodePageToken(5)[:2] + "\n" + EncodePageToken(5)[2:]},
		{"huge", strings.Repeat("A", 1000)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := DecodePageToken(tt.token); !errs.Is(err, errs.Invalid) {
				t.Errorf("got %v, want an invalid error", err)
			}
		})
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
