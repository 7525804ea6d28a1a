package search

import (
	"context"
	"fmt"
	"testing"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/search/query"
)

// bleveTextQuery is textQuery as Bleve's own queries spell it: MatchQuery
// for the stems, FuzzyQuery for typos.
func bleveTextQuery(words []queryWord) query.Query {
	all := bleve.NewConjunctionQuery()
	for _, w := range words {
		var alts []query.Query
		for _, f := range searchFields {
			m := bleve.NewMatchQuery(w.text)
			m.SetField(f.name + stemmedSuffix)
			m.Analyzer = en.AnalyzerName
			m.SetBoost(f.boost)
			alts = append(alts, m)
			if w.fuzziness > 0 {
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

// TestIndexTextQueryMatchesBleve checks that textQuery, with the typo
// matches of fuzzyTerms, finds the same hits with the same scores as
// Bleve's MatchQuery and FuzzyQuery, over several segments.
func TestIndexTextQueryMatchesBleve(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ix := newTestIndex(t, catalog()...)
	// More segments, with terms a typo away from each other.
	for i, title := range []string{"Merino sweeter", "Wool swaeter", "Sweaters for men's hiking", "Merion scraf", "Alpaca scarves", "Cotten crew"} {
		if err := ix.Upsert(ctx, Document{ID: fmt.Sprintf("x%d", i), Title: title, Description: "A " + title + ".", Brand: "Nordwolle", Status: StatusActive}); err != nil {
			t.Fatal(err)
		}
	}
	for _, text := range []string{"merino sweater", "merno swe", "sweaters", "wool c", "scarf", "alpaca scraf", "the men's", "a", "nordwole", "cotton crew sweater", "xyz"} {
		t.Run(text, func(t *testing.T) {
			t.Parallel()
			words := ix.queryWords(ix.words(text))
			fuzzy, err := ix.fuzzyTerms(ctx, words, plainFields())
			if err != nil {
				t.Fatal(err)
			}
			run := func(q query.Query) *bleve.SearchResult {
				req := bleve.NewSearchRequestOptions(q, 100, 0, false)
				req.SortBy(sortOrder(SortRelevance))
				res, err := ix.bleve.SearchInContext(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			got, want := run(textQuery(words, fuzzy)), run(bleveTextQuery(words))
			if got.Total != want.Total || len(got.Hits) != len(want.Hits) {
				t.Fatalf("got %d hits, want %d", got.Total, want.Total)
			}
			for i := range want.Hits {
				if g, w := got.Hits[i], want.Hits[i]; g.ID != w.ID || g.Score != w.Score {
					t.Errorf("hit %d: got %s (%v), want %s (%v)", i, g.ID, g.Score, w.ID, w.Score)
				}
			}
		})
	}
}
