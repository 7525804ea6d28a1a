package search

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/search/highlight/format/html"
	"github.com/blevesearch/bleve/v2/search/query"
)

// TestIndexHighlightMatchesBleve checks Index.highlight, which finds a
// page's matches itself, against Bleve's highlighter fed by term vectors:
// an index that keeps them for title and description, searched with the
// same text query.
func TestIndexHighlightMatchesBleve(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ix := newTestIndex(t)
	docs := append(catalog(),
		Document{ID: "typos", Title: "Merion sweeter, swaeter and sewater", Description: "Wool wools wolo; a merino–alpaca blend."},
		Document{ID: "unicode", Title: "Größe Straße café CAFÉ naïve", Description: "Kaffee aus Köln: grosse Tasse, größere Tassen."},
		Document{ID: "long", Title: "Scarf", Description: strings.Repeat("Filler words about nothing much at all. ", 12) +
			"A merino scarf in the middle. " + strings.Repeat("More filler to push it along. ", 12) + "Merino again, scarf again."},
	)

	// The index's analyzers, two plain fields with term vectors.
	m, err := newMapping()
	if err != nil {
		t.Fatal(err)
	}
	m.DefaultMapping = bleve.NewDocumentStaticMapping()
	for _, name := range []string{fieldTitle, fieldDescription} {
		f := bleve.NewTextFieldMapping()
		f.Analyzer, f.Store, f.IncludeTermVectors = wordsAnalyzer, true, true
		m.DefaultMapping.AddFieldMappingsAt(name, f)
	}
	withVectors, err := bleve.NewUsing("", m, scorch.Name, scorch.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { withVectors.Close() })
	for _, d := range docs {
		if err := withVectors.Index(d.ID, map[string]string{fieldTitle: d.Title, fieldDescription: d.Description}); err != nil {
			t.Fatal(err)
		}
	}

	byID := map[string]Document{}
	for _, d := range docs {
		byID[d.ID] = d
	}
	for _, text := range []string{"merino", "sweater", "merino swe", "wool", "wolo", "grosse", "größe", "strase", "cafés", "tasse", "the scarf", "a", "scarf again"} {
		t.Run(text, func(t *testing.T) {
			t.Parallel()
			words := ix.queryWords(ix.words(text))
			typos, err := ix.fuzzyTerms(ctx, words, plainFields())
			if err != nil {
				t.Fatal(err)
			}
			req := bleve.NewSearchRequestOptions(plainQuery(words), len(docs), 0, false)
			req.Highlight = bleve.NewHighlightWithStyle(html.Name)
			req.Highlight.AddField(fieldTitle)
			req.Highlight.AddField(fieldDescription)
			res, err := withVectors.SearchInContext(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Hits) == 0 {
				t.Fatalf("no hits: the case tests nothing")
			}
			for _, h := range res.Hits {
				want := map[string][]string{}
				for field, frags := range h.Fragments {
					for _, f := range frags {
						if strings.Contains(f, "<mark>") {
							want[field] = append(want[field], f)
						}
					}
				}
				got := ix.highlight(words, typos, byID[h.ID])
				if got == nil {
					got = map[string][]string{}
				}
				if !maps.EqualFunc(got, want, func(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
					t.Errorf("%s:\n got %q\nwant %q", h.ID, got, want)
				}
			}
		})
	}
}

// plainQuery matches any of words in the plain title or description as
// textQuery does there (typos and prefix): the matches highlighted.
func plainQuery(words []queryWord) query.Query {
	or := bleve.NewDisjunctionQuery()
	for _, w := range words {
		for _, field := range []string{fieldTitle, fieldDescription} {
			if w.fuzziness > 0 {
				fq := bleve.NewFuzzyQuery(w.text)
				fq.SetField(field)
				fq.SetFuzziness(w.fuzziness)
				or.AddQuery(fq)
			}
			if w.prefix {
				p := bleve.NewPrefixQuery(w.text)
				p.SetField(field)
				or.AddQuery(p)
			}
		}
	}
	return or
}
