package search

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/mallhive/mallhive/internal/platform/errs"
)

// SuggestionKind says what a suggestion completes to.
type SuggestionKind string

const (
	KindProduct  SuggestionKind = "product"
	KindBrand    SuggestionKind = "brand"
	KindCategory SuggestionKind = "category"
)

// MaxSuggestions bounds Suggest's n.
const MaxSuggestions = 10

// Suggestion is one completion of a typed prefix.
type Suggestion struct {
	// Text is a product title, a brand, or a category slug.
	Text string         `json:"text"`
	Kind SuggestionKind `json:"kind"`
	// ID is the product ID of a product suggestion.
	ID string `json:"id,omitempty"`
}

// suggestFacetScan is how many brand or category values are read before
// keeping those that match, since a product can match through one field
// and bring along values of another.
const suggestFacetScan = 50

// Suggest completes prefix with up to n (clamped to 1..MaxSuggestions)
// brands, categories and product titles of active products. Every earlier
// word must match a whole word, case-insensitively; the last word matches as
// a prefix. No typo tolerance: suggestions run on every keystroke and must
// stay cheap. It returns an Invalid error for an over-long prefix.
func (ix *Index) Suggest(ctx context.Context, prefix string, n int) ([]Suggestion, error) {
	if len(prefix) > MaxTextLen || !utf8.ValidString(prefix) {
		return nil, errs.Field("prefix", fmt.Sprintf("must be UTF-8 of at most %d bytes", MaxTextLen))
	}
	n = min(max(n, 1), MaxSuggestions)
	words := ix.words(prefix)
	if len(words) == 0 {
		return []Suggestion{}, nil
	}
	if len(words) > MaxWords {
		return nil, errs.Field("prefix", fmt.Sprintf("must have at most %d words", MaxWords))
	}

	products, err := ix.suggestProducts(ctx, words, n)
	if err != nil {
		return nil, err
	}
	brands, err := ix.suggestValues(ctx, words, fieldBrand, facetBrand, KindBrand, n)
	if err != nil {
		return nil, err
	}
	categories, err := ix.suggestValues(ctx, words, fieldCategoryWords, facetCategory, KindCategory, n)
	if err != nil {
		return nil, err
	}

	// A few brands and categories lead (they narrow a search the most), then
	// products fill the list; leftovers top it up if products run short.
	quota := max(1, n/4)
	out := make([]Suggestion, 0, n)
	take := func(from *[]Suggestion, limit int) {
		k := min(limit, len(*from), n-len(out))
		out = append(out, (*from)[:k]...)
		*from = (*from)[k:]
	}
	take(&brands, quota)
	take(&categories, quota)
	take(&products, n)
	take(&brands, n)
	take(&categories, n)
	return out, nil
}

// wordsQuery matches field holding all words, the last one as a prefix.
func wordsQuery(field string, words []string) query.Query {
	all := bleve.NewConjunctionQuery()
	for i, w := range words {
		if i == len(words)-1 {
			p := bleve.NewPrefixQuery(w)
			p.SetField(field)
			all.AddQuery(p)
		} else {
			t := bleve.NewTermQuery(w)
			t.SetField(field)
			all.AddQuery(t)
		}
	}
	return all
}

func activeOnly(q query.Query) query.Query {
	status := bleve.NewTermQuery(StatusActive)
	status.SetField(fieldStatus)
	bq := bleve.NewBooleanQuery()
	bq.AddMust(q)
	bq.AddFilter(status)
	return bq
}

func (ix *Index) suggestProducts(ctx context.Context, words []string, n int) ([]Suggestion, error) {
	// Twice as many hits as needed: in a marketplace several sellers list the
	// same title, and duplicates are dropped.
	req := bleve.NewSearchRequestOptions(activeOnly(wordsQuery(fieldTitle, words)), 2*n, 0, false)
	req.Fields = []string{fieldTitle}
	req.SortBy(sortOrder(SortRelevance))
	res, err := ix.bleve.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("suggest products: %w", err)
	}
	out := []Suggestion{}
	seen := map[string]bool{}
	for _, h := range res.Hits {
		title, _ := h.Fields[fieldTitle].(string)
		if key := strings.ToLower(title); title != "" && !seen[key] && len(out) < n {
			seen[key] = true
			out = append(out, Suggestion{Text: title, Kind: KindProduct, ID: h.ID})
		}
	}
	return out, nil
}

// suggestValues finds products whose matchField matches words and returns
// the most frequent values of a facet (facetBrand, ...) that match words
// themselves.
func (ix *Index) suggestValues(ctx context.Context, words []string, matchField, facet string, kind SuggestionKind, n int) ([]Suggestion, error) {
	req := bleve.NewSearchRequestOptions(activeOnly(wordsQuery(matchField, words)), 0, 0, false)
	req.Score = "none" // only the facet counts are read
	req.AddFacet(facet, facetRequest(facet, suggestFacetScan))
	res, err := ix.bleve.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("suggest %s: %w", kind, err)
	}
	out := []Suggestion{}
	for _, v := range facetValues(res.Facets, facet) {
		// A category facet lists every slug on a matching product's path,
		// ancestors included; keep only the values the words describe.
		if len(out) < n && matchesWords(ix.words(v.Value), words) {
			out = append(out, Suggestion{Text: v.Value, Kind: kind})
		}
	}
	return out, nil
}

// matchesWords mirrors wordsQuery on an already-split value.
func matchesWords(have, words []string) bool {
	for i, w := range words {
		found := false
		for _, h := range have {
			if h == w || (i == len(words)-1 && strings.HasPrefix(h, w)) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
