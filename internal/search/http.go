package search

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/mallhive/mallhive/internal/gen/mallhive/events/v1"
	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/httpx"
	"github.com/mallhive/mallhive/internal/platform/money"
)

// Bounds on the query string, beyond those of Query.
const (
	maxRawQuery  = 4096 // bytes of the whole query string
	maxFilterLen = 128  // bytes of category and seller
	maxBrandLen  = 400  // bytes of brand (100 characters of up to 4 bytes)
)

// Handler serves the search routes.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/search", httpx.HandlerFunc(s.handleSearch))
	mux.Handle("GET /api/v1/search/suggest", httpx.HandlerFunc(s.handleSuggest))
	return mux
}

// SearchResponse is the body of GET /api/v1/search.
type SearchResponse struct {
	Items []SearchItem `json:"items"`
	// Total counts every match, not only this page.
	Total         uint64 `json:"total"`
	Facets        Facets `json:"facets"`
	NextPageToken string `json:"next_page_token,omitempty"`
}

// SearchItem is one product in a search result.
type SearchItem struct {
	ID       string      `json:"id"`
	Title    string      `json:"title"`
	Slug     string      `json:"slug"`
	Brand    string      `json:"brand"`
	Seller   SellerRef   `json:"seller"`
	ImageURL string      `json:"image_url,omitempty"`
	MinPrice money.Money `json:"min_price"`
	InStock  bool        `json:"in_stock"`
	// Highlights maps "title" and "description" to HTML fragments with the
	// matched words in <mark>; empty when nothing was highlighted.
	Highlights map[string][]string `json:"highlights"`
}

// SellerRef names a product's seller.
type SellerRef struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// SuggestResponse is the body of GET /api/v1/search/suggest.
type SuggestResponse struct {
	Suggestions []Suggestion `json:"suggestions"`
}

func (s *Service) handleSearch(w http.ResponseWriter, r *http.Request) error {
	v, err := queryValues(r)
	if err != nil {
		return err
	}
	q, err := parseSearchQuery(v)
	if err != nil {
		return err
	}
	res, err := s.ix.Search(r.Context(), q)
	if err != nil {
		return renameFields(err, map[string]string{"text": "q"})
	}
	// Later pages of a search are the same search: record it once.
	if q.PageToken == "" {
		s.recordSearch(r.Context(), q, res.Total)
	}
	out := SearchResponse{
		Items:         make([]SearchItem, 0, len(res.Items)),
		Total:         res.Total,
		Facets:        res.Facets,
		NextPageToken: res.NextPageToken,
	}
	for _, h := range res.Items {
		out.Items = append(out.Items, itemOf(h))
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

func itemOf(h Hit) SearchItem {
	it := SearchItem{
		ID:         h.ID,
		Title:      h.Title,
		Slug:       h.Slug,
		Brand:      h.Brand,
		Seller:     SellerRef{ID: h.SellerID, Name: h.SellerName},
		ImageURL:   h.ImageURL,
		MinPrice:   money.Money{Amount: h.MinPrice},
		InStock:    h.InStock,
		Highlights: h.Highlights,
	}
	for _, v := range h.Variants {
		if v.Price == h.MinPrice {
			it.MinPrice.Currency = v.Currency
			break
		}
	}
	if it.Highlights == nil {
		it.Highlights = map[string][]string{}
	}
	return it
}

func (s *Service) handleSuggest(w http.ResponseWriter, r *http.Request) error {
	v, err := queryValues(r)
	if err != nil {
		return err
	}
	prefix, err := parseSuggestQuery(v)
	if err != nil {
		return err
	}
	sug, err := s.ix.Suggest(r.Context(), prefix, MaxSuggestions)
	if err != nil {
		return renameFields(err, map[string]string{"prefix": "q"})
	}
	// Suggestions are the same for everyone and asked for on every
	// keystroke: let browsers and CDNs keep them briefly.
	w.Header().Set("Cache-Control", "public, max-age=30")
	httpx.WriteJSON(w, http.StatusOK, SuggestResponse{Suggestions: sug})
	return nil
}

// queryValues parses the request's query string strictly: a malformed
// query string (bad escapes, semicolons) is a 400, not silently trimmed.
func queryValues(r *http.Request) (url.Values, error) {
	if len(r.URL.RawQuery) > maxRawQuery {
		return nil, errs.Field("query", fmt.Sprintf("must be at most %d bytes", maxRawQuery))
	}
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, errs.Field("query", "is not a well-formed query string")
	}
	return v, nil
}

// params reads known query parameters. Unknown parameters are ignored
// (caches and trackers add their own), as in catalog's product list; known
// ones may appear once, and an empty value means "not given", as HTML forms
// send every field.
type params struct {
	v url.Values
	f errs.Fields
}

func (p params) get(name string) (string, bool) {
	vals, ok := p.v[name]
	if !ok {
		return "", false
	}
	if len(vals) != 1 {
		p.f.Add(name, "must be given once")
		return "", false
	}
	return vals[0], vals[0] != ""
}

func (p params) text(name string, maxLen int) string {
	s, ok := p.get(name)
	if !ok {
		return ""
	}
	if len(s) > maxLen || !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
		p.f.Add(name, fmt.Sprintf("must be at most %d bytes of printable UTF-8", maxLen))
		return ""
	}
	return s
}

// digits parses a non-negative decimal integer written with digits only
// ("+5", "1e3", "19.99" and " 5" are refused).
func digits(s string) (int64, bool) {
	if s == "" || len(s) > 18 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func (p params) price(name string) *int64 {
	s, ok := p.get(name)
	if !ok {
		return nil
	}
	n, ok := digits(s)
	if !ok || n > money.MaxAmount {
		p.f.Add(name, "must be a whole, non-negative number of minor units (e.g. 1999 for 19.99)")
		return nil
	}
	return &n
}

// parseSearchQuery reads GET /api/v1/search's query string:
// q, category, brand, seller, min_price, max_price (minor units), in_stock,
// sort (relevance, newest, price_asc, price_desc), page_size (1..100) and
// page_token. It returns an errs.Invalid error naming every bad parameter.
func parseSearchQuery(v url.Values) (Query, error) {
	p := params{v: v, f: errs.Fields{}}
	var q Query
	if s, ok := p.get("q"); ok {
		s = strings.TrimSpace(s)
		switch {
		case !utf8.ValidString(s):
			p.f.Add("q", "must be UTF-8")
		case len(s) > MaxTextLen:
			p.f.Add("q", fmt.Sprintf("must be at most %d bytes", MaxTextLen))
		default:
			q.Text = s
		}
	}
	q.Category = p.text("category", maxFilterLen)
	q.Brand = p.text("brand", maxBrandLen)
	q.Seller = p.text("seller", maxFilterLen)
	q.MinPrice = p.price("min_price")
	q.MaxPrice = p.price("max_price")
	if q.MinPrice != nil && q.MaxPrice != nil && *q.MinPrice > *q.MaxPrice {
		p.f.Add("max_price", "must not be below min_price")
	}
	if s, ok := p.get("in_stock"); ok {
		b, err := strconv.ParseBool(s)
		p.f.Check(err == nil, "in_stock", "must be true or false")
		q.InStock = b
	}
	if s, ok := p.get("sort"); ok {
		switch Sort(s) {
		case SortRelevance, SortNewest, SortPriceAsc, SortPriceDesc:
			q.Sort = Sort(s)
		default:
			p.f.Add("sort", "must be relevance, newest, price_asc or price_desc")
		}
	}
	if s, ok := p.get("page_size"); ok {
		n, ok := digits(s)
		if !ok || n < 1 || n > MaxPageSize {
			p.f.Add("page_size", fmt.Sprintf("must be a whole number from 1 to %d", MaxPageSize))
		} else {
			q.PageSize = int(n)
		}
	}
	if s, ok := p.get("page_token"); ok {
		if _, err := DecodePageToken(s); err != nil {
			p.f.Add("page_token", "is malformed; use next_page_token from the previous page")
		} else {
			q.PageToken = s
		}
	}
	if err := p.f.Err(); err != nil {
		return Query{}, err
	}
	return q, nil
}

// parseSuggestQuery reads GET /api/v1/search/suggest's q: the text typed so
// far. An empty q suggests nothing.
func parseSuggestQuery(v url.Values) (string, error) {
	p := params{v: v, f: errs.Fields{}}
	var prefix string
	if s, ok := p.get("q"); ok {
		s = strings.TrimSpace(s)
		if !utf8.ValidString(s) || len(s) > MaxTextLen {
			p.f.Add("q", fmt.Sprintf("must be at most %d bytes of UTF-8", MaxTextLen))
		}
		prefix = s
	}
	if err := p.f.Err(); err != nil {
		return "", err
	}
	return prefix, nil
}

// renameFields gives the index's field names (Query's) the names of the
// query-string parameters the client sent.
func renameFields(err error, names map[string]string) error {
	var e *errs.Error
	if !errors.As(err, &e) || len(e.Fields) == 0 {
		return err
	}
	out := *e
	out.Fields = make(map[string]string, len(e.Fields))
	for k, v := range e.Fields {
		if n, ok := names[k]; ok {
			k = n
		}
		out.Fields[k] = v
	}
	for from, to := range names {
		out.Message = strings.Replace(out.Message, from+":", to+":", 1)
	}
	return &out
}

// recordSearch queues the search.performed event of a search.
func (s *Service) recordSearch(ctx context.Context, q Query, total uint64) {
	msg := &eventsv1.SearchPerformed{
		Query:       q.Text,
		Filters:     filtersOf(q),
		ResultCount: int64(min(total, uint64(1<<62))),
		At:          timestamppb.New(time.Now()),
	}
	// The subject keeps the stream's subjects few (one per user, one for
	// all guests) while letting analytics read one user's searches.
	subject := "guest"
	if p, ok := authn.FromContext(ctx); ok && p.UserID != "" {
		msg.UserId, subject = p.UserID, p.UserID
	}
	e, err := events.New(ctx, Source, "search.performed", subject, msg)
	if err != nil {
		s.log.Warn("build search.performed event", "err", err)
		return
	}
	s.performed.enqueue(e)
}

// filtersOf lists the filters a query applied, as analytics reads them.
func filtersOf(q Query) map[string]string {
	f := map[string]string{}
	add := func(k, v string) {
		if v != "" {
			f[k] = v
		}
	}
	add("category", q.Category)
	add("brand", q.Brand)
	add("seller", q.Seller)
	if q.MinPrice != nil {
		f["min_price"] = strconv.FormatInt(*q.MinPrice, 10)
	}
	if q.MaxPrice != nil {
		f["max_price"] = strconv.FormatInt(*q.MaxPrice, 10)
	}
	if q.InStock {
		f["in_stock"] = "true"
	}
	return f
}
