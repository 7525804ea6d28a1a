package seed

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mallhive/mallhive/internal/auth"
	"github.com/mallhive/mallhive/internal/catalog"
	"github.com/mallhive/mallhive/internal/platform/money"
)

func testPlan(tb testing.TB, seed int64) plan {
	tb.Helper()
	opts, err := Options{Seed: seed}.withDefaults()
	if err != nil {
		tb.Fatal(err)
	}
	return newPlan(opts)
}

func TestPlanIsDeterministic(t *testing.T) {
	t.Parallel()
	a, b := testPlan(t, 7), testPlan(t, 7)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two plans from one seed differ")
	}
	if c := testPlan(t, 8); reflect.DeepEqual(a.products, c.products) {
		t.Fatal("plans from different seeds are the same")
	}
}

// TestPlanProductsAreValid checks every generated product against the
// catalog's own validation, so a seed never fails on data it made up.
func TestPlanProductsAreValid(t *testing.T) {
	t.Parallel()
	p := testPlan(t, 1)
	if len(p.products) != 2000 || len(p.sellers) != 12 || len(p.buyers) != 5 {
		t.Fatalf("got %d products, %d sellers, %d buyers", len(p.products), len(p.sellers), len(p.buyers))
	}
	skus := map[string]bool{}
	titles := map[string]bool{}
	depts := map[int]int{}
	var variants, soldOut, low, discounted int
	for i, ps := range p.products {
		prod := catalog.Product{SellerID: "seller", Title: ps.Title, Description: ps.Description, Brand: ps.Brand,
			CategoryID: "cat", Status: catalog.StatusActive, Attributes: ps.Attributes}
		if n := len(ps.Variants); n < 1 || n > 4 {
			t.Errorf("product %d has %d variants", i, n)
		}
		for _, v := range ps.Variants {
			cv := catalog.Variant{SKU: v.SKU, Options: v.Options, Price: money.Money{Amount: v.Price, Currency: "EUR"}}
			if v.CompareAt > 0 {
				cv.CompareAtPrice = &money.Money{Amount: v.CompareAt, Currency: "EUR"}
				discounted++
			}
			prod.Variants = append(prod.Variants, cv)
			if skus[v.SKU] {
				t.Errorf("SKU %s appears twice", v.SKU)
			}
			skus[v.SKU] = true
			variants++
			switch {
			case v.OnHand == 0:
				soldOut++
			case v.OnHand <= lowThreshold:
				low++
			}
			if v.Price < 100 || v.Price > 100_000 {
				t.Errorf("%s costs %d cents", v.SKU, v.Price)
			}
		}
		if err := prod.Validate(); err != nil {
			t.Errorf("product %d %q: %v", i, ps.Title, err)
		}
		if len(strings.Fields(ps.Description)) < 12 {
			t.Errorf("product %d: thin description %q", i, ps.Description)
		}
		if strings.Contains(ps.Description, "{") {
			t.Errorf("product %d: unfilled placeholder in %q", i, ps.Description)
		}
		titles[ps.Title] = true
		depts[ps.Dept]++
	}
	if len(titles) < len(p.products)*9/10 {
		t.Errorf("only %d distinct titles among %d products", len(titles), len(p.products))
	}
	if len(depts) != len(departments) {
		t.Errorf("products in %d of %d departments", len(depts), len(departments))
	}
	if soldOut == 0 || low == 0 || discounted == 0 || soldOut > variants/5 {
		t.Errorf("of %d variants: %d sold out, %d low, %d discounted", variants, soldOut, low, discounted)
	}
}

func TestPlanAccountsAreAccepted(t *testing.T) {
	t.Parallel()
	p := testPlan(t, 3)
	emails := map[string]bool{}
	check := func(acc Account, store string) {
		t.Helper()
		if emails[acc.Email] {
			t.Errorf("%s appears twice", acc.Email)
		}
		emails[acc.Email] = true
		if err := auth.CheckEmail(acc.Email); err != nil || !strings.HasSuffix(acc.Email, "@"+demoDomain) {
			t.Errorf("email %q: %v", acc.Email, err)
		}
		if acc.Name == "" || len(store) > auth.MaxStoreNameLen {
			t.Errorf("account %+v, store %q", acc, store)
		}
		if acc.Password != "" {
			if err := auth.CheckPassword(acc.Password, acc.Email, acc.Name); err != nil {
				t.Errorf("password of %s: %v", acc.Email, err)
			}
		}
	}
	for _, s := range p.sellers {
		check(s.Account, s.StoreName)
	}
	for _, b := range p.buyers {
		check(b.Account, "")
	}
	if err := auth.CheckPassword(DemoAdminPassword, DemoAdminEmail, "Demo Admin"); err != nil {
		t.Errorf("admin password: %v", err)
	}
	if err := auth.CheckPassword(randomPassword(), "x@"+demoDomain, "X"); err != nil {
		t.Errorf("random password: %v", err)
	}
	for _, pw := range []string{DemoAdminPassword, DemoSellerPassword, DemoBuyerPassword} {
		if !strings.HasPrefix(pw, "demo-only:") {
			t.Errorf("%q is not flagged demo-only", pw)
		}
	}
}

func TestCategoryTreeIsValid(t *testing.T) {
	t.Parallel()
	slugs := map[string]bool{}
	for _, d := range departments {
		if n := len(d.Children); n < 3 || n > 6 {
			t.Errorf("%s has %d categories", d.Name, n)
		}
		for _, c := range append([]catalog.Category{{Slug: d.Slug, Name: d.Name}}, children(d)...) {
			if err := c.Validate(); err != nil {
				t.Errorf("category %s: %v", c.Slug, err)
			}
			if slugs[c.Slug] {
				t.Errorf("slug %s appears twice", c.Slug)
			}
			slugs[c.Slug] = true
		}
		for _, col := range d.Colours {
			if _, ok := colours[col]; !ok {
				t.Errorf("%s: unknown colour %s", d.Name, col)
			}
		}
	}
	if len(departments) < 8 {
		t.Errorf("%d departments", len(departments))
	}
}

func children(d department) []catalog.Category {
	var out []catalog.Category
	for _, c := range d.Children {
		out = append(out, catalog.Category{Slug: c.Slug, Name: c.Name, ParentID: "parent"})
	}
	return out
}

func TestProductImage(t *testing.T) {
	t.Parallel()
	navy := colours["Navy"]
	seen := map[string]bool{}
	for sh := shapeCircle; sh <= shapeStar; sh++ {
		for _, fill := range []*colour{nil, &navy} {
			b, err := productImage("Fjellgarn Merino Wool Crew Sweater", sh, fill)
			if err != nil {
				t.Fatal(err)
			}
			if ct := http.DetectContentType(b); ct != "image/png" {
				t.Fatalf("content type %s", ct)
			}
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if r := img.Bounds(); r.Dx() != imageSize || r.Dy() != imageSize {
				t.Fatalf("size %v", r)
			}
			if len(b) > 200<<10 {
				t.Errorf("image of %d bytes", len(b))
			}
			seen[string(b)] = true
		}
	}
	if len(seen) != 16 {
		t.Errorf("%d distinct images of 16", len(seen))
	}
	again, _ := productImage("Fjellgarn Merino Wool Crew Sweater", shapeCircle, nil)
	other, _ := productImage("Voltaic Wireless Earbuds", shapeCircle, nil)
	first, _ := productImage("Fjellgarn Merino Wool Crew Sweater", shapeCircle, nil)
	if !bytes.Equal(again, first) || bytes.Equal(first, other) {
		t.Error("images must be a function of the product")
	}
}

func TestClientRetries(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		answers []func(w http.ResponseWriter)
		wantErr string
		calls   int32
	}{
		{"429 then ok", []func(http.ResponseWriter){tooMany("0"), ok}, "", 2},
		{"429 without Retry-After then ok", []func(http.ResponseWriter){tooMany(""), ok}, "", 2},
		{"503 twice then ok", []func(http.ResponseWriter){unavailable, unavailable, ok}, "", 3},
		{"400 fails at once with the problem", []func(http.ResponseWriter){badRequest, ok},
			`POST /x: 400 Bad Request: variants[0].price: is required {"variants[0].price":"is required"} (code invalid, request r1)`, 1},
		{"503 for good gives up", []func(http.ResponseWriter){unavailable, unavailable, unavailable, unavailable}, "503", 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1)) - 1
				tc.answers[min(n, len(tc.answers)-1)](w)
			}))
			defer srv.Close()
			c := newClient(srv.URL, 1)
			c.attempts, c.backoff = 3, time.Millisecond
			var out struct{ OK bool }
			_, err := c.json(context.Background(), http.MethodPost, "/x", nil, map[string]int{"a": 1}, &out)
			switch {
			case tc.wantErr == "" && (err != nil || !out.OK):
				t.Fatalf("err %v, out %+v", err, out)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			var apiErr *APIError
			if tc.wantErr != "" && !errors.As(err, &apiErr) {
				t.Fatalf("err %T is not an *APIError", err)
			}
			if got := calls.Load(); got != tc.calls {
				t.Fatalf("%d calls, want %d", got, tc.calls)
			}
		})
	}
}

func ok(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true}`))
}

func tooMany(retryAfter string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(http.StatusTooManyRequests)
	}
}

func unavailable(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) }

func badRequest(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte(`{"type":"about:blank","title":"Bad Request","status":400,"detail":"variants[0].price: is required",` +
		`"code":"invalid","errors":{"variants[0].price":"is required"},"request_id":"r1"}`))
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"": -1, "3": 3 * time.Second, "0": 0, "soon": -1, "-1": -1,
		now.Add(10 * time.Second).Format(http.TimeFormat): 10 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}
