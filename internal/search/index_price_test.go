package search

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/blevesearch/bleve/v2"
)

// TestIndexPriceRange checks the price filter against a plain comparison,
// for prices and bounds around the trie's block edges and at the extremes.
func TestIndexPriceRange(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	edges := []int64{math.MinInt64, math.MinInt64 + 1, -1 << 20, -257, -16, -1, 0, 1, 15, 16, 17, 255, 256, 257,
		4095, 4096, 65535, 65536, 65537, 1<<20 - 1, 1 << 20, 1<<20 + 1, 24_99, 25_00, 199_99, 1 << 40, math.MaxInt64 - 1, math.MaxInt64}
	var prices []int64
	for _, e := range edges {
		prices = append(prices, e)
	}
	for range 300 {
		prices = append(prices, int64(r.IntN(1<<21))-1<<10)
	}
	docs := make([]Document, len(prices))
	for i, p := range prices {
		docs[i] = Document{ID: fmt.Sprintf("d%03d", i), Status: StatusActive, MinPrice: p}
	}
	ix := newTestIndex(t, docs...)

	bound := func() *int64 {
		switch r.IntN(4) {
		case 0:
			return nil
		case 1:
			return price(edges[r.IntN(len(edges))])
		default:
			return price(prices[r.IntN(len(prices))] + int64(r.IntN(33)) - 16)
		}
	}
	for i := range 400 {
		lo, hi := bound(), bound()
		if lo != nil && hi != nil && *lo > *hi {
			lo, hi = hi, lo
		}
		var want []string
		for _, d := range docs {
			if (lo == nil || d.MinPrice >= *lo) && (hi == nil || d.MinPrice <= *hi) {
				want = append(want, d.ID)
			}
		}
		req := bleve.NewSearchRequestOptions(priceRangeQuery(lo, hi), len(docs), 0, false)
		req.SortBy([]string{"_id"})
		res, err := ix.bleve.SearchInContext(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range res.Hits {
			got = append(got, h.ID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("range %d [%v, %v]: got %d documents, want %d", i, deref(lo), deref(hi), len(got), len(want))
		}
	}
}

func deref(p *int64) any {
	if p == nil {
		return "open"
	}
	return *p
}
