package search

import (
	"fmt"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search/query"
)

// The price filter. Bleve's numeric fields index 16 terms per value (the
// float64's bits at every 4-bit precision), and prices, as floats, differ in
// most of them: that field held nearly half of the index's distinct terms
// and cost a quarter of indexing time. fieldPrice holds fewer terms of the
// integer price instead, in the same scheme (a trie of 4-bit digits) cut
// short: priceLevels terms, each dropping one more low digit, and a range
// query covers the levels' whole blocks with few terms each and the rest
// with the existing terms of the top level.

// priceLevels is how many terms fieldPrice holds per document: level k is
// the price without its k lowest hex digits.
const priceLevels = 5

// priceKey maps a price to an unsigned key in the same order.
func priceKey(p int64) uint64 { return uint64(p) ^ (1 << 63) }

// priceTerm is the term of level k for a key already shifted by 4k bits:
// the level, then the remaining hex digits at a fixed width, so that terms
// of one level sort as their keys do.
func priceTerm(k int, shifted uint64) string {
	return fmt.Sprintf("%d%0*x", k, 16-k, shifted)
}

// priceTerms are fieldPrice's terms for price p.
func priceTerms(p int64) []string {
	key := priceKey(p)
	terms := make([]string, priceLevels)
	for k := range terms {
		terms[k] = priceTerm(k, key>>(4*k))
	}
	return terms
}

// priceRangeQuery matches documents whose price is within [lo, hi]; nil
// bounds are open.
func priceRangeQuery(lo, hi *int64) query.Query {
	from, to := priceKey(-1<<63), priceKey(1<<63-1)
	if lo != nil {
		from = priceKey(*lo)
	}
	if hi != nil {
		to = priceKey(*hi)
	}
	var terms []string
	for k := 0; k < priceLevels-1; k++ {
		// The partial blocks at each end take one term per key; what is
		// left is whole blocks, the next level's keys.
		if from&15 != 0 {
			end := min(to, from|15)
			for v := from; ; v++ {
				terms = append(terms, priceTerm(k, v))
				if v == end {
					break
				}
			}
			if end == to {
				return priceTermsQuery(terms, nil)
			}
			from = end + 1
		}
		if to&15 != 15 {
			start := max(from, to&^15)
			for v := start; ; v++ {
				terms = append(terms, priceTerm(k, v))
				if v == to {
					break
				}
			}
			if start == from {
				return priceTermsQuery(terms, nil)
			}
			to = start - 1
		}
		from, to = from>>4, to>>4
	}
	k := priceLevels - 1
	top := bleve.NewTermRangeInclusiveQuery(priceTerm(k, from), priceTerm(k, to), boolPtr(true), boolPtr(true))
	top.SetField(fieldPrice)
	return priceTermsQuery(terms, top)
}

func priceTermsQuery(terms []string, top query.Query) query.Query {
	or := bleve.NewDisjunctionQuery()
	for _, t := range terms {
		q := bleve.NewTermQuery(t)
		q.SetField(fieldPrice)
		or.AddQuery(q)
	}
	if top != nil {
		or.AddQuery(top)
	}
	return or
}

func boolPtr(b bool) *bool { return &b }
