package search

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mallhive/mallhive/internal/platform/errs"
)

func int64p(v int64) *int64 { return &v }

func TestParseSearchQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		raw  string
		want Query
	}{
		{name: "nothing", raw: "", want: Query{}},
		{name: "text is trimmed", raw: "q=%20merino%20sweater%20", want: Query{Text: "merino sweater"}},
		{name: "every filter", raw: "q=wool&category=knitwear&brand=Nordwolle&seller=s1&min_price=1000&max_price=9900&in_stock=true",
			want: Query{Text: "wool", Category: "knitwear", Brand: "Nordwolle", Seller: "s1", MinPrice: int64p(1000), MaxPrice: int64p(9900), InStock: true}},
		{name: "equal prices", raw: "min_price=0&max_price=0", want: Query{MinPrice: int64p(0), MaxPrice: int64p(0)}},
		{name: "sort and paging", raw: "sort=price_desc&page_size=100&page_token=" + EncodePageToken(40),
			want: Query{Sort: SortPriceDesc, PageSize: 100, PageToken: EncodePageToken(40)}},
		{name: "empty values are absent", raw: "q=&category=&min_price=&in_stock=&sort=&page_size=&page_token=", want: Query{}},
		{name: "unknown parameters are ignored", raw: "q=lamp&utm_source=mail&_=123", want: Query{Text: "lamp"}},
		{name: "in_stock false", raw: "in_stock=false", want: Query{}},
		{name: "200 bytes of text", raw: "q=" + strings.Repeat("a", MaxTextLen), want: Query{Text: strings.Repeat("a", MaxTextLen)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := url.ParseQuery(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseSearchQuery(v)
			if err != nil {
				t.Fatalf("parse %q: %v", tt.raw, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parse %q:\n got %+v\nwant %+v", tt.raw, got, tt.want)
			}
		})
	}
}

// TestSearchHTTPBadInput is the bad-input matrix: each request is a 400
// problem document naming the offending parameter.
func TestSearchHTTPBadInput(t *testing.T) {
	t.Parallel()
	s := newTestService(t, newTestEnv(t, nil), Config{})
	tests := []struct {
		name  string
		path  string
		field string
	}{
		{"unknown sort", "/api/v1/search?sort=cheapest", "sort"},
		{"non-integer price", "/api/v1/search?min_price=19.99", "min_price"},
		{"price in words", "/api/v1/search?max_price=ten", "max_price"},
		{"negative price", "/api/v1/search?min_price=-5", "min_price"},
		{"signed price", "/api/v1/search?min_price=%2B5", "min_price"},
		{"huge price", "/api/v1/search?max_price=99999999999999999999", "max_price"},
		{"min above max", "/api/v1/search?min_price=5000&max_price=100", "max_price"},
		{"page size zero", "/api/v1/search?page_size=0", "page_size"},
		{"page size too big", "/api/v1/search?page_size=101", "page_size"},
		{"page size absurd", "/api/v1/search?page_size=1000000000000", "page_size"},
		{"page size negative", "/api/v1/search?page_size=-1", "page_size"},
		{"page size not a number", "/api/v1/search?page_size=ten", "page_size"},
		{"malformed page token", "/api/v1/search?page_token=not-a-token", "page_token"},
		{"page token beyond the limit", "/api/v1/search?page_token=" + EncodePageToken(MaxOffset+1), "page_token"},
		{"q too long", "/api/v1/search?q=" + strings.Repeat("x", MaxTextLen+1), "q"},
		{"q too many words", "/api/v1/search?q=" + strings.Repeat("wool+", MaxWords) + "wool", "q"},
		{"q not UTF-8", "/api/v1/search?q=%ff%fe", "q"},
		{"q twice", "/api/v1/search?q=a&q=b", "q"},
		{"in_stock not a boolean", "/api/v1/search?in_stock=maybe", "in_stock"},
		{"control character in category", "/api/v1/search?category=a%01b", "category"},
		{"brand too long", "/api/v1/search?brand=" + strings.Repeat("b", maxBrandLen+1), "brand"},
		{"malformed query string", "/api/v1/search?q=%zz", "query"},
		{"semicolon separator", "/api/v1/search?q=a;sort=newest", "query"},
		{"query string too long", "/api/v1/search?utm=" + strings.Repeat("u", maxRawQuery), "query"},
		{"suggest q too long", "/api/v1/search/suggest?q=" + strings.Repeat("x", MaxTextLen+1), "q"},
		{"suggest q twice", "/api/v1/search/suggest?q=a&q=b", "q"},
		{"suggest q too many words", "/api/v1/search/suggest?q=" + strings.Repeat("a+", MaxWords) + "a", "q"},
		{"suggest malformed query string", "/api/v1/search/suggest?q=%zz", "query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := s.get(t, tt.path, "")
			if res.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", res.status, res.body)
			}
			if ct := res.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("content type %q", ct)
			}
			var p struct {
				Status int               `json:"status"`
				Code   string            `json:"code"`
				Errors map[string]string `json:"errors"`
			}
			if err := json.Unmarshal(res.body, &p); err != nil {
				t.Fatalf("problem: %v: %s", err, res.body)
			}
			if p.Status != http.StatusBadRequest || p.Code != string(errs.Invalid) || p.Errors[tt.field] == "" {
				t.Errorf("problem %s: want field %q", res.body, tt.field)
			}
		})
	}
}

func TestSearchHTTPShapes(t *testing.T) {
	t.Parallel()
	s := newTestService(t, newTestEnv(t, nil), Config{})
	ctx := context.Background()
	err := s.ix.Upsert(ctx, Document{
		ID: "p1", SellerID: "s1", SellerName: "Nordic Knits", Title: "Merino wool crew sweater", Slug: "merino-wool-crew-sweater",
		Brand: "Nordwolle", CategoryPath: []string{"apparel", "sweaters"}, ImageURL: "/images/p1.jpg", Status: StatusActive,
		Variants: []Variant{{SKU: "L", Price: 95_00, Currency: "EUR"}, {SKU: "M", Price: 89_00, Currency: "EUR"}}, InStock: true,
	})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("search", func(t *testing.T) {
		t.Parallel()
		res := s.get(t, "/api/v1/search?q=sweter&utm_source=x&in_stock=", "")
		if res.status != http.StatusOK || res.header.Get("Content-Type") != "application/json" {
			t.Fatalf("status %d %q: %s", res.status, res.header.Get("Content-Type"), res.body)
		}
		var body map[string]any
		if err := json.Unmarshal(res.body, &body); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"items", "total", "facets"} {
			if _, ok := body[key]; !ok {
				t.Errorf("response lacks %q: %s", key, res.body)
			}
		}
		var out SearchResponse
		_ = json.Unmarshal(res.body, &out)
		if len(out.Items) != 1 {
			t.Fatalf("items %s", res.body)
		}
		it := out.Items[0]
		if it.ID != "p1" || it.Slug != "merino-wool-crew-sweater" || it.Seller != (SellerRef{ID: "s1", Name: "Nordic Knits"}) ||
			it.MinPrice.Amount != 89_00 || it.MinPrice.Currency != "EUR" || !it.InStock || it.ImageURL != "/images/p1.jpg" ||
			!strings.Contains(strings.Join(it.Highlights["title"], ""), "<mark>") {
			t.Errorf("item %+v", it)
		}
		if out.Total != 1 || len(out.Facets.Price) != len(PriceRanges()) || len(out.Facets.Brand) != 1 {
			t.Errorf("total %d, facets %+v", out.Total, out.Facets)
		}
	})

	t.Run("browse without text has empty highlights", func(t *testing.T) {
		t.Parallel()
		res := s.get(t, "/api/v1/search", "")
		if res.status != http.StatusOK || !strings.Contains(string(res.body), `"highlights":{}`) {
			t.Errorf("status %d: %s", res.status, res.body)
		}
	})

	t.Run("suggest", func(t *testing.T) {
		t.Parallel()
		res := s.get(t, "/api/v1/search/suggest?q=meri", "")
		var out SuggestResponse
		if err := json.Unmarshal(res.body, &out); err != nil || res.status != http.StatusOK {
			t.Fatalf("status %d: %s", res.status, res.body)
		}
		want := []Suggestion{{Text: "Merino wool crew sweater", Kind: KindProduct, ID: "p1"}}
		if !reflect.DeepEqual(out.Suggestions, want) {
			t.Errorf("suggestions %+v, want %+v", out.Suggestions, want)
		}
		if cc := res.header.Get("Cache-Control"); !strings.Contains(cc, "max-age") {
			t.Errorf("cache control %q", cc)
		}
	})

	t.Run("empty suggest", func(t *testing.T) {
		t.Parallel()
		res := s.get(t, "/api/v1/search/suggest", "")
		if res.status != http.StatusOK || strings.TrimSpace(string(res.body)) != `{"suggestions":[]}` {
			t.Errorf("status %d: %s", res.status, res.body)
		}
	})

	t.Run("other methods", func(t *testing.T) {
		t.Parallel()
		req, _ := http.NewRequest(http.MethodPost, "/api/v1/search", nil)
		rec := httptest.NewRecorder()
		s.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("POST: status %d", rec.Code)
		}
	})
}

// FuzzParseSearchQuery checks that no query string panics the parser, that
// refusals are Invalid errors naming fields, and that whatever it accepts
// the index accepts too (bar the word count, which the index's analyzer
// decides), so a parsed query never turns into a 500.
func FuzzParseSearchQuery(f *testing.F) {
	for _, seed := range []string{
		"", "q=merino+sweater", "q=%20&sort=newest", "sort=price_asc&page_size=1", "sort=relevance&page_size=100",
		"min_price=0&max_price=0", "min_price=10&max_price=9", "min_price=-1", "min_price=1.5", "min_price=%2B1",
		"max_price=99999999999999999999", "in_stock=1", "in_stock=yes", "page_size=0", "page_size=007",
		"page_token=" + EncodePageToken(20), "page_token=" + EncodePageToken(MaxOffset+1), "page_token=%00",
		"q=a&q=b", "category=apparel&brand=Nordwolle&seller=s1", "category=%01", "q=%ff",
		"q=" + strings.Repeat("a+", 20), "q=" + strings.Repeat("é", 101), "utm_source=x&q=lamp",
	} {
		f.Add(seed)
	}
	ix, err := Open("")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ix.Close() })
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseSearchQuery(v)
		if err != nil {
			var e *errs.Error
			if !errs.Is(err, errs.Invalid) || !errors.As(err, &e) || len(e.Fields) == 0 {
				t.Fatalf("parse %q: %v is not an Invalid error naming fields", raw, err)
			}
			return
		}
		switch {
		case len(q.Text) > MaxTextLen || !utf8.ValidString(q.Text) || q.Text != strings.TrimSpace(q.Text):
			t.Fatalf("parse %q: text %q", raw, q.Text)
		case q.PageSize < 0 || q.PageSize > MaxPageSize:
			t.Fatalf("parse %q: page size %d", raw, q.PageSize)
		case q.MinPrice != nil && *q.MinPrice < 0, q.MaxPrice != nil && *q.MaxPrice < 0:
			t.Fatalf("parse %q: negative price", raw)
		case q.MinPrice != nil && q.MaxPrice != nil && *q.MinPrice > *q.MaxPrice:
			t.Fatalf("parse %q: min above max", raw)
		}
		if _, err := ix.Search(context.Background(), q); err != nil {
			// Only the word count is the index's to check (it splits words
			// with its own analyzer).
			var e *errs.Error
			if !errors.As(err, &e) || len(e.Fields) != 1 || !strings.Contains(e.Fields["text"], "words") {
				t.Fatalf("parse %q gave %+v, which the index refuses: %v", raw, q, err)
			}
		}
	})
}
