package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mallhive/mallhive/internal/platform/money"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

func TestProductLifecycle(t *testing.T) {
	t.Parallel()
	ts := newTestService(t, sqldb.SQLite, nil)
	knit := ts.category("knitwear", ts.category("clothes", "", 0).ID, 0)
	before := len(outbox(t, ts.db))

	res := ts.do("POST", "/api/v1/products", sellerA, newProduct("Merino wool crew sweater", knit.ID, 8900, 9900)).must(t, http.StatusCreated)
	var p Product
	res.json(t, &p)
	if res.Header.Get("Location") != "/api/v1/products/"+p.ID {
		t.Fatalf("location %q", res.Header.Get("Location"))
	}
	if p.Slug != "merino-wool-crew-sweater" || p.SellerID != sellerA.id || p.Status != StatusActive ||
		len(p.Variants) != 2 || p.Variants[0].Availability != OutOfStock || p.Variants[1].Price != (money.Money{Amount: 9900, Currency: "EUR"}) {
		t.Fatalf("created %+v", p)
	}

	t.Run("get by id and by slug", func(t *testing.T) {
		for _, key := range []string{p.ID, p.Slug} {
			var got Product
			ts.do("GET", "/api/v1/products/"+key, anon, nil).must(t, http.StatusOK).json(t, &got)
			if got.ID != p.ID || got.Attributes["material"] != "merino" {
				t.Fatalf("get %s: %+v", key, got)
			}
		}
	})

	t.Run("patch changes fields, keeps the slug", func(t *testing.T) {
		var got Product
		ts.do("PATCH", "/api/v1/products/"+p.ID, sellerA, map[string]any{
			"title":    "Merino crew",
			"variants": []map[string]any{{"sku": "CREW-M", "price": map[string]any{"amount": 7900, "currency": "EUR"}, "compare_at_price": map[string]any{"amount": 8900, "currency": "EUR"}}},
		}).must(t, http.StatusOK).json(t, &got)
		if got.Title != "Merino crew" || got.Slug != p.Slug || len(got.Variants) != 1 || got.Variants[0].CompareAtPrice.Amount != 8900 || got.Brand != "Fjellgarn" {
			t.Fatalf("patched %+v", got)
		}
	})

	t.Run("listed for buyers", func(t *testing.T) {
		var page Page
		ts.do("GET", "/api/v1/products?category=clothes", buyer, nil).must(t, http.StatusOK).json(t, &page)
		if len(page.Items) != 1 || page.Items[0].ID != p.ID || page.NextPageToken != "" {
			t.Fatalf("page %+v", page)
		}
	})

	t.Run("delete archives, once", func(t *testing.T) {
		var got Product
		ts.do("DELETE", "/api/v1/products/"+p.ID, sellerA, nil).must(t, http.StatusOK).json(t, &got)
		if got.Status != StatusArchived {
			t.Fatalf("status %s", got.Status)
		}
		ts.do("DELETE", "/api/v1/products/"+p.ID, sellerA, nil).must(t, http.StatusOK)
		ts.do("GET", "/api/v1/products/"+p.ID, buyer, nil).must(t, http.StatusNotFound).problem(t)
		ts.do("GET", "/api/v1/products/"+p.ID, sellerA, nil).must(t, http.StatusOK)
		ts.do("GET", "/api/v1/products/"+p.ID, admin, nil).must(t, http.StatusOK)
	})

	want := []string{"product.created", "product.updated", "product.archived"}
	if got := outbox(t, ts.db)[before:]; !slices.Equal(got, want) {
		t.Fatalf("outbox %v, want %v", got, want)
	}
	if ev := lastEvent(t, ts.db, "product.archived"); ev.Product.GetTitle() != "Merino crew" ||
		!slices.Equal(ev.Product.GetCategoryPath(), []string{"clothes", "knitwear"}) {
		t.Fatalf("archived snapshot %v", ev.Product)
	}
}

func TestCategoriesHTTP(t *testing.T) {
	t.Parallel()
	ts := newTestService(t, sqldb.SQLite, nil)
	create := func(body map[string]any) Category {
		t.Helper()
		var c Category
		ts.do("POST", "/api/v1/categories", admin, body).must(t, http.StatusCreated).json(t, &c)
		return c
	}
	home := create(map[string]any{"name": "Home & Garden", "position": 2})
	if home.Slug != "home-garden" {
		t.Fatalf("slug %q", home.Slug)
	}
	clothes := create(map[string]any{"name": "Clothes", "position": 1})
	shoes := create(map[string]any{"name": "Shoes", "slug": "shoes", "parent_id": clothes.ID})
	boots := create(map[string]any{"name": "Boots", "parent_id": home.ID})

	var moved Category
	ts.do("PATCH", "/api/v1/categories/"+boots.ID, admin, map[string]any{"parent_id": shoes.ID}).must(t, http.StatusOK).json(t, &moved)
	if moved.ParentID != shoes.ID {
		t.Fatalf("moved %+v", moved)
	}

	var tree struct{ Items []*Category }
	ts.do("GET", "/api/v1/categories", anon, nil).must(t, http.StatusOK).json(t, &tree)
	if len(tree.Items) != 2 || tree.Items[0].Slug != "clothes" || tree.Items[0].Children[0].Children[0].Slug != "boots" ||
		len(tree.Items[1].Children) != 0 {
		t.Fatalf("tree %+v", tree.Items)
	}

	n := len(outbox(t, ts.db))
	tests := []struct {
		name   string
		method string
		path   string
		as     who
		body   any
		want   int
	}{
		{"anonymous create", "POST", "/api/v1/categories", anon, map[string]any{"name": "X"}, http.StatusUnauthorized},
		{"seller create", "POST", "/api/v1/categories", sellerA, map[string]any{"name": "X"}, http.StatusForbidden},
		{"buyer delete", "DELETE", "/api/v1/categories/" + home.ID, buyer, nil, http.StatusForbidden},
		{"empty name", "POST", "/api/v1/categories", admin, map[string]any{"name": ""}, http.StatusBadRequest},
		{"bad slug", "POST", "/api/v1/categories", admin, map[string]any{"name": "X", "slug": "Not A Slug"}, http.StatusBadRequest},
		{"taken slug", "POST", "/api/v1/categories", admin, map[string]any{"name": "X", "slug": "shoes"}, http.StatusConflict},
		{"unknown parent", "POST", "/api/v1/categories", admin, map[string]any{"name": "X", "parent_id": "nope"}, http.StatusBadRequest},
		{"fractional position", "POST", "/api/v1/categories", admin, `{"name":"X","position":1.5}`, http.StatusBadRequest},
		{"cycle", "PATCH", "/api/v1/categories/" + clothes.ID, admin, map[string]any{"parent_id": boots.ID}, http.StatusBadRequest},
		{"unknown category", "PATCH", "/api/v1/categories/nope", admin, map[string]any{"name": "X"}, http.StatusNotFound},
		{"delete non-empty", "DELETE", "/api/v1/categories/" + clothes.ID, admin, nil, http.StatusConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts.do(tt.method, tt.path, tt.as, tt.body).must(t, tt.want).problem(t)
		})
	}
	if got := len(outbox(t, ts.db)); got != n {
		t.Fatalf("failed requests wrote %d events", got-n)
	}

	t.Run("delete an empty category", func(t *testing.T) {
		ts.product(sellerA, "Boot", boots.ID, StatusArchived)
		ts.do("DELETE", "/api/v1/categories/"+boots.ID, admin, nil).must(t, http.StatusConflict) // archived products count
		ts.do("DELETE", "/api/v1/categories/"+home.ID, admin, nil).must(t, http.StatusNoContent)
		types := outbox(t, ts.db)
		if types[len(types)-1] != "category.deleted" {
			t.Fatalf("outbox %v", types)
		}
	})
}

// TestAuthorization attacks products from every side: the wrong seller, a
// buyer, a guest, an admin beyond hiding.
func TestAuthorization(t *testing.T) {
	t.Parallel()
	ts := newTestService(t, sqldb.SQLite, nil)
	cat := ts.category("things", "", 0)
	active := ts.product(sellerA, "Active thing", cat.ID, StatusActive)
	draft := ts.product(sellerA, "Draft thing", cat.ID, StatusDraft)
	hidden := ts.product(sellerA, "Hidden thing", cat.ID, StatusActive)
	toHide := ts.product(sellerA, "To hide", cat.ID, StatusActive)
	if _, err := ts.store.UpdateProduct(context.Background(), hidden.ID, func(p *Product) error { p.Hidden = true; return nil }); err != nil {
		t.Fatal(err)
	}
	n := len(outbox(t, ts.db))
	upload := func(id string) func(as who) response {
		return func(as who) response {
			return ts.send(multipartRequest(t, "/api/v1/products/"+id+"/images", "image", "a.png", pngBytes(t)), as)
		}
	}
	patch := map[string]any{"title": "Mine now"}
	tests := []struct {
		name   string
		method string
		path   string
		as     who
		body   any
		send   func(as who) response
		want   int
	}{
		{"guest creates", "POST", "/api/v1/products", anon, newProduct("Guest", cat.ID), nil, http.StatusUnauthorized},
		{"buyer creates", "POST", "/api/v1/products", buyer, newProduct("Buyer", cat.ID), nil, http.StatusForbidden},
		{"admin creates", "POST", "/api/v1/products", admin, newProduct("Admin", cat.ID), nil, http.StatusForbidden},
		{"other seller patches", "PATCH", "/api/v1/products/" + active.ID, sellerB, patch, nil, http.StatusNotFound},
		{"other seller patches by slug", "PATCH", "/api/v1/products/" + active.Slug, sellerB, patch, nil, http.StatusNotFound},
		{"other seller archives", "DELETE", "/api/v1/products/" + active.ID, sellerB, nil, nil, http.StatusNotFound},
		{"other seller uploads", "", "", sellerB, nil, upload(active.ID), http.StatusNotFound},
		{"buyer patches", "PATCH", "/api/v1/products/" + active.ID, buyer, patch, nil, http.StatusForbidden},
		{"buyer archives", "DELETE", "/api/v1/products/" + active.ID, buyer, nil, nil, http.StatusForbidden},
		{"buyer uploads", "", "", buyer, nil, upload(active.ID), http.StatusForbidden},
		{"guest patches", "PATCH", "/api/v1/products/" + active.ID, anon, patch, nil, http.StatusUnauthorized},
		{"guest archives", "DELETE", "/api/v1/products/" + active.ID, anon, nil, nil, http.StatusUnauthorized},
		{"guest uploads", "", "", anon, nil, upload(active.ID), http.StatusUnauthorized},
		{"owner hides", "PATCH", "/api/v1/products/" + active.ID, sellerA, map[string]any{"hidden": true}, nil, http.StatusForbidden},
		{"admin edits title", "PATCH", "/api/v1/products/" + active.ID, admin, patch, nil, http.StatusForbidden},
		{"admin archives", "DELETE", "/api/v1/products/" + active.ID, admin, nil, nil, http.StatusForbidden},
		{"buyer reads draft", "GET", "/api/v1/products/" + draft.ID, buyer, nil, nil, http.StatusNotFound},
		{"guest reads draft by slug", "GET", "/api/v1/products/" + draft.Slug, anon, nil, nil, http.StatusNotFound},
		{"other seller reads draft", "GET", "/api/v1/products/" + draft.ID, sellerB, nil, nil, http.StatusNotFound},
		{"buyer reads hidden", "GET", "/api/v1/products/" + hidden.ID, buyer, nil, nil, http.StatusNotFound},
		{"owner reads draft", "GET", "/api/v1/products/" + draft.ID, sellerA, nil, nil, http.StatusOK},
		{"owner reads hidden", "GET", "/api/v1/products/" + hidden.ID, sellerA, nil, nil, http.StatusOK},
		{"admin reads draft", "GET", "/api/v1/products/" + draft.ID, admin, nil, nil, http.StatusOK},
		{"admin reads hidden", "GET", "/api/v1/products/" + hidden.ID, admin, nil, nil, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res response
			if tt.send != nil {
				res = tt.send(tt.as)
			} else {
				res = ts.do(tt.method, tt.path, tt.as, tt.body)
			}
			res.must(t, tt.want)
			if tt.want == http.StatusNotFound {
				// Indistinguishable from a product that does not exist.
				if p := res.problem(t); p["detail"] != "no such product" {
					t.Fatalf("404 detail %v", p["detail"])
				}
			}
		})
	}
	if got := outbox(t, ts.db); len(got) != n {
		t.Fatalf("refused requests wrote events: %v", got[n:])
	}
	if got, _ := ts.store.Product(context.Background(), active.ID); got.Title != active.Title || got.Status != StatusActive || len(got.Images) != 0 {
		t.Fatalf("product changed: %+v", got)
	}

	t.Run("lists never show others' drafts or hidden products", func(t *testing.T) {
		for _, as := range []who{anon, buyer, sellerB} {
			for _, q := range []string{"", "?status=all", "?status=draft&seller=seller-a"} {
				var page Page
				ts.do("GET", "/api/v1/products"+q, as, nil).must(t, http.StatusOK).json(t, &page)
				for _, p := range page.Items {
					if p.ID == draft.ID || p.ID == hidden.ID {
						t.Fatalf("%s sees %s with %q", as.id, p.Title, q)
					}
				}
			}
		}
		var page Page
		ts.do("GET", "/api/v1/products?status=all&seller=seller-a", sellerA, nil).must(t, http.StatusOK).json(t, &page)
		if len(page.Items) != 4 {
			t.Fatalf("owner sees %d of 4 products", len(page.Items))
		}
	})

	t.Run("admin hides a product", func(t *testing.T) {
		var got Product
		ts.do("PATCH", "/api/v1/products/"+toHide.ID, admin, map[string]any{"hidden": true}).must(t, http.StatusOK).json(t, &got)
		if !got.Hidden {
			t.Fatal("not hidden")
		}
		ts.do("GET", "/api/v1/products/"+toHide.ID, buyer, nil).must(t, http.StatusNotFound)
		if ev := lastEvent(t, ts.db, "product.updated"); ev.Product.GetStatus() != "hidden" {
			t.Fatalf("event status %q", ev.Product.GetStatus())
		}
	})
}

// TestBadInput sends each kind of bad request and checks it gets a 4xx
// problem document and writes nothing.
func TestBadInput(t *testing.T) {
	t.Parallel()
	ts := newTestService(t, sqldb.SQLite, nil)
	cat := ts.category("things", "", 0)
	existing := ts.product(sellerA, "Existing", cat.ID, StatusActive)

	withVariant := func(v map[string]any) map[string]any {
		b := newProduct("Bad", cat.ID)
		b["variants"] = []map[string]any{v}
		return b
	}
	price := func(amount any, currency string) map[string]any {
		return map[string]any{"amount": amount, "currency": currency}
	}
	variant := func(sku string, p map[string]any) map[string]any { return map[string]any{"sku": sku, "price": p} }
	with := func(k string, v any) map[string]any {
		b := newProduct("Bad", cat.ID)
		b[k] = v
		return b
	}
	manyAttrs := map[string]string{}
	for i := range MaxAttributes + 1 {
		manyAttrs[fmt.Sprint("k", i)] = "v"
	}
	var manyVariants []map[string]any
	for i := range MaxVariants + 1 {
		manyVariants = append(manyVariants, variant(fmt.Sprint("MANY-", i), price(100, "EUR")))
	}
	pageToken := PageToken{Sort: SortNewest, ID: existing.ID}.Encode()

	tests := []struct {
		name   string
		method string
		path   string
		body   any
		want   int
		field  string // a field the problem must name, if any
	}{
		{"negative price", "POST", "/api/v1/products", withVariant(variant("B-1", price(-1, "EUR"))), 400, "variants[0].price"},
		{"fractional price", "POST", "/api/v1/products", withVariant(variant("B-1", price(12.5, "EUR"))), 400, "variants.price.amount"},
		{"price as string", "POST", "/api/v1/products", withVariant(variant("B-1", price("12", "EUR"))), 400, "variants.price.amount"},
		{"huge price", "POST", "/api/v1/products", withVariant(variant("B-1", price(money.MaxAmount+1, "EUR"))), 400, "variants[0].price"},
		{"unknown currency", "POST", "/api/v1/products", withVariant(variant("B-1", price(100, "EUX"))), 400, "variants[0].price"},
		{"lower-case currency", "POST", "/api/v1/products", withVariant(variant("B-1", price(100, "eur"))), 400, "variants[0].price"},
		{"missing price", "POST", "/api/v1/products", withVariant(map[string]any{"sku": "B-1"}), 400, "variants[0].price"},
		{"compare-at below price", "POST", "/api/v1/products", withVariant(map[string]any{"sku": "B-1", "price": price(100, "EUR"), "compare_at_price": price(99, "EUR")}), 400, "variants[0].compare_at_price.amount"},
		{"compare-at in another currency", "POST", "/api/v1/products", withVariant(map[string]any{"sku": "B-1", "price": price(100, "EUR"), "compare_at_price": price(200, "USD")}), 400, "variants[0].compare_at_price.currency"},
		{"mixed currencies", "POST", "/api/v1/products", with("variants", []any{variant("B-1", price(100, "EUR")), variant("B-2", price(100, "USD"))}), 400, "variants[1].price.currency"},
		{"unknown category", "POST", "/api/v1/products", with("category_id", "nope"), 400, "category_id"},
		{"no category", "POST", "/api/v1/products", with("category_id", ""), 400, "category_id"},
		{"sku taken", "POST", "/api/v1/products", withVariant(variant(existing.Variants[0].SKU, price(100, "EUR"))), 409, "variants[0].sku"},
		{"sku twice", "POST", "/api/v1/products", with("variants", []any{variant("B-1", price(1, "EUR")), variant("B-1", price(1, "EUR"))}), 400, "variants[1].sku"},
		{"sku with space", "POST", "/api/v1/products", withVariant(variant("B 1", price(1, "EUR"))), 400, "variants[0].sku"},
		{"sku too long", "POST", "/api/v1/products", withVariant(variant(strings.Repeat("B", MaxSKU+1), price(1, "EUR"))), 400, "variants[0].sku"},
		{"no variants", "POST", "/api/v1/products", with("variants", []any{}), 400, "variants"},
		{"too many variants", "POST", "/api/v1/products", with("variants", manyVariants), 400, "variants"},
		{"too many attributes", "POST", "/api/v1/products", with("attributes", manyAttrs), 400, "attributes"},
		{"empty title", "POST", "/api/v1/products", with("title", "  "), 400, "title"},
		{"long title", "POST", "/api/v1/products", with("title", strings.Repeat("t", MaxTitle+1)), 400, "title"},
		{"control character in title", "POST", "/api/v1/products", with("title", "a\x00b"), 400, "title"},
		{"long description", "POST", "/api/v1/products", with("description", strings.Repeat("d", MaxDescription+1)), 400, "description"},
		{"created archived", "POST", "/api/v1/products", with("status", "archived"), 400, "status"},
		{"unknown status", "POST", "/api/v1/products", with("status", "bogus"), 400, "status"},
		{"script image url", "POST", "/api/v1/products", with("images", []string{"javascript:alert(1)"}), 400, "images[0]"},
		{"seller in body", "POST", "/api/v1/products", with("seller_id", "seller-b"), 400, "seller_id"},
		{"hidden in body", "POST", "/api/v1/products", with("hidden", true), 400, "hidden"},
		{"malformed json", "POST", "/api/v1/products", `{"title":`, 400, ""},
		{"trailing data", "POST", "/api/v1/products", `{"title":"x"} {}`, 400, ""},
		{"array body", "POST", "/api/v1/products", `[]`, 400, ""},
		{"oversized body", "POST", "/api/v1/products", with("description", strings.Repeat("d", maxProductBody)), 413, ""},
		{"patch negative price", "PATCH", "/api/v1/products/" + existing.ID, map[string]any{"variants": []any{variant("E-1", price(-5, "EUR"))}}, 400, "variants[0].price"},
		{"patch unknown status", "PATCH", "/api/v1/products/" + existing.ID, map[string]any{"status": "sold"}, 400, "status"},
		{"patch empty title", "PATCH", "/api/v1/products/" + existing.ID, map[string]any{"title": ""}, 400, "title"},
		{"patch unknown category", "PATCH", "/api/v1/products/" + existing.ID, map[string]any{"category_id": "nope"}, 400, "category_id"},
		{"patch slug", "PATCH", "/api/v1/products/" + existing.ID, map[string]any{"slug": "mine"}, 400, "slug"},
	}
	lists := []struct{ name, query, field string }{
		{"page_size zero", "page_size=0", "page_size"},
		{"page_size absurd", "page_size=1000000", "page_size"},
		{"page_size negative", "page_size=-1", "page_size"},
		{"page_size fractional", "page_size=1.5", "page_size"},
		{"page_size words", "page_size=ten", "page_size"},
		{"page_token garbage", "page_token=%%%", ""},
		{"page_token not base64", "page_token=!!!!", "page_token"},
		{"page_token of another sort", "sort=price_asc&page_token=" + pageToken, "page_token"},
		{"page_token forged json", "page_token=" + b64(`{"s":"newest","id":"x' OR 1=1"}`), "page_token"},
		{"min_price negative", "min_price=-1", "min_price"},
		{"min_price fractional", "min_price=12.5", "min_price"},
		{"max below min", "min_price=500&max_price=100", "max_price"},
		{"unknown sort", "sort=cheapest", "sort"},
		{"in_stock not a bool", "in_stock=maybe", "in_stock"},
		{"sort twice", "sort=newest&sort=price_asc", "sort"},
		{"unknown status", "status=sold", "status"},
	}
	for _, l := range lists {
		tests = append(tests, struct {
			name   string
			method string
			path   string
			body   any
			want   int
			field  string
		}{"list " + l.name, "GET", "/api/v1/products?" + l.query, nil, 400, l.field})
	}

	products, events := count(t, ts.db, "products"), len(outbox(t, ts.db))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ts.do(tt.method, tt.path, sellerA, tt.body).must(t, tt.want).problem(t)
			if tt.field != "" {
				fields, _ := p["errors"].(map[string]any)
				if _, ok := fields[tt.field]; !ok {
					t.Fatalf("problem does not name %s: %v", tt.field, p)
				}
			}
		})
	}
	t.Run("wrong content type", func(t *testing.T) {
		req := requestWithBody("POST", "/api/v1/products", "text/plain", `{}`)
		ts.send(req, sellerA).must(t, http.StatusUnsupportedMediaType).problem(t)
	})
	if got := count(t, ts.db, "products"); got != products {
		t.Fatalf("products %d, want %d", got, products)
	}
	if got := outbox(t, ts.db); len(got) != events {
		t.Fatalf("events written: %v", got[events:])
	}
	if got, _ := ts.store.Product(context.Background(), existing.ID); got.Title != existing.Title || got.Variants[0].Price.Amount != 1000 {
		t.Fatalf("existing product changed: %+v", got)
	}
}

// TestListing pages through every sort and checks the filters.
func TestListing(t *testing.T) {
	t.Parallel()
	ts := newTestService(t, sqldb.SQLite, nil)
	ctx := context.Background()
	clothes := ts.category("clothes", "", 0)
	shoes := ts.category("shoes", clothes.ID, 0)
	home := ts.category("home", "", 1)

	type spec struct {
		seller who
		cat    string
		brand  string
		price  int64
		stock  int64 // -1: no stock record
	}
	specs := []spec{
		{sellerA, clothes.ID, "Acme", 500, 5}, {sellerA, shoes.ID, "Fjellgarn", 1500, 0},
		{sellerB, shoes.ID, "acme", 1500, -1}, {sellerB, home.ID, "Homely", 2500, 1},
		{sellerA, home.ID, "Homely", 100, 10}, {sellerB, clothes.ID, "ACME", 9900, 3},
		{sellerA, shoes.ID, "Fjellgarn", 700, -1}, {sellerB, home.ID, "Acme", 1500, 2},
		{sellerA, clothes.ID, "Fjellgarn", 3000, 0}, {sellerA, home.ID, "Acme", 42, 7},
	}
	byID := map[string]spec{}
	for i, sp := range specs {
		p := Product{SellerID: sp.seller.id, Title: fmt.Sprint("Listed ", i), Brand: sp.brand, CategoryID: sp.cat, Status: StatusActive,
			Variants: []Variant{{SKU: fmt.Sprint("L-", i), Price: money.Money{Amount: sp.price, Currency: "EUR"}}, {SKU: fmt.Sprint("L-", i, "-XL"), Price: money.Money{Amount: sp.price + 100, Currency: "EUR"}}}}
		if err := ts.store.CreateProduct(ctx, &p); err != nil {
			t.Fatal(err)
		}
		byID[p.ID] = sp
		if sp.stock >= 0 {
			level := StockLevel{SKU: p.Variants[0].SKU, Available: sp.stock, LowThreshold: 2, At: time.Now()}
			if err := ts.db.InTx(ctx, func(tx *sql.Tx) error { return applyStocks(ctx, tx, []StockLevel{level}) }); err != nil {
				t.Fatal(err)
			}
		}
	}
	ts.product(sellerA, "Unlisted draft", clothes.ID, StatusDraft)

	// all pages through a query and returns the items in order.
	all := func(t *testing.T, query string, size int) []Product {
		t.Helper()
		var items []Product
		token := ""
		for range 100 {
			q := query + "&page_size=" + fmt.Sprint(size)
			if token != "" {
				q += "&page_token=" + url.QueryEscape(token)
			}
			var page Page
			ts.do("GET", "/api/v1/products?"+q, buyer, nil).must(t, http.StatusOK).json(t, &page)
			if len(page.Items) > size {
				t.Fatalf("page of %d, size %d", len(page.Items), size)
			}
			items = append(items, page.Items...)
			if token = page.NextPageToken; token == "" {
				return items
			}
		}
		t.Fatal("pagination does not end")
		return nil
	}

	for _, sort := range []string{SortNewest, SortPriceAsc, SortPriceDesc} {
		for _, size := range []int{1, 3, 24} {
			t.Run(fmt.Sprintf("%s by %d", sort, size), func(t *testing.T) {
				t.Parallel()
				items := all(t, "sort="+sort, size)
				seen := map[string]bool{}
				for i, p := range items {
					if seen[p.ID] {
						t.Fatalf("%s served twice", p.Title)
					}
					seen[p.ID] = true
					if i == 0 {
						continue
					}
					prev, cur := items[i-1], p
					ok := false
					switch sort {
					case SortNewest:
						ok = prev.ID > cur.ID
					case SortPriceAsc:
						ok = prev.Variants[0].Price.Amount < cur.Variants[0].Price.Amount || prev.Variants[0].Price.Amount == cur.Variants[0].Price.Amount && prev.ID < cur.ID
					case SortPriceDesc:
						ok = prev.Variants[0].Price.Amount > cur.Variants[0].Price.Amount || prev.Variants[0].Price.Amount == cur.Variants[0].Price.Amount && prev.ID > cur.ID
					}
					if !ok {
						t.Fatalf("%s before %s breaks %s", prev.Title, cur.Title, sort)
					}
				}
				if len(seen) != len(specs) {
					t.Fatalf("saw %d products, want %d", len(seen), len(specs))
				}
			})
		}
	}

	filters := []struct {
		name  string
		query string
		match func(spec) bool
	}{
		{"category by slug includes descendants", "category=clothes", func(s spec) bool { return s.cat == clothes.ID || s.cat == shoes.ID }},
		{"category by id", "category=" + shoes.ID, func(s spec) bool { return s.cat == shoes.ID }},
		{"unknown category", "category=nope", func(spec) bool { return false }},
		{"brand ignores case", "brand=ACME", func(s spec) bool { return strings.EqualFold(s.brand, "acme") }},
		{"seller", "seller=seller-b", func(s spec) bool { return s.seller.id == sellerB.id }},
		{"price range", "min_price=500&max_price=1500", func(s spec) bool { return s.price >= 500 && s.price <= 1500 }},
		{"in stock", "in_stock=true", func(s spec) bool { return s.stock > 0 }},
		{"in_stock=false does not filter", "in_stock=false", func(spec) bool { return true }},
		{"combined", "category=home&brand=homely&in_stock=1&max_price=1000", func(s spec) bool { return s.cat == home.ID && s.brand == "Homely" && s.stock > 0 && s.price <= 1000 }},
	}
	for _, f := range filters {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			want := 0
			for _, sp := range specs {
				if f.match(sp) {
					want++
				}
			}
			items := all(t, f.query+"&sort=price_asc", 2)
			for _, p := range items {
				if !f.match(byID[p.ID]) {
					t.Fatalf("%s does not match %s", p.Title, f.query)
				}
			}
			if len(items) != want {
				t.Fatalf("%d items, want %d", len(items), want)
			}
		})
	}

	t.Run("availability labels", func(t *testing.T) {
		t.Parallel()
		want := map[int64]string{-1: OutOfStock, 0: OutOfStock, 1: LowStock, 2: LowStock, 3: InStock}
		for _, p := range all(t, "sort=newest", 100) {
			sp := byID[p.ID]
			if w, ok := want[sp.stock]; ok && p.Variants[0].Availability != w {
				t.Fatalf("stock %d shows %s, want %s", sp.stock, p.Variants[0].Availability, w)
			}
			if p.Variants[1].Availability != OutOfStock {
				t.Fatalf("variant without stock record shows %s", p.Variants[1].Availability)
			}
		}
	})

	t.Run("default page size", func(t *testing.T) {
		t.Parallel()
		var page Page
		ts.do("GET", "/api/v1/products", anon, nil).must(t, http.StatusOK).json(t, &page)
		if len(page.Items) != len(specs) || page.NextPageToken != "" {
			t.Fatalf("%d items, token %q", len(page.Items), page.NextPageToken)
		}
	})
}
