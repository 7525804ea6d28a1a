package search

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	bsearch "github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/highlight/format/html"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/mallhive/mallhive/internal/platform/errs"
)

// Sort orders search results.
type Sort string

const (
	SortRelevance Sort = "relevance" // the default; ties and browsing go newest first
	SortNewest    Sort = "newest"
	SortPriceAsc  Sort = "price_asc"
	SortPriceDesc Sort = "price_desc"
)

// Limits on a query, so one request cannot make the index do unbounded work.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
	MaxTextLen      = 200 // bytes of Query.Text or a Suggest prefix
	MaxWords        = 16  // words in Query.Text or a Suggest prefix
)

// Query is a product search. Every filter narrows the result and the facets.
type Query struct {
	// Text is free text; empty browses every product the filters allow.
	// Each word must match title, brand, description or attributes, with
	// stemming and typo tolerance; the last word also matches as a prefix.
	Text string
	// Category is a category slug; products in its subcategories match too.
	Category string
	// Brand matches the whole brand name, case-insensitively.
	Brand string
	// Seller is a seller ID.
	Seller string
	// MinPrice and MaxPrice bound Document.MinPrice, inclusively, in minor
	// units; nil means unbounded.
	MinPrice, MaxPrice *int64
	// InStock keeps only products that can be bought now.
	InStock bool
	// Sort is empty or one of the Sort constants.
	Sort Sort
	// PageSize is 0 for DefaultPageSize, else 1..MaxPageSize.
	PageSize int
	// PageToken is a previous Result.NextPageToken, or empty for page one.
	PageToken string
}

// Result is one page of search results.
type Result struct {
	Items []Hit `json:"items"`
	// Total counts every match, not only this page.
	Total  uint64 `json:"total"`
	Facets Facets `json:"facets"`
	// NextPageToken is empty on the last page reachable (see MaxOffset).
	NextPageToken string `json:"next_page_token,omitempty"`
}

// Hit is a matching product.
type Hit struct {
	Document
	Score float64 `json:"score"`
	// Highlights maps "title" and "description" to HTML fragments: matched
	// words are wrapped in <mark>, everything else is HTML-escaped.
	Highlights map[string][]string `json:"highlights,omitempty"`
}

// Facets count the matching products (all pages, after filters) by value.
type Facets struct {
	// Category counts category slugs; a product counts for its category and
	// every ancestor, matching how the Category filter works.
	Category []FacetValue `json:"category"`
	Brand    []FacetValue `json:"brand"`
	// Seller values are seller IDs; Label is the seller's name.
	Seller []FacetValue `json:"seller"`
	// Price has every range of PriceRanges, in order, even when empty.
	Price []PriceRange `json:"price"`
}

// FacetValue is one value of a facet, most frequent first.
type FacetValue struct {
	Value string `json:"value"`
	Label string `json:"label,omitempty"`
	Count int    `json:"count"`
}

// PriceRange is a price bucket in minor units. Min and Max are inclusive
// (Max nil means no upper bound), so a client can copy them into
// Query.MinPrice and Query.MaxPrice.
type PriceRange struct {
	Label string `json:"label"`
	Min   int64  `json:"min"`
	Max   *int64 `json:"max,omitempty"`
	Count int    `json:"count"`
}

// PriceRanges are the fixed price buckets of Facets.Price. Labels are in
// major units, as the marketplace sells in one two-decimal currency.
func PriceRanges() []PriceRange {
	upTo := func(v int64) *int64 { return &v }
	return []PriceRange{
		{Label: "Under 25", Min: 0, Max: upTo(24_99)},
		{Label: "25 to 50", Min: 25_00, Max: upTo(49_99)},
		{Label: "50 to 100", Min: 50_00, Max: upTo(99_99)},
		{Label: "100 to 200", Min: 100_00, Max: upTo(199_99)},
		{Label: "200 and up", Min: 200_00},
	}
}

// facetSize bounds the values returned per term facet.
const facetSize = 20

// searchFields are the text fields a query word may match, with their boosts:
// a word in the title says more about the product than one in its brand, and
// far more than one deep in the description.
var searchFields = []struct {
	name  string
	boost float64
}{
	{fieldTitle, 4},
	{fieldBrand, 2},
	{fieldDescription, 1},
	{fieldDetails, 0.5},
}

// Search runs q. It returns an Invalid error (naming the field) for a bad
// query or page token.
func (ix *Index) Search(ctx context.Context, q Query) (Result, error) {
	words, offset, err := ix.validate(q)
	if err != nil {
		return Result{}, err
	}
	size := q.PageSize
	if size == 0 {
		size = DefaultPageSize
	}

	var match query.Query = bleve.NewMatchAllQuery()
	if len(words) > 0 {
		match = ix.textQuery(words)
	}
	bq := bleve.NewBooleanQuery()
	bq.AddMust(match)
	// Filters go in Filter, not Must, so they do not change scores.
	bq.AddFilter(filterQuery(q))

	req := bleve.NewSearchRequestOptions(bq, size, offset, false)
	req.Fields = []string{fieldSource}
	req.SortBy(sortOrder(q.Sort))
	if len(words) > 0 {
		req.Highlight = bleve.NewHighlightWithStyle(html.Name)
		req.Highlight.AddField(fieldTitle)
		req.Highlight.AddField(fieldDescription)
	}
	req.AddFacet(fieldCategory, bleve.NewFacetRequest(fieldCategory, facetSize))
	req.AddFacet(fieldBrandFacet, bleve.NewFacetRequest(fieldBrandFacet, facetSize))
	req.AddFacet(fieldSellerFacet, bleve.NewFacetRequest(fieldSellerFacet, facetSize))
	price := bleve.NewFacetRequest(fieldMinPrice, len(PriceRanges()))
	for _, r := range PriceRanges() {
		lo := float64(r.Min)
		var hi *float64
		if r.Max != nil {
			v := float64(*r.Max + 1) // Bleve's range maximum is exclusive
			hi = &v
		}
		price.AddNumericRange(r.Label, &lo, hi)
	}
	req.AddFacet(fieldMinPrice, price)

	res, err := ix.bleve.SearchInContext(ctx, req)
	if err != nil {
		return Result{}, fmt.Errorf("search: %w", err)
	}

	out := Result{Items: make([]Hit, 0, len(res.Hits)), Total: res.Total}
	for _, h := range res.Hits {
		hit := Hit{Score: h.Score}
		src, _ := h.Fields[fieldSource].(string)
		if err := json.Unmarshal([]byte(src), &hit.Document); err != nil {
			return Result{}, fmt.Errorf("search: decode %s: %w", h.ID, err)
		}
		for field, frags := range h.Fragments {
			for _, f := range frags {
				// Bleve also returns the field's opening as a fragment when
				// only another field matched; keep real highlights only.
				if strings.Contains(f, "<mark>") {
					if hit.Highlights == nil {
						hit.Highlights = map[string][]string{}
					}
					hit.Highlights[field] = append(hit.Highlights[field], f)
				}
			}
		}
		out.Items = append(out.Items, hit)
	}
	out.Facets = facets(res.Facets)
	if next := offset + size; uint64(next) < res.Total && next <= MaxOffset {
		out.NextPageToken = EncodePageToken(next)
	}
	return out, nil
}

// validate checks q and returns its words and decoded offset.
func (ix *Index) validate(q Query) ([]string, int, error) {
	f := errs.Fields{}
	f.Check(len(q.Text) <= MaxTextLen, "text", fmt.Sprintf("must be at most %d bytes", MaxTextLen))
	f.Check(utf8.ValidString(q.Text), "text", "must be UTF-8")
	var words []string
	if len(q.Text) <= MaxTextLen {
		words = ix.words(q.Text)
		f.Check(len(words) <= MaxWords, "text", fmt.Sprintf("must have at most %d words", MaxWords))
	}
	switch q.Sort {
	case "", SortRelevance, SortNewest, SortPriceAsc, SortPriceDesc:
	default:
		f.Add("sort", "must be relevance, newest, price_asc or price_desc")
	}
	f.Check(q.PageSize >= 0 && q.PageSize <= MaxPageSize, "page_size", fmt.Sprintf("must be between 1 and %d", MaxPageSize))
	f.Check(q.MinPrice == nil || *q.MinPrice >= 0, "min_price", "must not be negative")
	f.Check(q.MaxPrice == nil || *q.MaxPrice >= 0, "max_price", "must not be negative")
	f.Check(q.MinPrice == nil || q.MaxPrice == nil || *q.MinPrice <= *q.MaxPrice, "max_price", "must not be below min_price")
	offset := 0
	if q.PageToken != "" {
		var err error
		if offset, err = DecodePageToken(q.PageToken); err != nil {
			f.Add("page_token", "is malformed")
		}
	}
	return words, offset, f.Err()
}

// textQuery requires every word to match somewhere, so "merino sweater" does
// not drown in every merino and every sweater. A word matches as its English
// stem, as itself within a typo budget, and, if it is the last word (still
// being typed), as a prefix. Exact spellings score higher than typos because
// Bleve divides a fuzzy match's score by edit distance + 1.
func (ix *Index) textQuery(words []string) query.Query {
	all := bleve.NewConjunctionQuery()
	for i, w := range words {
		last := i == len(words)-1
		// A stop word matches no stemmed field, so requiring it would reject
		// everything ("sweater for men"). The last one stays: it may be the
		// start of a longer word.
		if !last && len(ix.stemmed(w)) == 0 {
			continue
		}
		var alts []query.Query
		for _, f := range searchFields {
			m := bleve.NewMatchQuery(w)
			m.SetField(f.name + stemmedSuffix)
			// Bleve finds a field's analyzer by document path, which a renamed
			// field mapping does not have; name it here.
			m.Analyzer = en.AnalyzerName
			m.SetBoost(f.boost)
			alts = append(alts, m)
			if fz := fuzziness(w); fz > 0 {
				fq := bleve.NewFuzzyQuery(w)
				fq.SetField(f.name)
				fq.SetFuzziness(fz)
				fq.SetBoost(f.boost)
				alts = append(alts, fq)
			}
			if last {
				p := bleve.NewPrefixQuery(w)
				p.SetField(f.name)
				p.SetBoost(f.boost / 2)
				alts = append(alts, p)
			}
		}
		all.AddQuery(bleve.NewDisjunctionQuery(alts...))
	}
	return all
}

// fuzziness is the typo budget of a word: none for very short words (every
// two-letter word is one edit from dozens of others), one edit up to five
// characters, two beyond.
func fuzziness(word string) int {
	switch n := utf8.RuneCountInString(word); {
	case n <= 2:
		return 0
	case n <= 5:
		return 1
	default:
		return 2
	}
}

func filterQuery(q Query) query.Query {
	term := func(field, value string) query.Query {
		t := bleve.NewTermQuery(value)
		t.SetField(field)
		return t
	}
	// Callers may delete hidden or archived products; filtering as well keeps
	// them out even when an update arrives before the delete.
	and := bleve.NewConjunctionQuery(term(fieldStatus, StatusActive))
	if q.Category != "" {
		and.AddQuery(term(fieldCategory, q.Category))
	}
	if q.Brand != "" {
		and.AddQuery(term(fieldBrandKey, strings.ToLower(q.Brand)))
	}
	if q.Seller != "" {
		and.AddQuery(term(fieldSellerID, q.Seller))
	}
	if q.MinPrice != nil || q.MaxPrice != nil {
		var lo, hi *float64
		if q.MinPrice != nil {
			v := float64(*q.MinPrice)
			lo = &v
		}
		if q.MaxPrice != nil {
			v := float64(*q.MaxPrice)
			hi = &v
		}
		inclusive := true
		r := bleve.NewNumericRangeInclusiveQuery(lo, hi, &inclusive, &inclusive)
		r.SetField(fieldMinPrice)
		and.AddQuery(r)
	}
	if q.InStock {
		b := bleve.NewBoolFieldQuery(true)
		b.SetField(fieldInStock)
		and.AddQuery(b)
	}
	return and
}

// sortOrder ends every order with the ID so pages are stable when values tie.
func sortOrder(s Sort) []string {
	switch s {
	case SortNewest:
		return []string{"-" + fieldCreatedAt, "_id"}
	case SortPriceAsc:
		return []string{fieldMinPrice, "-_score", "_id"}
	case SortPriceDesc:
		return []string{"-" + fieldMinPrice, "-_score", "_id"}
	default:
		return []string{"-_score", "-" + fieldCreatedAt, "_id"}
	}
}

func facets(fr bsearch.FacetResults) Facets {
	terms := func(name string) []FacetValue {
		out := []FacetValue{}
		r, ok := fr[name]
		if !ok || r.Terms == nil {
			return out
		}
		for _, t := range r.Terms.Terms() {
			if t.Term != "" {
				out = append(out, FacetValue{Value: t.Term, Count: t.Count})
			}
		}
		return out
	}
	f := Facets{
		Category: terms(fieldCategory),
		Brand:    terms(fieldBrandFacet),
		Seller:   terms(fieldSellerFacet),
		Price:    PriceRanges(),
	}
	for i, v := range f.Seller {
		f.Seller[i].Value, f.Seller[i].Label, _ = strings.Cut(v.Value, sellerSep)
	}
	if r, ok := fr[fieldMinPrice]; ok {
		counts := map[string]int{}
		for _, nr := range r.NumericRanges {
			counts[nr.Name] = nr.Count
		}
		for i := range f.Price {
			f.Price[i].Count = counts[f.Price[i].Label]
		}
	}
	return f
}
