package search

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
)

// TestIndexSearchTies checks that pages in relevance order are the pages of
// one order, equal scores newest first and then by ID, whatever the page
// size: ties within a page, across its ends, and in runs longer than what
// pageByScore reads past a page.
func TestIndexSearchTies(t *testing.T) {
	t.Parallel()
	day := func(d int) time.Time { return time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, d) }
	var docs []Document
	for i := range 3*tieWindow + 7 {
		// Identical titles score (about) the same; creation days repeat so
		// that both newest-first and the ID decide.
		title := []string{"Lamp", "Lamp with a shade", "Desk lamp with a long arm"}[i%3]
		docs = append(docs, Document{ID: fmt.Sprintf("p%02d", i), Title: title, Status: StatusActive, CreatedAt: day(i % 4)})
	}
	ix := newTestIndex(t, docs...)

	// The expected order is Bleve's, sorting every hit.
	q := Query{Text: "lamp"}
	qw := ix.queryWords(ix.words(q.Text))
	bq := bleve.NewBooleanQuery()
	bq.AddMust(textQuery(qw, nil))
	bq.AddFilter(filterQuery(q))
	req := bleve.NewSearchRequestOptions(bq, len(docs), 0, false)
	req.SortBy(sortOrder(SortRelevance))
	res, err := ix.bleve.SearchInContext(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	ties := 0
	for i, h := range res.Hits {
		want = append(want, h.ID)
		if i > 0 && h.Score == res.Hits[i-1].Score {
			ties++
		}
	}
	if len(want) != len(docs) || ties < tieWindow {
		t.Fatalf("%d hits with %d ties: the test needs all documents and long runs of ties", len(want), ties)
	}

	for _, size := range []int{1, 3, 5, 20, len(docs)} {
		t.Run(fmt.Sprintf("pages of %d", size), func(t *testing.T) {
			t.Parallel()
			var got []string
			q := Query{Text: "lamp", PageSize: size}
			for {
				res := search(t, ix, q)
				got = append(got, ids(res.Items)...)
				if res.NextPageToken == "" {
					break
				}
				q.PageToken = res.NextPageToken
			}
			if !slices.Equal(got, want) {
				t.Errorf("got  %v\nwant %v", got, want)
			}
		})
	}
}
