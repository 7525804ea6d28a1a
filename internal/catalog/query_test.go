package catalog

import (
	"net/url"
	"testing"

	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/money"
)

func TestParseListQuery(t *testing.T) {
	t.Parallel()
	tok := PageToken{Sort: SortPriceDesc, Price: 1999, ID: "0190a4b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b"}.Encode()
	tests := []struct {
		name  string
		query string
		check func(q ListQuery) bool
		bad   string // the field named when the query is refused
	}{
		{"defaults", "", func(q ListQuery) bool {
			return q.Sort == SortNewest && q.PageSize == DefaultPageSize && !q.InStock && q.After == nil
		}, ""},
		{"everything", "category=shoes&brand=Acme&seller=s1&min_price=0&max_price=5000&in_stock=true&sort=price_desc&page_size=100&page_token=" + tok,
			func(q ListQuery) bool {
				return q.Category == "shoes" && q.Brand == "Acme" && q.Seller == "s1" && *q.MinPrice == 0 && *q.MaxPrice == 5000 &&
					q.InStock && q.Sort == SortPriceDesc && q.PageSize == 100 && q.After.Price == 1999
			}, ""},
		{"empty values are unset", "min_price=&sort=&page_size=", func(q ListQuery) bool { return q.MinPrice == nil && q.Sort == SortNewest }, ""},
		{"unknown parameters ignored", "utm_source=x&_=123", func(q ListQuery) bool { return true }, ""},
		{"page_size 1", "page_size=1", func(q ListQuery) bool { return q.PageSize == 1 }, ""},
		{"page_size 101", "page_size=101", nil, "page_size"},
		{"page_size huge", "page_size=99999999999999999999", nil, "page_size"},
		{"price above max amount", "max_price=10000000000001", nil, "max_price"},
		{"price with plus sign", "min_price=%2B5", func(q ListQuery) bool { return *q.MinPrice == 5 }, ""},
		{"price exponent", "min_price=1e3", nil, "min_price"},
		{"token for another sort", "page_token=" + tok, nil, "page_token"},
		{"long brand", "brand=" + string(make([]byte, 1000)), nil, "brand"},
		{"control character", "seller=a%00b", nil, "seller"},
		{"status all", "status=all", func(q ListQuery) bool { return q.Status == "all" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			q, err := ParseListQuery(v)
			if tt.bad != "" {
				var e *errs.Error
				if !asErr(err, &e) || e.Fields[tt.bad] == "" {
					t.Fatalf("err %v, want a problem with %s", err, tt.bad)
				}
				return
			}
			if err != nil || !tt.check(q) {
				t.Fatalf("query %+v, err %v", q, err)
			}
		})
	}
}

func FuzzParseListQuery(f *testing.F) {
	for _, s := range []string{
		"", "category=shoes&brand=acme&min_price=100&max_price=200&in_stock=1&sort=price_asc&page_size=10",
		"page_size=0", "page_size=101", "min_price=-1", "sort=x&sort=y", "page_token=" + PageToken{Sort: SortNewest, ID: "0190a4b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b"}.Encode(),
		"page_token=e30", "status=all&seller=me", "in_stock=TRUE", "%zz", "a=%00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseListQuery(v)
		if err != nil {
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("error %v is not invalid", err)
			}
			return
		}
		if q.PageSize < 1 || q.PageSize > MaxPageSize {
			t.Fatalf("page size %d", q.PageSize)
		}
		if q.Sort != SortNewest && q.Sort != SortPriceAsc && q.Sort != SortPriceDesc {
			t.Fatalf("sort %q", q.Sort)
		}
		if q.MinPrice != nil && (*q.MinPrice < 0 || *q.MinPrice > money.MaxAmount) {
			t.Fatalf("min price %d", *q.MinPrice)
		}
		if q.MinPrice != nil && q.MaxPrice != nil && *q.MinPrice > *q.MaxPrice {
			t.Fatal("min above max")
		}
		if q.After != nil && q.After.Sort != q.Sort {
			t.Fatal("token of another sort accepted")
		}
	})
}

func FuzzDecodePageToken(f *testing.F) {
	for _, s := range []string{
		PageToken{Sort: SortNewest, ID: "0190a4b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b"}.Encode(),
		PageToken{Sort: SortPriceAsc, Price: 1999, ID: "0190a4b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b"}.Encode(),
		"", "!!!", "e30", b64(`{"s":"newest","id":"x"}`), b64(`{"s":"newest","id":"0190a4b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b","p":5}`),
		b64(`{"s":"price_asc","p":-1,"id":"0190a4b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b"}`), b64(`{"s":"newest","id":"0190a4b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b"}]`),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := DecodePageToken(s)
		if err != nil {
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("error %v is not invalid", err)
			}
			return
		}
		again, err := DecodePageToken(tok.Encode())
		if err != nil || again != tok {
			t.Fatalf("round trip %+v -> %+v, %v", tok, again, err)
		}
	})
}
