package search

// This file holds the product index: the documents the search service keeps,
// and how they are stored in Bleve. Queries live in index_search.go,
// completions in index_suggest.go, page tokens in index_token.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/single"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/highlight"
	htmlhighlighter "github.com/blevesearch/bleve/v2/search/highlight/highlighter/html"
	index "github.com/blevesearch/bleve_index_api"

	"github.com/mallhive/mallhive/internal/platform/errs"
)

// StatusActive is the only product status search ever returns.
const StatusActive = "active"

// Document is one product as the search service indexes it, built from the
// catalog's product events (and stock events for InStock).
type Document struct {
	ID          string `json:"id"`
	SellerID    string `json:"seller_id"`
	SellerName  string `json:"seller_name"`
	Title       string `json:"title"`
	Slug        string `json:"slug"`
	Description string `json:"description"`
	Brand       string `json:"brand"`
	CategoryID  string `json:"category_id"`
	// CategoryPath lists category slugs from the root to the product's own
	// category, so filtering by a category also finds its descendants.
	CategoryPath []string          `json:"category_path"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	ImageURL     string            `json:"image_url"`
	Status       string            `json:"status"`
	Variants     []Variant         `json:"variants"`
	// MinPrice is the cheapest variant's price in minor units. Upsert
	// recomputes it from Variants when there are any.
	MinPrice int64 `json:"min_price"`
	// InStock reports whether any variant can be bought; stock events keep it
	// current through SetStock.
	InStock bool `json:"in_stock"`
	// Stock is the latest stock level per SKU seen in stock events (kept in
	// the stored source only, never indexed), so InStock can be recomputed
	// when one SKU changes and survives restarts with the document.
	Stock     map[string]StockLevel `json:"stock,omitempty"`
	CreatedAt time.Time             `json:"created_at"`
	UpdatedAt time.Time             `json:"updated_at"`
}

// Variant is one purchasable SKU of a product.
type Variant struct {
	SKU     string            `json:"sku"`
	Options map[string]string `json:"options,omitempty"`
	// Price is in minor units of Currency (ISO 4217). Prices shown by search
	// are informational: checkout takes them from the catalog.
	Price    int64  `json:"price"`
	Currency string `json:"currency"`
}

// schemaVersion changes whenever what Index.document indexes changes in a
// way an existing on-disk index cannot follow; Open then refuses the old
// index so the caller rebuilds it from the catalog event stream.
const schemaVersion = "2"

var schemaKey = []byte("mallhive_schema_version")

// ErrSchemaVersion is wrapped by Open's error for an index built with
// another schema version, so the service can rebuild it by itself.
var ErrSchemaVersion = errors.New("search index schema version changed")

// batchSize bounds the memory of one Bleve batch during bulk rebuilds.
const batchSize = 500

// Index is the full-text product index. It is safe for concurrent use.
type Index struct {
	bleve bleve.Index
	// words splits text the way the unstemmed fields are indexed; stemmed
	// tells stop words apart (they analyze to nothing).
	words, stemmed analysisFunc
	// analyzers build documents (see document), highlighter marks hits
	// (see highlight).
	analyzers   *analyzers
	highlighter highlight.Highlighter
	// writeMu makes SetStock's read-modify-write atomic with other writes.
	writeMu sync.Mutex
}

type analysisFunc func(string) []string

// Open opens the on-disk index at path, creating it when missing. An empty
// path gives an in-memory index (for tests). Open fails when the index on
// disk was built with another schema version: delete it and rebuild.
func Open(path string) (*Index, error) {
	var b bleve.Index
	var err error
	if path != "" {
		b, err = bleve.Open(path)
	}
	switch {
	case path == "" || errors.Is(err, bleve.ErrorIndexPathDoesNotExist) || isEmptyDir(path, err):
		if b, err = create(path); err != nil {
			return nil, fmt.Errorf("create search index: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("open search index: %w", err)
	default:
		v, err := b.GetInternal(schemaKey)
		if err == nil && string(v) != schemaVersion {
			err = fmt.Errorf("schema version %q, want %q: rebuild the index: %w", v, schemaVersion, ErrSchemaVersion)
		}
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("open search index %s: %w", path, err)
		}
	}
	hl, err := bleve.Config.Cache.HighlighterNamed(htmlhighlighter.Name)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("open search index: %w", err)
	}
	m := b.Mapping()
	return &Index{
		bleve:       b,
		words:       analyzer(m, wordsAnalyzer),
		stemmed:     analyzer(m, en.AnalyzerName),
		analyzers:   newAnalyzers(m),
		highlighter: hl,
	}, nil
}

// isEmptyDir reports whether path is an existing empty directory, such as a
// freshly mounted volume, which Bleve reports as an index without metadata.
func isEmptyDir(path string, openErr error) bool {
	if !errors.Is(openErr, bleve.ErrorIndexMetaMissing) {
		return false
	}
	entries, err := os.ReadDir(path)
	return err == nil && len(entries) == 0
}

func create(path string) (bleve.Index, error) {
	m, err := newMapping()
	if err != nil {
		return nil, err
	}
	// Scorch for in-memory indexes too, so tests exercise the production engine.
	b, err := bleve.NewUsing(path, m, scorch.Name, scorch.Name, nil)
	if err != nil {
		return nil, err
	}
	if err := b.SetInternal(schemaKey, []byte(schemaVersion)); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func analyzer(m mapping.IndexMapping, name string) analysisFunc {
	a := m.AnalyzerNamed(name)
	return func(s string) []string {
		var out []string
		for _, tok := range a.Analyze([]byte(s)) {
			out = append(out, string(tok.Term))
		}
		return out
	}
}

// Close flushes and closes the index.
func (ix *Index) Close() error {
	if err := ix.bleve.Close(); err != nil {
		return fmt.Errorf("close search index: %w", err)
	}
	return nil
}

// Upsert adds or replaces documents, in batches. It returns an Invalid error,
// and writes nothing, when a document has no ID.
func (ix *Index) Upsert(ctx context.Context, docs ...Document) error {
	for i, d := range docs {
		if d.ID == "" {
			return errs.Field(fmt.Sprintf("docs[%d].id", i), "is required")
		}
	}
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	return ix.upsertLocked(ctx, docs)
}

func (ix *Index) upsertLocked(ctx context.Context, docs []Document) error {
	batch := ix.bleve.NewBatch()
	for i, d := range docs {
		doc, err := ix.document(d)
		if err != nil {
			return fmt.Errorf("upsert %s: %w", d.ID, err)
		}
		if err := batch.IndexAdvanced(doc); err != nil {
			return fmt.Errorf("upsert %s: %w", d.ID, err)
		}
		if batch.Size() >= batchSize || i == len(docs)-1 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("upsert: %w", err)
			}
			if err := ix.bleve.Batch(batch); err != nil {
				return fmt.Errorf("upsert: %w", err)
			}
			batch.Reset()
		}
	}
	return nil
}

// Delete removes documents; unknown IDs are ignored, so replays are harmless.
func (ix *Index) Delete(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	batch := ix.bleve.NewBatch()
	for _, id := range ids {
		batch.Delete(id)
	}
	if err := ix.bleve.Batch(batch); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	return nil
}

// SetStock updates a product's InStock flag. It returns a NotFound error when
// the product is not indexed (its product event has not arrived yet).
func (ix *Index) SetStock(ctx context.Context, productID string, inStock bool) error {
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	d, err := ix.Get(ctx, productID)
	if err != nil {
		return fmt.Errorf("set stock: %w", err)
	}
	if d.InStock == inStock {
		return nil
	}
	// Bleve has no partial updates; the stored source makes a whole-document
	// rewrite cheap and keeps every field consistent.
	d.InStock = inStock
	return ix.upsertLocked(ctx, []Document{d})
}

// Get returns the indexed document with any status, or a NotFound error.
func (ix *Index) Get(ctx context.Context, id string) (Document, error) {
	if err := ctx.Err(); err != nil {
		return Document{}, fmt.Errorf("get %s: %w", id, err)
	}
	doc, err := ix.bleve.Document(id)
	if err != nil {
		return Document{}, fmt.Errorf("get %s: %w", id, err)
	}
	if doc == nil {
		return Document{}, errs.E(errs.NotFound, "product %s is not indexed", id)
	}
	var src []byte
	doc.VisitFields(func(f index.Field) {
		if f.Name() == fieldSource {
			src = f.Value()
		}
	})
	var d Document
	if err := json.Unmarshal(src, &d); err != nil {
		return Document{}, fmt.Errorf("get %s: decode source: %w", id, err)
	}
	return d, nil
}

// Count returns the number of indexed documents, whatever their status.
func (ix *Index) Count() (uint64, error) {
	n, err := ix.bleve.DocCount()
	if err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	return n, nil
}

// Indexed field names. Text fields exist twice: the plain name holds
// lowercased words (for typo, prefix and highlight matching, which need the
// words as typed), and name+"_en" holds English stems (so "sweaters" finds
// "sweater").
const (
	fieldTitle       = "title"
	fieldBrand       = "brand"
	fieldDescription = "description"
	fieldDetails     = "details" // attribute values, variant options and SKUs
	stemmedSuffix    = "_en"

	fieldBrandKey      = "brand_key"      // lowercased whole brand, for the filter
	fieldCategoryWords = "category_words" // the category slugs' words, for suggestions
	fieldStatus        = "status"
	fieldPrice         = "price" // priceTerms of MinPrice, for the filter
	fieldInStock       = "in_stock"
	fieldSource        = "source" // the whole Document as JSON, stored only

	// Read for every hit (see docValueFields).
	fieldFacets   = "facets"    // the term facets' values, with their prefix below
	fieldNewest   = "newest"    // newestKey: newest first, then ID
	fieldPriceKey = "price_key" // orderedHex(MinPrice)

	wordsAnalyzer    = "mallhive_words"
	lowerKeyAnalyzer = "mallhive_lower_keyword"
	sellerSep        = "\x1f"
)

// Prefixes of fieldFacets' terms, one per facet. Filters use them too.
const (
	facetBrand    = "b:" // the brand as written
	facetSeller   = "s:" // seller ID + sellerSep + name, so the facet can show names
	facetCategory = "c:" // each slug of the category path, root to leaf
	facetPrice    = "p:" // index of the PriceRanges bucket holding MinPrice
)

// newMapping describes the text and filter fields Index.document builds
// (a test holds the two equal) and names the analyzers; the index stores it.
// The fields sorts, facets and the price filter read are built by hand only
// (see docValueFields).
func newMapping() (*mapping.IndexMappingImpl, error) {
	m := bleve.NewIndexMapping()
	// Custom analyzers are stored in the index's mapping, so a reopened index
	// analyzes exactly as the one that was built.
	err := errors.Join(
		m.AddCustomAnalyzer(wordsAnalyzer, map[string]any{
			"type": custom.Name, "tokenizer": unicode.Name, "token_filters": []string{lowercase.Name},
		}),
		m.AddCustomAnalyzer(lowerKeyAnalyzer, map[string]any{
			"type": custom.Name, "tokenizer": single.Name, "token_filters": []string{lowercase.Name},
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}

	// No term vectors: highlight finds matches in the hits' documents.
	text := func(name, analyzer string, store bool) *mapping.FieldMapping {
		f := bleve.NewTextFieldMapping()
		f.Name, f.Analyzer, f.Store = name, analyzer, store
		f.IncludeInAll, f.DocValues, f.IncludeTermVectors = false, false, false
		return f
	}
	// Filters only: sorted and faceted fields are docValueFields.
	kw := func(name, analyzer string) *mapping.FieldMapping {
		f := bleve.NewKeywordFieldMapping()
		f.Name, f.Analyzer, f.Store, f.IncludeInAll = name, analyzer, false, false
		f.DocValues, f.IncludeTermVectors = false, false
		return f
	}
	// The stock flag is only filtered on.
	value := func(f *mapping.FieldMapping) *mapping.FieldMapping {
		f.Store, f.IncludeInAll, f.DocValues = false, false, false
		return f
	}

	doc := bleve.NewDocumentStaticMapping()
	// Suggestions read stored titles (shorter than the source).
	doc.AddFieldMappingsAt(fieldTitle, text(fieldTitle, wordsAnalyzer, true), text(fieldTitle+stemmedSuffix, en.AnalyzerName, false))
	doc.AddFieldMappingsAt(fieldDescription, text(fieldDescription, wordsAnalyzer, false), text(fieldDescription+stemmedSuffix, en.AnalyzerName, false))
	doc.AddFieldMappingsAt(fieldBrand,
		text(fieldBrand, wordsAnalyzer, false), text(fieldBrand+stemmedSuffix, en.AnalyzerName, false),
		kw(fieldBrandKey, lowerKeyAnalyzer))
	doc.AddFieldMappingsAt(fieldDetails, text(fieldDetails, wordsAnalyzer, false), text(fieldDetails+stemmedSuffix, en.AnalyzerName, false))
	doc.AddFieldMappingsAt("category_path", text(fieldCategoryWords, wordsAnalyzer, false))
	doc.AddFieldMappingsAt(fieldStatus, kw(fieldStatus, keyword.Name))
	doc.AddFieldMappingsAt(fieldInStock, value(bleve.NewBooleanFieldMapping()))

	source := bleve.NewTextFieldMapping()
	source.Index, source.Store, source.IncludeInAll, source.DocValues = false, true, false, false
	doc.AddFieldMappingsAt(fieldSource, source)

	// Queries name their fields, so nothing needs the catch-all _all field.
	doc.AddSubDocumentMapping("_all", bleve.NewDocumentDisabledMapping())
	m.DefaultMapping = doc
	m.IndexDynamic, m.StoreDynamic, m.DocValuesDynamic = false, false, false
	return m, nil
}
