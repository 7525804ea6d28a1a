package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"testing"
	"time"

	eventsv1 "github.com/mallhive/mallhive/internal/gen/mallhive/events/v1"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/money"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/sqldb/sqldbtest"
)

var testMigrations = []sqldb.Migrations{events.Migrations, Migrations}

func eur(amount int64) money.Money { return money.Money{Amount: amount, Currency: "EUR"} }

// TestStore runs the store suite on every engine, each subtest on a fresh
// database.
func TestStore(t *testing.T) {
	sqldbtest.Each(t, "catalog", testMigrations, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := NewStore(db)
		mkCat := func(t *testing.T, slug, parent string, pos int) Category {
			t.Helper()
			c := Category{Name: slug, Slug: slug, ParentID: parent, Position: pos}
			if err := s.CreateCategory(ctx, &c); err != nil {
				t.Fatalf("create category %s: %v", slug, err)
			}
			return c
		}
		mkProduct := func(t *testing.T, seller, title, cat string, status Status, skus ...string) Product {
			t.Helper()
			p := Product{SellerID: seller, Title: title, CategoryID: cat, Status: status, Brand: "Acme"}
			for i, sku := range skus {
				p.Variants = append(p.Variants, Variant{SKU: sku, Price: eur(int64(1000 * (i + 1)))})
			}
			if err := s.CreateProduct(ctx, &p); err != nil {
				t.Fatalf("create product %s: %v", title, err)
			}
			return p
		}

		clothes := mkCat(t, "clothes", "", 1)
		knit := mkCat(t, "knitwear", clothes.ID, 0)
		home := mkCat(t, "home", "", 0)

		t.Run("category tree is ordered by position then name", func(t *testing.T) {
			mkCat(t, "shoes", clothes.ID, 0) // same position as knitwear: by name
			tree, err := s.CategoryTree(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			var walk func(cs []*Category, depth int)
			walk = func(cs []*Category, depth int) {
				for _, c := range cs {
					got = append(got, fmt.Sprint(depth, c.Slug))
					walk(c.Children, depth+1)
				}
			}
			walk(tree, 0)
			want := []string{"0home", "0clothes", "1knitwear", "1shoes"}
			if !slices.Equal(got, want) {
				t.Fatalf("tree %v, want %v", got, want)
			}
		})

		t.Run("category rules", func(t *testing.T) {
			tests := []struct {
				name string
				fn   func() error
				want errs.Code
			}{
				{"duplicate slug", func() error { c := Category{Name: "x", Slug: "clothes"}; return s.CreateCategory(ctx, &c) }, errs.Conflict},
				{"unknown parent", func() error { c := Category{Name: "x", ParentID: "nope"}; return s.CreateCategory(ctx, &c) }, errs.Invalid},
				{"uuid-shaped slug", func() error {
					c := Category{Name: "x", Slug: "0190a4b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b"}
					return s.CreateCategory(ctx, &c)
				}, errs.Invalid},
				{"move under own child", func() error {
					_, err := s.UpdateCategory(ctx, clothes.ID, func(c *Category) error { c.ParentID = knit.ID; return nil })
					return err
				}, errs.Invalid},
				{"delete with children", func() error { return s.DeleteCategory(ctx, clothes.ID) }, errs.Conflict},
				{"delete unknown", func() error { return s.DeleteCategory(ctx, "nope") }, errs.NotFound},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					before := outbox(t, db)
					if err := tt.fn(); errs.CodeOf(err) != tt.want {
						t.Fatalf("err %v, want %s", err, tt.want)
					}
					if after := outbox(t, db); len(after) != len(before) {
						t.Fatalf("outbox grew on failure: %v", after)
					}
				})
			}
		})

		t.Run("category depth is bounded", func(t *testing.T) {
			parent := ""
			var err error
			for i := range MaxCategoryDepth + 1 {
				c := Category{Name: "deep", Slug: fmt.Sprint("deep-", i), ParentID: parent}
				if err = s.CreateCategory(ctx, &c); err != nil {
					break
				}
				parent = c.ID
			}
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("level %d: err %v, want invalid", MaxCategoryDepth+1, err)
			}
		})

		t.Run("create product sets slug, status and emits a full snapshot", func(t *testing.T) {
			p := mkProduct(t, "s1", "Merino Crew Sweater!", knit.ID, "", "MC-1", "MC-2")
			if p.Slug != "merino-crew-sweater" || p.Status != StatusDraft {
				t.Fatalf("slug %q status %q", p.Slug, p.Status)
			}
			q := mkProduct(t, "s2", "Merino crew sweater", knit.ID, StatusActive, "MC-3")
			if q.Slug != "merino-crew-sweater-2" {
				t.Fatalf("clashing slug %q", q.Slug)
			}
			ev := lastEvent(t, db, "product.created")
			if got := ev.Product; got.GetId() != q.ID || got.GetStatus() != "active" || len(got.GetVariants()) != 1 ||
				!slices.Equal(got.GetCategoryPath(), []string{"clothes", "knitwear"}) || got.GetVariants()[0].GetPrice().GetAmount() != 1000 {
				t.Fatalf("snapshot %v", got)
			}
			got, err := s.Product(ctx, "merino-crew-sweater-2")
			if err != nil || got.ID != q.ID || got.Variants[0].Availability != OutOfStock {
				t.Fatalf("by slug: %+v, %v", got, err)
			}
		})

		t.Run("sku is unique across the catalog", func(t *testing.T) {
			mkProduct(t, "s1", "Sku owner", home.ID, StatusActive, "UNIQ-1")
			before := count(t, db, "products")
			p := Product{SellerID: "s2", Title: "Thief", CategoryID: home.ID, Variants: []Variant{{SKU: "UNIQ-1", Price: eur(1)}}}
			err := s.CreateProduct(ctx, &p)
			var e *errs.Error
			if !errs.Is(err, errs.Conflict) || !asErr(err, &e) || e.Fields["variants[0].sku"] == "" {
				t.Fatalf("err %v, want conflict on variants[0].sku", err)
			}
			if count(t, db, "products") != before {
				t.Fatal("a product was written")
			}
		})

		t.Run("update replaces variants, keeps slug, archives", func(t *testing.T) {
			p := mkProduct(t, "s1", "Lamp", home.ID, StatusActive, "LAMP-1", "LAMP-2")
			up, err := s.UpdateProduct(ctx, p.ID, func(p *Product) error {
				p.Title = "Desk lamp"
				p.Variants = []Variant{{SKU: "LAMP-2", Price: eur(500)}, {SKU: "LAMP-3", Price: eur(700), CompareAtPrice: &money.Money{Amount: 900, Currency: "EUR"}}}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if up.Slug != "lamp" || up.Title != "Desk lamp" || len(up.Variants) != 2 || up.Variants[1].CompareAtPrice.Amount != 900 {
				t.Fatalf("updated %+v", up)
			}
			if !up.UpdatedAt.After(p.UpdatedAt) {
				t.Fatalf("updated_at %v not after %v", up.UpdatedAt, p.UpdatedAt)
			}
			if ev := lastEvent(t, db, "product.updated"); ev.Product.GetTitle() != "Desk lamp" {
				t.Fatalf("event %v", ev)
			}
			n := len(outbox(t, db))
			if _, err := s.UpdateProduct(ctx, p.ID, func(*Product) error { return ErrNoChange }); err != nil {
				t.Fatal(err)
			}
			if len(outbox(t, db)) != n {
				t.Fatal("ErrNoChange emitted an event")
			}
			if _, err := s.UpdateProduct(ctx, p.ID, func(p *Product) error { p.Status = StatusArchived; return nil }); err != nil {
				t.Fatal(err)
			}
			if ev := lastEvent(t, db, "product.archived"); ev.Product.GetStatus() != "archived" {
				t.Fatalf("event %v", ev)
			}
		})

		t.Run("update failures write nothing", func(t *testing.T) {
			p := mkProduct(t, "s1", "Chair", home.ID, StatusActive, "CHAIR-1")
			mkProduct(t, "s1", "Table", home.ID, StatusActive, "TABLE-1")
			tests := []struct {
				name string
				fn   func(p *Product) error
				want errs.Code
			}{
				{"unknown category", func(p *Product) error { p.CategoryID = "nope"; return nil }, errs.Invalid},
				{"sku of another product", func(p *Product) error { p.Variants[0].SKU = "TABLE-1"; return nil }, errs.Conflict},
				{"mixed currencies", func(p *Product) error {
					p.Variants = append(p.Variants, Variant{SKU: "CHAIR-2", Price: money.Money{Amount: 1, Currency: "USD"}})
					return nil
				}, errs.Invalid},
				{"closure error", func(p *Product) error { return errs.E(errs.NotFound, "no") }, errs.NotFound},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					n := len(outbox(t, db))
					if _, err := s.UpdateProduct(ctx, p.ID, tt.fn); errs.CodeOf(err) != tt.want {
						t.Fatalf("err %v, want %s", err, tt.want)
					}
					got, _ := s.Product(ctx, p.ID)
					if len(outbox(t, db)) != n || got.CategoryID != home.ID || got.Variants[0].SKU != "CHAIR-1" || len(got.Variants) != 1 {
						t.Fatalf("something was written: %+v", got)
					}
				})
			}
		})

		t.Run("stock read model keeps the newest level", func(t *testing.T) {
			mkProduct(t, "s1", "Mug", home.ID, StatusActive, "MUG-1")
			t0 := time.Now()
			apply := func(l StockLevel) {
				t.Helper()
				if err := db.InTx(ctx, func(tx *sql.Tx) error { return applyStocks(ctx, tx, []StockLevel{l}) }); err != nil {
					t.Fatal(err)
				}
			}
			avail := func() string {
				p, err := s.Product(ctx, "mug")
				if err != nil {
					t.Fatal(err)
				}
				return p.Variants[0].Availability
			}
			steps := []struct {
				level StockLevel
				want  string
			}{
				{StockLevel{"MUG-1", 10, 3, t0}, InStock},
				{StockLevel{"MUG-1", 2, 3, t0.Add(time.Second)}, LowStock},
				{StockLevel{"MUG-1", 50, 3, t0.Add(-time.Second)}, LowStock}, // older: ignored
				{StockLevel{"MUG-1", 0, 3, t0.Add(2 * time.Second)}, OutOfStock},
			}
			for i, st := range steps {
				apply(st.level)
				if got := avail(); got != st.want {
					t.Fatalf("step %d: %s, want %s", i, got, st.want)
				}
			}
		})

		t.Run("list filters, visibility and keyset pages", func(t *testing.T) {
			cat := mkCat(t, "listing", "", 9)
			sub := mkCat(t, "listing-sub", cat.ID, 0)
			var ids []string
			for i := range 7 {
				c := cat.ID
				if i%2 == 1 {
					c = sub.ID
				}
				p := mkProduct(t, fmt.Sprint("ls", i%2), fmt.Sprint("Listed ", i), c, StatusActive, fmt.Sprint("LS-", i))
				ids = append(ids, p.ID)
			}
			draft := mkProduct(t, "ls0", "Listed draft", cat.ID, StatusDraft, "LS-D")
			// Prices 1000 each (one variant): ties broken by id.
			var seen []string
			q := ListQuery{Category: "listing", Sort: SortPriceAsc, PageSize: 3}
			for range 10 {
				page, err := s.ListProducts(ctx, q, Viewer{})
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range page.Items {
					seen = append(seen, p.ID)
				}
				if page.NextPageToken == "" {
					break
				}
				tok, err := DecodePageToken(page.NextPageToken)
				if err != nil {
					t.Fatal(err)
				}
				q.After = &tok
			}
			if !slices.Equal(seen, ids) { // ids are in creation (= id) order
				t.Fatalf("pages %v, want %v", seen, ids)
			}
			sub1, err := s.ListProducts(ctx, ListQuery{Category: sub.ID, PageSize: 100}, Viewer{})
			if err != nil || len(sub1.Items) != 3 {
				t.Fatalf("subcategory: %d items, %v", len(sub1.Items), err)
			}
			own, err := s.ListProducts(ctx, ListQuery{Seller: "ls0", Status: "draft", PageSize: 100}, Viewer{UserID: "ls0"})
			if err != nil || len(own.Items) != 1 || own.Items[0].ID != draft.ID {
				t.Fatalf("own drafts: %+v, %v", own.Items, err)
			}
			other, err := s.ListProducts(ctx, ListQuery{Seller: "ls0", Status: "draft", PageSize: 100}, Viewer{UserID: "ls1"})
			if err != nil || len(other.Items) != 0 {
				t.Fatalf("another seller's drafts: %+v, %v", other.Items, err)
			}
		})

		t.Run("products for ids and skus", func(t *testing.T) {
			a := mkProduct(t, "s1", "Rpc A", home.ID, StatusActive, "RPC-A1", "RPC-A2")
			b := mkProduct(t, "s1", "Rpc B", home.ID, StatusDraft, "RPC-B1")
			got, err := s.ProductsFor(ctx, []string{a.ID, "unknown"}, []string{"RPC-B1", "RPC-A2", "NOPE"})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID || len(got[0].Variants) != 2 {
				t.Fatalf("got %+v", got)
			}
		})
	})
}

func asErr(err error, target **errs.Error) bool {
	e, ok := err.(*errs.Error)
	*target = e
	return ok
}

// lastEvent decodes the newest outbox event of a type.
func lastEvent(t testing.TB, db *sqldb.DB, typ string) *eventsv1.ProductEvent {
	t.Helper()
	var data []byte
	if err := db.QueryRow(`SELECT payload FROM outbox WHERE type = $1 ORDER BY id DESC LIMIT 1`, typ).Scan(&data); err != nil {
		t.Fatalf("no %s in outbox: %v", typ, err)
	}
	ev := &eventsv1.ProductEvent{}
	if err := (events.Event{Type: typ, Data: data}).Decode(ev); err != nil {
		t.Fatal(err)
	}
	return ev
}
