package search

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2/document"
	index "github.com/blevesearch/bleve_index_api"
)

// mapped is a Document as newMapping describes it; Bleve reads the json
// tags.
type mapped struct {
	Title        string   `json:"title"`
	Brand        string   `json:"brand"`
	Description  string   `json:"description"`
	Details      []string `json:"details"`
	CategoryPath []string `json:"category_path"`
	Status       string   `json:"status"`
	InStock      bool     `json:"in_stock"`
	Source       string   `json:"source"`
}

// TestIndexDocumentMatchesMapping checks that Index.document builds the
// fields newMapping would, analysed the same way, plus docValueFields.
func TestIndexDocumentMatchesMapping(t *testing.T) {
	t.Parallel()
	ix := newTestIndex(t)
	docs := append(catalog(),
		Document{ID: "empty"},
		Document{
			ID: "odd", Title: "The MEN'S Coat’s “Lining” — Größe XL, ÉTÉ 2024!", Brand: "Åsa & Co's",
			Description: "It's the seller's best-selling coat. Naïve café, 東京 tested; running runs ran.",
			Status:      "Active", Attributes: map[string]string{"Fit": "Men's slim", "material": "Wool"},
			Variants:     []Variant{{SKU: "CT-01/XL", Price: 12_345, Options: map[string]string{"size": "XL"}}},
			CategoryPath: []string{"apparel", "coats-and-jackets"}, InStock: true, CreatedAt: time.Unix(1e9, 0),
		},
	)
	for _, d := range docs {
		t.Run(d.ID, func(t *testing.T) {
			t.Parallel()
			got, err := ix.document(d)
			d = withMinPrice(d)
			if err != nil {
				t.Fatal(err)
			}
			built := indexedFields(got)

			row := mapped{Title: d.Title, Brand: d.Brand, Description: d.Description, Details: details(d),
				CategoryPath: d.CategoryPath, Status: d.Status, InStock: d.InStock}
			want := document.NewDocument(d.ID)
			if err := ix.bleve.Mapping().MapDocument(want, row); err != nil {
				t.Fatal(err)
			}
			for _, f := range docValueFields(d) {
				want.AddField(f)
			}
			expected := indexedFields(want)
			// The source is compared as stored: its JSON is built from the
			// document (with the derived minimum price) only by Index.document.
			delete(built, fieldSource)
			delete(expected, fieldSource)
			if !maps.Equal(built, expected) {
				for _, name := range slices.Sorted(maps.Keys(expected)) {
					if built[name] != expected[name] {
						t.Errorf("field %s:\n got %s\nwant %s", name, built[name], expected[name])
					}
				}
				for name := range built {
					if _, ok := expected[name]; !ok {
						t.Errorf("unexpected field %s: %s", name, built[name])
					}
				}
			}
			var src []byte
			got.VisitFields(func(f index.Field) {
				if f.Name() == fieldSource {
					src = f.Value()
				}
			})
			if !strings.Contains(string(src), `"id":"`+d.ID+`"`) {
				t.Errorf("source %s", src)
			}
		})
	}
}

// indexedFields analyses doc and describes each field name's options,
// stored values, analysed length and term frequencies (values of a name
// merged, as Bleve indexes them).
func indexedFields(doc *document.Document) map[string]string {
	type acc struct {
		options index.FieldIndexingOptions
		stored  []string
		length  int
		freqs   map[string]int
	}
	fields := map[string]*acc{}
	doc.VisitFields(func(f index.Field) {
		a := fields[f.Name()]
		if a == nil {
			a = &acc{freqs: map[string]int{}}
			fields[f.Name()] = a
		}
		a.options |= f.Options()
		if f.Options().IsStored() {
			a.stored = append(a.stored, string(f.EncodedFieldType())+string(f.Value()))
		}
		if f.Options().IsIndexed() {
			f.Analyze()
			a.length += f.AnalyzedLength()
			for term, tf := range f.AnalyzedTokenFrequencies() {
				a.freqs[term] += tf.Frequency()
			}
		}
	})
	out := map[string]string{}
	for name, a := range fields {
		var terms []string
		for _, term := range slices.Sorted(maps.Keys(a.freqs)) {
			terms = append(terms, fmt.Sprintf("%q×%d", term, a.freqs[term]))
		}
		slices.Sort(a.stored)
		out[name] = fmt.Sprintf("options %v stored %q length %d terms %s", a.options, a.stored, a.length, strings.Join(terms, " "))
	}
	return out
}
