package search

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/mapping"
	bsearch "github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	"github.com/blevesearch/bleve/v2/search/searcher"
	bindex "github.com/blevesearch/bleve_index_api"

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

// filteredQuery is a BooleanQuery of one Must query and a Filter, which does
// not change scores, without the searchers Bleve's BooleanQuery wraps around
// the Must query (a conjunction of one, then a boolean searcher) that score
// every hit twice more: the same hits and scores, up to a tenth faster.
type filteredQuery struct {
	must, filter query.Query
}

func (q *filteredQuery) Searcher(ctx context.Context, r bindex.IndexReader, m mapping.IndexMapping, options bsearch.SearcherOptions) (bsearch.Searcher, error) {
	must, err := q.must.Searcher(ctx, r, m, options)
	if err != nil {
		return nil, err
	}
	filter, err := q.filter.Searcher(ctx, r, m, bsearch.SearcherOptions{Score: "none"})
	if err != nil {
		must.Close()
		return nil, err
	}
	return &filteringSearcher{searcher.NewFilteringSearcher(ctx, must, accepts(filter)), filter}, nil
}

// accepts reports whether filter matches a document, for hits in document
// order, as Bleve's BooleanQuery does with its Filter.
func accepts(filter bsearch.Searcher) searcher.FilterFunc {
	var started bool
	var at *bsearch.DocumentMatch
	return func(sctx *bsearch.SearchContext, d *bsearch.DocumentMatch) bool {
		var err error
		if !started {
			if at, err = filter.Next(sctx); err != nil {
				return false
			}
			started = true
		}
		if at == nil {
			return false
		}
		c := at.IndexInternalID.Compare(d.IndexInternalID)
		if c < 0 {
			sctx.DocumentMatchPool.Put(at)
			if at, err = filter.Advance(sctx, d.IndexInternalID); err != nil || at == nil {
				return false
			}
			c = at.IndexInternalID.Compare(d.IndexInternalID)
		}
		return c == 0
	}
}

// filteringSearcher closes the filter's searcher too.
type filteringSearcher struct {
	*searcher.FilteringSearcher
	filter bsearch.Searcher
}

func (s *filteringSearcher) Close() error {
	return errors.Join(s.FilteringSearcher.Close(), s.filter.Close())
}

// plainFields are the unstemmed fields of searchFields, which typos match.
func plainFields() []string {
	names := make([]string, len(searchFields))
	for i, f := range searchFields {
		names[i] = f.name
	}
	return names
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

	qwords := ix.queryWords(words)
	typos, err := ix.fuzzyTerms(ctx, qwords, plainFields())
	if err != nil {
		return Result{}, fmt.Errorf("search: %w", err)
	}
	newQuery := func() query.Query {
		var match query.Query = bleve.NewMatchAllQuery()
		if len(qwords) > 0 {
			match = textQuery(qwords, typos)
		}
		return &filteredQuery{must: match, filter: filterQuery(q)}
	}

	// Facets read values of every hit, the page needs every hit scored:
	// two queries, run side by side, so that a search takes the longer of
	// the two rather than their sum when there is a spare core. Unscored,
	// the facets' query costs little more than reading the values (Bleve
	// then merges the words' postings as bitmaps).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	facetsDone := make(chan facetsResult, 1)
	go func() {
		req := bleve.NewSearchRequestOptions(newQuery(), 0, 0, false)
		req.Score = "none"
		req.AddFacet(facetCategory, facetRequest(facetCategory, facetSize))
		req.AddFacet(facetBrand, facetRequest(facetBrand, facetSize))
		req.AddFacet(facetSeller, facetRequest(facetSeller, facetSize))
		req.AddFacet(facetPrice, facetRequest(facetPrice, len(PriceRanges())))
		res, err := ix.bleve.SearchInContext(ctx, req)
		if err != nil {
			facetsDone <- facetsResult{err: err}
			return
		}
		facetsDone <- facetsResult{facets: facets(res.Facets)}
	}()

	hits, total, err := ix.page(ctx, newQuery(), q.Sort, len(qwords) > 0, offset, size)
	if err != nil {
		return Result{}, fmt.Errorf("search: %w", err)
	}
	if len(qwords) > 0 {
		for i := range hits {
			hits[i].Highlights = ix.highlight(qwords, typos, hits[i].Document)
		}
	}
	fr := <-facetsDone
	if fr.err != nil {
		return Result{}, fmt.Errorf("search: facets: %w", fr.err)
	}
	out := Result{Items: hits, Total: total, Facets: fr.facets}
	if next := offset + size; uint64(next) < total && next <= MaxOffset {
		out.NextPageToken = EncodePageToken(next)
	}
	return out, nil
}

// page returns at most size hits of q from offset, in the order of
// sortOrder(s), with their documents, and the number of matches. scored
// tells a text query from browsing, where all scores are equal.
func (ix *Index) page(ctx context.Context, q query.Query, s Sort, scored bool, offset, size int) ([]Hit, uint64, error) {
	if scored && (s == "" || s == SortRelevance) {
		hits, total, ok, err := ix.pageByScore(ctx, q, offset, size)
		if err != nil || ok {
			return hits, total, err
		}
	}
	req := bleve.NewSearchRequestOptions(q, size, offset, false)
	req.Fields = []string{fieldSource}
	req.SortBy(sortOrder(s))
	res, err := ix.bleve.SearchInContext(ctx, req)
	if err != nil {
		return nil, 0, err
	}
	hits := make([]Hit, len(res.Hits))
	for i, h := range res.Hits {
		hits[i].Score = h.Score
		if err := decodeSource(h, &hits[i].Document); err != nil {
			return nil, 0, err
		}
	}
	return hits, res.Total, nil
}

// tieWindow is how many hits pageByScore reads past the page.
const tieWindow = 10

// pageByScore is page in relevance order, with Bleve ordering the hits by
// score only: ordering them by score then newestKey costs a doc-value read
// and a sort key for every hit, a sixth of a broad query. It reads a few
// hits past the page and orders the runs of equal scores the page cuts
// through itself, from their documents. It reports false, and page then
// has Bleve order everything, when such a run goes on past what it read or
// a hit was deleted meanwhile.
func (ix *Index) pageByScore(ctx context.Context, q query.Query, offset, size int) ([]Hit, uint64, bool, error) {
	n := offset + size + tieWindow
	req := bleve.NewSearchRequestOptions(q, n, 0, false)
	req.SortBy([]string{"-_score"})
	res, err := ix.bleve.SearchInContext(ctx, req)
	if err != nil {
		return nil, 0, false, err
	}
	hits := res.Hits
	end := min(offset+size, len(hits))
	if offset >= end {
		return []Hit{}, res.Total, true, nil
	}
	if len(hits) == n && hits[n-1].Score == hits[end-1].Score {
		return nil, 0, false, nil
	}
	lo, hi := offset, end
	for lo > 0 && hits[lo-1].Score == hits[lo].Score {
		lo--
	}
	for hi < len(hits) && hits[hi].Score == hits[hi-1].Score {
		hi++
	}
	docs, err := ix.documents(ctx, hits[lo:hi])
	if err != nil || len(docs) < hi-lo {
		return nil, 0, false, err
	}
	run := make([]Hit, hi-lo)
	for i, h := range hits[lo:hi] {
		run[i] = Hit{Document: docs[h.ID], Score: h.Score}
	}
	slices.SortStableFunc(run, func(a, b Hit) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return strings.Compare(newestKey(a.Document), newestKey(b.Document))
	})
	return run[offset-lo : end-lo], res.Total, true, nil
}

// documents loads the documents of hits, by ID.
func (ix *Index) documents(ctx context.Context, hits bsearch.DocumentMatchCollection) (map[string]Document, error) {
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = h.ID
	}
	req := bleve.NewSearchRequestOptions(bleve.NewDocIDQuery(ids), len(ids), 0, false)
	req.Fields = []string{fieldSource}
	res, err := ix.bleve.SearchInContext(ctx, req)
	if err != nil {
		return nil, err
	}
	docs := make(map[string]Document, len(res.Hits))
	for _, h := range res.Hits {
		var d Document
		if err := decodeSource(h, &d); err != nil {
			return nil, err
		}
		docs[h.ID] = d
	}
	return docs, nil
}

func decodeSource(h *bsearch.DocumentMatch, d *Document) error {
	src, _ := h.Fields[fieldSource].(string)
	if err := json.Unmarshal([]byte(src), d); err != nil {
		return fmt.Errorf("decode %s: %w", h.ID, err)
	}
	return nil
}

// highlight returns the fragments of d's title and description with the
// words the query matched there marked, made by Bleve's html highlighter.
// Bleve would find the matches in positions kept in the index (term
// vectors), read for every hit of the query; finding them again in the
// page's documents instead, as textQuery matches the plain fields, is far
// cheaper, and so is an index without positions.
func (ix *Index) highlight(words []queryWord, t *typos, d Document) map[string][]string {
	var out map[string][]string
	for _, f := range []struct{ name, text string }{{fieldTitle, d.Title}, {fieldDescription, d.Description}} {
		tlm := bsearch.TermLocationMap{}
		for _, tok := range ix.analyzers.words.Analyze([]byte(f.text)) {
			term := string(tok.Term)
			for _, w := range words {
				if t.matches(w, term) {
					tlm.AddLocation(term, &bsearch.Location{Pos: uint64(tok.Position), Start: uint64(tok.Start), End: uint64(tok.End)})
					break
				}
			}
		}
		if len(tlm) == 0 {
			continue
		}
		doc := document.NewDocument(d.ID)
		doc.AddField(document.NewTextField(f.name, nil, []byte(f.text)))
		dm := &bsearch.DocumentMatch{Locations: bsearch.FieldTermLocationMap{f.name: tlm}}
		for _, frag := range ix.highlighter.BestFragmentsInField(dm, doc, f.name, 1) {
			if strings.Contains(frag, "<mark>") {
				if out == nil {
					out = map[string][]string{}
				}
				out[f.name] = append(out[f.name], frag)
			}
		}
	}
	return out
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

// queryWord is a word of Query.Text as textQuery matches it.
type queryWord struct {
	text string
	// stems are what the English analyzer makes of text.
	stems []string
	// fuzziness is the typo budget on the plain fields (see fuzziness).
	fuzziness int
	// prefix is set on the last word, which may still be being typed.
	prefix bool
}

// queryWords returns the words textQuery requires. A stop word matches no
// stemmed field, so requiring it would reject everything ("sweater for
// men"). The last one stays: it may be the start of a longer word.
func (ix *Index) queryWords(words []string) []queryWord {
	out := make([]queryWord, 0, len(words))
	for i, w := range words {
		last := i == len(words)-1
		stems := ix.stemmed(w)
		if !last && len(stems) == 0 {
			continue
		}
		out = append(out, queryWord{text: w, stems: stems, fuzziness: fuzziness(w), prefix: last})
	}
	return out
}

// textQuery requires every word to match somewhere, so "merino sweater" does
// not drown in every merino and every sweater. A word matches as its English
// stem, as itself within a typo budget, and, if it is the last word (still
// being typed), as a prefix. Exact spellings score higher than typos because
// Bleve divides a fuzzy match's score by edit distance + 1. t holds the typo
// matches from fuzzyTerms; without them (nil) Bleve finds its own.
func textQuery(words []queryWord, t *typos) query.Query {
	all := bleve.NewConjunctionQuery()
	for _, w := range words {
		var alts []query.Query
		for _, f := range searchFields {
			alts = append(alts, stemQuery(w, f.name+stemmedSuffix, f.boost))
			if m, ok := t.match(f.name, w.text); ok {
				alts = append(alts, &fuzzyQuery{word: w.text, field: f.name, boost: f.boost, matches: m})
			} else if w.fuzziness > 0 {
				fq := bleve.NewFuzzyQuery(w.text)
				fq.SetField(f.name)
				fq.SetFuzziness(w.fuzziness)
				fq.SetBoost(f.boost)
				alts = append(alts, fq)
			}
			if w.prefix {
				p := bleve.NewPrefixQuery(w.text)
				p.SetField(f.name)
				p.SetBoost(f.boost / 2)
				alts = append(alts, p)
			}
		}
		all.AddQuery(bleve.NewDisjunctionQuery(alts...))
	}
	return all
}

// stemQuery matches w's English stem in field, as a MatchQuery with the
// English analyzer does, but without the disjunction of one searcher that
// MatchQuery puts around a single term, which scores every hit once more
// for the same score.
func stemQuery(w queryWord, field string, boost float64) query.Query {
	if len(w.stems) == 1 {
		t := bleve.NewTermQuery(w.stems[0])
		t.SetField(field)
		t.SetBoost(boost)
		return t
	}
	m := bleve.NewMatchQuery(w.text)
	m.SetField(field)
	// Bleve finds a field's analyzer by document path, which a renamed
	// field mapping does not have; name it here.
	m.Analyzer = en.AnalyzerName
	m.SetBoost(boost)
	return m
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
		and.AddQuery(term(fieldFacets, facetCategory+q.Category))
	}
	if q.Brand != "" {
		and.AddQuery(term(fieldBrandKey, strings.ToLower(q.Brand)))
	}
	if q.Seller != "" {
		// Facet values are ID and name; a renamed seller has both names
		// until all its products are reindexed.
		p := bleve.NewPrefixQuery(facetSeller + q.Seller + sellerSep)
		p.SetField(fieldFacets)
		and.AddQuery(p)
	}
	if q.MinPrice != nil || q.MaxPrice != nil {
		and.AddQuery(priceRangeQuery(q.MinPrice, q.MaxPrice))
	}
	if q.InStock {
		b := bleve.NewBoolFieldQuery(true)
		b.SetField(fieldInStock)
		and.AddQuery(b)
	}
	return and
}

// sortOrder ends every order with fieldNewest, newest first and then by ID,
// so pages are stable when values tie.
func sortOrder(s Sort) []string {
	switch s {
	case SortNewest:
		return []string{fieldNewest}
	case SortPriceAsc:
		return []string{fieldPriceKey, "-_score", fieldNewest}
	case SortPriceDesc:
		return []string{"-" + fieldPriceKey, "-_score", fieldNewest}
	default:
		return []string{"-_score", fieldNewest}
	}
}

type facetsResult struct {
	facets Facets
	err    error
}

// facetRequest counts the values of one facet (facetBrand, ...), which all
// live in fieldFacets under their prefix.
func facetRequest(facet string, size int) *bleve.FacetRequest {
	r := bleve.NewFacetRequest(fieldFacets, size)
	r.SetPrefixFilter(facet)
	return r
}

// facetValues returns the counts of the facetRequest named facet, most
// frequent first, without the prefix.
func facetValues(fr bsearch.FacetResults, facet string) []FacetValue {
	out := []FacetValue{}
	r, ok := fr[facet]
	if !ok || r.Terms == nil {
		return out
	}
	for _, t := range r.Terms.Terms() {
		if v := strings.TrimPrefix(t.Term, facet); v != "" {
			out = append(out, FacetValue{Value: v, Count: t.Count})
		}
	}
	return out
}

func facets(fr bsearch.FacetResults) Facets {
	f := Facets{
		Category: facetValues(fr, facetCategory),
		Brand:    facetValues(fr, facetBrand),
		Seller:   facetValues(fr, facetSeller),
		Price:    PriceRanges(),
	}
	for i, v := range f.Seller {
		f.Seller[i].Value, f.Seller[i].Label, _ = strings.Cut(v.Value, sellerSep)
	}
	for _, v := range facetValues(fr, facetPrice) {
		if i, err := strconv.Atoi(v.Value); err == nil && i >= 0 && i < len(f.Price) {
			f.Price[i].Count = v.Count
		}
	}
	return f
}
