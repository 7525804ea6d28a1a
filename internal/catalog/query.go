package catalog

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/google/uuid"

	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/money"
)

// Sort orders of product lists.
const (
	SortNewest    = "newest"
	SortPriceAsc  = "price_asc"
	SortPriceDesc = "price_desc"
)

// Page sizes of product lists.
const (
	DefaultPageSize = 24
	MaxPageSize     = 100
)

// ListQuery filters and pages a product list. Zero values mean "no filter".
type ListQuery struct {
	Category string // id or slug; includes its descendants; unknown matches nothing
	Brand    string // case-insensitive
	Seller   string
	MinPrice *int64 // minor units, compared with the cheapest variant
	MaxPrice *int64
	InStock  bool // only products with a variant in stock
	// Status, when set ("draft", "active", "archived" or "all"), asks for
	// products in that status among those the viewer may see; unset means
	// the storefront view (active and not hidden) for everyone.
	Status   string
	Sort     string
	PageSize int
	After    *PageToken
}

// PageToken is the keyset cursor of a product list: the sort key of the last
// item served. It travels as opaque base64url JSON.
type PageToken struct {
	Sort  string `json:"s"`
	Price int64  `json:"p,omitempty"`
	ID    string `json:"id"`
}

const badToken = "is malformed; use next_page_token from the previous page"

// maxTokenLen bounds page_token before decoding; real tokens are ~80 bytes.
const maxTokenLen = 256

// Encode renders the token for next_page_token.
func (t PageToken) Encode() string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodePageToken parses a page_token. It returns an errs.Invalid error for
// anything it did not produce itself.
func DecodePageToken(s string) (PageToken, error) {
	bad := errs.Field("page_token", badToken)
	if s == "" || len(s) > maxTokenLen {
		return PageToken{}, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return PageToken{}, bad
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var t PageToken
	if err := dec.Decode(&t); err != nil {
		return PageToken{}, bad
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		return PageToken{}, bad
	}
	if _, err := uuid.Parse(t.ID); err != nil || len(t.ID) != 36 {
		return PageToken{}, bad
	}
	switch t.Sort {
	case SortNewest:
		if t.Price != 0 {
			return PageToken{}, bad
		}
	case SortPriceAsc, SortPriceDesc:
		if t.Price < 0 || t.Price > money.MaxAmount {
			return PageToken{}, bad
		}
	default:
		return PageToken{}, bad
	}
	return t, nil
}

// ParseListQuery reads the product list's query string. Unknown parameters
// are ignored (caches and trackers add their own); known ones are checked
// strictly and each may appear once. It returns an errs.Invalid error naming
// every bad parameter.
func ParseListQuery(v url.Values) (ListQuery, error) {
	q := ListQuery{Sort: SortNewest, PageSize: DefaultPageSize}
	f := errs.Fields{}
	get := func(name string) (string, bool) {
		vals, ok := v[name]
		if !ok {
			return "", false
		}
		if len(vals) != 1 {
			f.Add(name, "must be given once")
			return "", false
		}
		return vals[0], true
	}
	str := func(name string, maxLen int) string {
		s, ok := get(name)
		if !ok {
			return ""
		}
		if len(s) > maxLen || strings.ContainsFunc(s, unicode.IsControl) {
			f.Add(name, fmt.Sprintf("must be at most %d printable characters", maxLen))
			return ""
		}
		return s
	}
	price := func(name string) *int64 {
		s, ok := get(name)
		if !ok || s == "" {
			return nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > money.MaxAmount {
			f.Add(name, "must be a whole number of minor units (e.g. 1999 for 19.99)")
			return nil
		}
		return &n
	}

	q.Category = str("category", 128)
	q.Brand = str("brand", MaxBrand*4)
	q.Seller = str("seller", 128)
	q.MinPrice = price("min_price")
	q.MaxPrice = price("max_price")
	if q.MinPrice != nil && q.MaxPrice != nil && *q.MinPrice > *q.MaxPrice {
		f.Add("max_price", "must not be below min_price")
	}
	if s, ok := get("in_stock"); ok && s != "" {
		b, err := strconv.ParseBool(s)
		f.Check(err == nil, "in_stock", "must be true or false")
		q.InStock = b
	}
	if s, ok := get("status"); ok && s != "" {
		f.Check(s == "all" || Status(s).valid(), "status", "must be draft, active, archived or all")
		q.Status = s
	}
	if s, ok := get("sort"); ok && s != "" {
		f.Check(s == SortNewest || s == SortPriceAsc || s == SortPriceDesc, "sort", "must be newest, price_asc or price_desc")
		q.Sort = s
	}
	if s, ok := get("page_size"); ok && s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPageSize {
			f.Add("page_size", fmt.Sprintf("must be a whole number from 1 to %d", MaxPageSize))
		}
		q.PageSize = n
	}
	if s, ok := get("page_token"); ok && s != "" {
		t, err := DecodePageToken(s)
		switch {
		case err != nil:
			f.Add("page_token", badToken)
		case t.Sort != q.Sort:
			f.Add("page_token", "belongs to another sort order")
		default:
			q.After = &t
		}
	}
	if err := f.Err(); err != nil {
		return ListQuery{}, err
	}
	return q, nil
}
