package search

// This file builds what Bleve indexes for a Document. newMapping describes
// the text and filter fields, and a test holds what is built here equal to
// what the mapping would build; building it by hand instead skips Bleve's
// reflection over the document and tokenizes each text once for its two
// fields (plain words and English stems). The fields sorts, facets and the
// price filter read have options the mapping cannot express, and are built
// by hand only.

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/size"
	index "github.com/blevesearch/bleve_index_api"
)

// withMinPrice returns d with MinPrice derived from its variants, if any.
func withMinPrice(d Document) Document {
	if len(d.Variants) > 0 {
		d.MinPrice = d.Variants[0].Price
		for _, v := range d.Variants[1:] {
			d.MinPrice = min(d.MinPrice, v.Price)
		}
	}
	return d
}

// document builds what Bleve indexes for d.
func (ix *Index) document(d Document) (*document.Document, error) {
	d = withMinPrice(d)
	src, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode source: %w", err)
	}
	a := ix.analyzers
	doc := document.NewDocument(d.ID)
	a.addText(doc, fieldTitle, d.Title, index.IndexField|index.StoreField)
	a.addText(doc, fieldDescription, d.Description, index.IndexField)
	a.addText(doc, fieldBrand, d.Brand, index.IndexField)
	doc.AddField(document.NewTextFieldCustom(fieldBrandKey, nil, []byte(d.Brand), index.IndexField, a.lowerKey))
	for _, v := range details(d) {
		a.addText(doc, fieldDetails, v, index.IndexField)
	}
	for _, c := range d.CategoryPath {
		doc.AddField(document.NewTextFieldCustom(fieldCategoryWords, nil, []byte(c), index.IndexField, a.words))
	}
	doc.AddField(document.NewTextFieldCustom(fieldStatus, nil, []byte(d.Status), index.IndexField, a.keyword))
	doc.AddField(document.NewBooleanFieldWithIndexingOptions(fieldInStock, nil, d.InStock, index.IndexField))
	doc.AddField(document.NewTextFieldWithIndexingOptions(fieldSource, nil, src, index.StoreField))
	for _, f := range docValueFields(d) {
		doc.AddField(f)
	}
	return doc, nil
}

// details are the texts of fieldDetails: attribute values, variant SKUs
// and options.
func details(d Document) []string {
	var out []string
	for _, v := range d.Attributes {
		out = append(out, v)
	}
	for _, v := range d.Variants {
		out = append(out, v.SKU)
		for _, o := range v.Options {
			out = append(out, o)
		}
	}
	return out
}

// docValueOptions index a keyword with doc values stored per document and
// uncompressed (as Bleve does for geo fields; its mapping cannot ask for
// it). Sorts and facets read the doc values of every hit: in Bleve's default
// layout, compressed chunks of 1,024 documents per field, a query with
// thousands of hits spread over the index decompresses nearly every chunk
// of every field it reads, which was most of a search's time.
const docValueOptions = index.IndexField | index.DocValues | index.SkipDVCompression | index.SkipDVChunking

// docValueFields are the fields sorts and facets read, of short keywords;
// each field read costs a lookup per hit. All four facets count the one
// fieldFacets, each the terms of its prefix. Sorts use keywords rather than
// Bleve's numbers and dates, whose doc values hold 16 prefix-coded terms per
// value (for range queries); the price facet counts precomputed buckets.
// The price filter's terms come last (see priceTerms).
func docValueFields(d Document) []document.Field {
	kw := func(name, value string) document.Field {
		return document.NewTextFieldWithIndexingOptions(name, nil, []byte(value), docValueOptions)
	}
	fields := []document.Field{
		kw(fieldNewest, newestKey(d)),
		kw(fieldPriceKey, orderedHex(d.MinPrice)),
		kw(fieldFacets, facetBrand+d.Brand),
		kw(fieldFacets, facetSeller+d.SellerID+sellerSep+d.SellerName),
	}
	for _, c := range d.CategoryPath {
		fields = append(fields, kw(fieldFacets, facetCategory+c))
	}
	if r, ok := priceRange(d.MinPrice); ok {
		fields = append(fields, kw(fieldFacets, facetPrice+strconv.Itoa(r)))
	}
	for _, t := range priceTerms(d.MinPrice) {
		fields = append(fields, document.NewTextFieldWithIndexingOptions(fieldPrice, nil, []byte(t), index.IndexField))
	}
	return fields
}

// orderedHex encodes v so that byte order is numeric order, as Bleve sorts
// strings byte by byte: the sign bit flipped, then 16 hex digits.
func orderedHex(v int64) string {
	return fmt.Sprintf("%016x", uint64(v)^(1<<63))
}

// newestKey sorts ascending as newest first, then by ID: one field gives the
// date order and the tie-break that keeps pages stable.
func newestKey(d Document) string {
	return orderedHex(-d.CreatedAt.UnixMicro()) + d.ID
}

// priceRange returns the index of the PriceRanges bucket holding price p,
// if any.
func priceRange(p int64) (int, bool) {
	for i, r := range PriceRanges() {
		if p >= r.Min && (r.Max == nil || p <= *r.Max) {
			return i, true
		}
	}
	return 0, false
}

// analyzers are the index's analyzers, from its mapping.
type analyzers struct {
	words, stemmed, lowerKey, keyword analysis.Analyzer
	// tokenizer and the filters are set when words and stemmed split text
	// the same way: a text is then tokenized once for both its fields.
	tokenizer                analysis.Tokenizer
	wordFilters, stemFilters []analysis.TokenFilter
}

func newAnalyzers(m mapping.IndexMapping) *analyzers {
	a := &analyzers{
		words:    m.AnalyzerNamed(wordsAnalyzer),
		stemmed:  m.AnalyzerNamed(en.AnalyzerName),
		lowerKey: m.AnalyzerNamed(lowerKeyAnalyzer),
		keyword:  m.AnalyzerNamed(keyword.Name),
	}
	w, ok1 := a.words.(*analysis.DefaultAnalyzer)
	s, ok2 := a.stemmed.(*analysis.DefaultAnalyzer)
	if ok1 && ok2 && len(w.CharFilters) == 0 && len(s.CharFilters) == 0 && w.Tokenizer == s.Tokenizer {
		a.tokenizer, a.wordFilters, a.stemFilters = w.Tokenizer, w.TokenFilters, s.TokenFilters
	}
	return a
}

// addText adds text's two fields: name (words) and name+stemmedSuffix
// (stems, never stored).
func (a *analyzers) addText(doc *document.Document, name, text string, options index.FieldIndexingOptions) {
	if a.tokenizer == nil {
		doc.AddField(document.NewTextFieldCustom(name, nil, []byte(text), options, a.words))
		doc.AddField(document.NewTextFieldCustom(name+stemmedSuffix, nil, []byte(text), options&^index.StoreField, a.stemmed))
		return
	}
	p := &textPair{text: text, a: a}
	doc.AddField(&pairedField{name: name, options: options, pair: p})
	doc.AddField(&pairedField{name: name + stemmedSuffix, options: options &^ index.StoreField, pair: p, stemmed: true})
}

// textPair is a text analysed once for both its fields, by whichever Bleve
// analyses first.
type textPair struct {
	text         string
	a            *analyzers
	once         sync.Once
	words, stems analysis.TokenStream
}

func (p *textPair) analyze() {
	p.once.Do(func() {
		// Token filters change terms in place: the stems get copies.
		p.words = p.a.tokenizer.Tokenize([]byte(p.text))
		p.stems = make(analysis.TokenStream, len(p.words))
		for i, t := range p.words {
			c := *t
			c.Term = append([]byte(nil), t.Term...)
			p.stems[i] = &c
		}
		for _, f := range p.a.wordFilters {
			p.words = f.Filter(p.words)
		}
		for _, f := range p.a.stemFilters {
			p.stems = f.Filter(p.stems)
		}
	})
}

// pairedField is one field of a textPair, analysed as a Bleve TextField
// with that field's analyzer would be.
type pairedField struct {
	name    string
	options index.FieldIndexingOptions
	pair    *textPair
	stemmed bool
	length  int
	freqs   index.TokenFrequencies
}

var _ document.Field = (*pairedField)(nil)

func (f *pairedField) Name() string                        { return f.name }
func (f *pairedField) ArrayPositions() []uint64            { return nil }
func (f *pairedField) Options() index.FieldIndexingOptions { return f.options }
func (f *pairedField) Value() []byte                       { return []byte(f.pair.text) }
func (f *pairedField) Text() string                        { return f.pair.text }
func (f *pairedField) NumPlainTextBytes() uint64           { return uint64(len(f.pair.text)) }
func (f *pairedField) EncodedFieldType() byte              { return 't' }
func (f *pairedField) AnalyzedLength() int                 { return f.length }
func (f *pairedField) AnalyzedTokenFrequencies() index.TokenFrequencies {
	return f.freqs
}

func (f *pairedField) Analyze() {
	f.pair.analyze()
	tokens := f.pair.words
	if f.stemmed {
		tokens = f.pair.stems
	}
	f.length = len(tokens)
	f.freqs = analysis.TokenFrequency(tokens, nil, f.options)
}

func (f *pairedField) Size() int {
	n := size.SizeOfPtr + len(f.name) + len(f.pair.text)
	for term := range f.freqs {
		n += size.SizeOfString + len(term) + size.SizeOfPtr
	}
	return n
}
