package search

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	bsearch "github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/searcher"
	index "github.com/blevesearch/bleve_index_api"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// A search's typo tolerance is the costliest part of building its query:
// Bleve's FuzzyQuery builds a Levenshtein automaton (hundreds of kilobytes)
// for each word and field, then runs it over the field's terms in every
// segment, and a search runs its query twice (see Search). fuzzyTerms finds
// the terms instead, once per search, with one automaton per word, and
// fuzzyQuery searches them as Bleve's FuzzyQuery would. highlight uses the
// same automata to find typos in the hits' text.

// typos are the typo matches of a query's words.
type typos struct {
	terms map[fuzzyKey]fuzzyMatches
	// automata are Bleve's, by word.
	automata map[string]index.FuzzyAutomaton
}

// fuzzyKey names a word's typo matches in one field.
type fuzzyKey struct{ field, word string }

// match returns word's typo matches in field, if found.
func (t *typos) match(field, word string) (fuzzyMatches, bool) {
	if t == nil {
		return fuzzyMatches{}, false
	}
	m, ok := t.terms[fuzzyKey{field, word}]
	return m, ok
}

// matches reports whether a term of a plain field matches w, as w's fuzzy
// and prefix queries in textQuery do. t may be nil.
func (t *typos) matches(w queryWord, term string) bool {
	if w.prefix && strings.HasPrefix(term, w.text) {
		return true
	}
	if w.fuzziness == 0 {
		return false
	}
	if t != nil && t.automata[w.text] != nil {
		ok, _ := t.automata[w.text].MatchAndDistance(term)
		return ok
	}
	// As Bleve does for indexes without automata.
	_, exceeded := bsearch.LevenshteinDistanceMax(w.text, term, w.fuzziness)
	return !exceeded
}

// fuzzyMatches are the terms within a word's typo budget, sorted, with their
// edit distance.
type fuzzyMatches struct {
	terms     []string
	distances []uint8
}

// fuzzyTerms returns, for each word with a typo budget and each field, the
// field's terms within that budget. It returns nil typos when the index
// cannot tell: Bleve's FuzzyQuery then finds them.
func (ix *Index) fuzzyTerms(ctx context.Context, words []queryWord, fields []string) (*typos, error) {
	if !slices.ContainsFunc(words, func(w queryWord) bool { return w.fuzziness > 0 }) {
		return nil, nil
	}
	adv, err := ix.bleve.Advanced()
	if err != nil {
		return nil, fmt.Errorf("typo matches: %w", err)
	}
	r, err := adv.Reader()
	if err != nil {
		return nil, fmt.Errorf("typo matches: %w", err)
	}
	defer r.Close()
	fr, ok := r.(index.IndexReaderFuzzy)
	if !ok {
		return nil, nil // Bleve's FuzzyQuery then does the work
	}
	snapshot, _ := r.(*scorch.IndexSnapshot)
	out := &typos{terms: map[fuzzyKey]fuzzyMatches{}, automata: map[string]index.FuzzyAutomaton{}}
	for _, w := range words {
		if w.fuzziness == 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("typo matches: %w", err)
		}
		// The first field's lookup builds the automaton; the others reuse
		// it on each segment's terms when Bleve's types allow.
		var a segment.Automaton
		for _, field := range fields {
			var m fuzzyMatches
			var err error
			if a != nil && snapshot != nil {
				m, err = segmentsMatching(snapshot, field, a)
			} else {
				var fa index.FuzzyAutomaton
				m, fa, err = dictMatching(fr, field, w)
				if fa != nil {
					out.automata[w.text] = fa
				}
				a, _ = fa.(segment.Automaton)
			}
			if err != nil {
				return nil, fmt.Errorf("typo matches of %q in %s: %w", w.text, field, err)
			}
			out.terms[fuzzyKey{field, w.text}] = m
		}
	}
	return out, nil
}

// dictMatching is Bleve's own lookup, which returns the automaton it built.
func dictMatching(r index.IndexReaderFuzzy, field string, w queryWord) (fuzzyMatches, index.FuzzyAutomaton, error) {
	dict, a, err := r.FieldDictFuzzyAutomaton(field, w.text, w.fuzziness, "")
	if err != nil {
		return fuzzyMatches{}, nil, err
	}
	defer dict.Close()
	var m fuzzyMatches
	for {
		e, err := dict.Next()
		if err != nil {
			return fuzzyMatches{}, nil, err
		}
		if e == nil {
			return m, a, nil
		}
		m.terms = append(m.terms, e.Term)
		m.distances = append(m.distances, e.EditDistance)
	}
}

// segmentsMatching runs a on field's terms in every segment, merging them
// in term order as Bleve's lookup does.
func segmentsMatching(snapshot *scorch.IndexSnapshot, field string, a segment.Automaton) (fuzzyMatches, error) {
	type omitCount interface {
		AutomatonIteratorOmitCount(a segment.Automaton, start, end []byte) segment.DictionaryIterator
	}
	found := map[string]uint8{}
	for _, s := range snapshot.Segments() {
		dict, err := s.Segment().Dictionary(field)
		if err != nil {
			return fuzzyMatches{}, err
		}
		var it segment.DictionaryIterator
		if oc, ok := dict.(omitCount); ok {
			it = oc.AutomatonIteratorOmitCount(a, nil, nil)
		} else {
			it = dict.AutomatonIterator(a, nil, nil)
		}
		for {
			e, err := it.Next()
			if err != nil {
				return fuzzyMatches{}, err
			}
			if e == nil {
				break
			}
			found[e.Term] = e.EditDistance
		}
	}
	m := fuzzyMatches{terms: make([]string, 0, len(found))}
	for t := range found {
		m.terms = append(m.terms, t)
	}
	slices.Sort(m.terms)
	m.distances = make([]uint8, len(m.terms))
	for i, t := range m.terms {
		m.distances[i] = found[t]
	}
	return m, nil
}

// fuzzyQuery matches word's typo matches in field, with Bleve FuzzyQuery's
// searcher: each term boosted by 1/(1 + its edit distance).
type fuzzyQuery struct {
	word, field string
	boost       float64
	matches     fuzzyMatches
}

func (q *fuzzyQuery) Searcher(ctx context.Context, r index.IndexReader, _ mapping.IndexMapping, options bsearch.SearcherOptions) (bsearch.Searcher, error) {
	m := q.matches
	if len(m.terms) == 0 || (len(m.terms) == 1 && m.terms[0] == q.word) {
		return searcher.NewTermSearcher(ctx, r, q.word, q.field, q.boost, options)
	}
	return searcher.NewMultiTermSearcherBoosted(ctx, r, m.terms, q.field, q.boost, m.distances, options, true)
}
