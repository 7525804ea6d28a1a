package search

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	eventsv1 "github.com/mallhive/mallhive/internal/gen/mallhive/events/v1"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/events"
)

// consumeBatchSize is how many events one index batch takes: a fresh
// replica catching up on a whole stream writes 500 documents per Bleve
// batch instead of one.
const consumeBatchSize = 500

// Limits on what events may put in a document.
const (
	maxProductIDLen = 256
	maxSKULen       = 256
	// maxStockEntries bounds a document's per-SKU stock levels (catalog
	// allows 100 variants), so a stream of stray SKUs cannot grow it.
	maxStockEntries = 256
)

// indexer applies product and stock events to an Index; the service's two
// consumers and Reindex share it.
//
// A product that is not searchable (archived, draft, hidden) is not removed
// from Bleve but replaced by a tombstone: a document with its id, status,
// UpdatedAt and stock levels only, which no query or suggestion matches
// (they require status "active"). The tombstone's UpdatedAt rejects an
// older snapshot arriving late, and its stock levels are still there when
// the product becomes active again (stock events come only on change). A
// stock event for a product not indexed yet makes a stub of the same kind
// (no status), so it is applied when the product arrives.
type indexer struct {
	ix  *Index
	log *slog.Logger
	// mu serialises batches: product and stock batches both read, change
	// and rewrite the same documents.
	mu sync.Mutex
}

// applyProducts indexes a batch of product.created, product.updated and
// product.archived events. Events that can never be applied (undecodable,
// no product id) are logged and skipped, since a batch cannot drop one event
// alone; index errors fail the batch, which is then redelivered.
func (f *indexer) applyProducts(ctx context.Context, batch []events.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := newWorkingSet(f.ix)
	for _, e := range batch {
		var m eventsv1.ProductEvent
		if err := e.Decode(&m); err != nil {
			f.log.Error("product event skipped", "id", e.ID, "type", e.Type, "err", err)
			continue
		}
		p := m.GetProduct()
		if p.GetId() == "" || len(p.GetId()) > maxProductIDLen {
			f.log.Error("product event skipped: bad product id", "id", e.ID, "type", e.Type, "product", p.GetId())
			continue
		}
		updatedAt := e.Time
		if p.GetUpdatedAt().IsValid() {
			updatedAt = p.GetUpdatedAt().AsTime()
		}
		cur, err := w.get(ctx, p.GetId())
		if err != nil {
			return err
		}
		if cur != nil && updatedAt.Before(cur.UpdatedAt) {
			f.log.Debug("stale product event ignored", "id", e.ID, "product", p.GetId(), "updated_at", updatedAt, "indexed", cur.UpdatedAt)
			continue
		}
		next := documentOf(p, updatedAt)
		if cur != nil {
			next.Stock = cur.Stock
		}
		switch {
		case e.Type == "product.archived":
			next = tombstone(next, "archived")
		case next.Status != StatusActive:
			next = tombstone(next, next.Status)
		}
		next.InStock = inStock(next)
		w.put(next)
	}
	return w.flush(ctx)
}

// applyStock records a batch of stock.changed, stock.low and stock.out
// events (all three carry the same fields) as per-SKU levels on the
// product's document and recomputes its InStock.
func (f *indexer) applyStock(ctx context.Context, batch []events.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := newWorkingSet(f.ix)
	for _, e := range batch {
		var m eventsv1.StockLevelEvent
		if err := e.Decode(&m); err != nil {
			f.log.Error("stock event skipped", "id", e.ID, "type", e.Type, "err", err)
			continue
		}
		pid, sku := m.GetProductId(), m.GetSku()
		if pid == "" || len(pid) > maxProductIDLen || sku == "" || len(sku) > maxSKULen {
			f.log.Error("stock event skipped: bad product id or sku", "id", e.ID, "product", pid, "sku", sku)
			continue
		}
		at := e.Time
		if m.GetAt().IsValid() {
			at = m.GetAt().AsTime()
		}
		d, err := w.get(ctx, pid)
		if err != nil {
			return err
		}
		if d == nil {
			d = &Document{ID: pid} // a stub until the product arrives
		}
		if old, ok := d.Stock[sku]; ok && at.Before(old.At) {
			continue
		}
		stock := make(map[string]StockLevel, len(d.Stock)+1)
		for k, v := range d.Stock {
			stock[k] = v
		}
		stock[sku] = StockLevel{Available: m.GetAvailable(), At: at}
		d.Stock = pruneStock(stock, d.Variants)
		d.InStock = inStock(*d)
		w.put(*d)
	}
	return w.flush(ctx)
}

// documentOf builds the searchable document of a product snapshot.
func documentOf(p *eventsv1.Product, updatedAt time.Time) Document {
	d := Document{
		ID:           p.GetId(),
		SellerID:     p.GetSellerId(),
		SellerName:   p.GetSellerName(),
		Title:        p.GetTitle(),
		Slug:         p.GetSlug(),
		Description:  p.GetDescription(),
		Brand:        p.GetBrand(),
		CategoryID:   p.GetCategoryId(),
		CategoryPath: p.GetCategoryPath(),
		Attributes:   p.GetAttributes(),
		Status:       p.GetStatus(),
		UpdatedAt:    updatedAt,
	}
	if p.GetCreatedAt().IsValid() {
		d.CreatedAt = p.GetCreatedAt().AsTime()
	}
	if urls := p.GetImageUrls(); len(urls) > 0 {
		d.ImageURL = urls[0]
	}
	for _, v := range p.GetVariants() {
		d.Variants = append(d.Variants, Variant{
			SKU:      v.GetSku(),
			Options:  v.GetOptions(),
			Price:    v.GetPrice().GetAmount(),
			Currency: v.GetPrice().GetCurrency(),
		})
	}
	return d
}

// tombstone keeps what a non-searchable product still needs: its identity,
// the version that superseded the searchable one, and its stock levels.
func tombstone(d Document, status string) Document {
	return Document{ID: d.ID, Status: status, Stock: d.Stock, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
}

// inStock reports whether any of d's variants has stock available. A SKU
// without a stock event counts as out of stock: inventory announces every
// SKU it holds, so silence means nothing can be sold.
func inStock(d Document) bool {
	for _, v := range d.Variants {
		if l, ok := d.Stock[v.SKU]; ok && l.Available > 0 {
			return true
		}
	}
	return false
}

// pruneStock drops the oldest levels of SKUs that are not variants while
// there are more than maxStockEntries. Levels of non-variants are kept
// otherwise: a stock event may precede the product update adding its variant.
func pruneStock(stock map[string]StockLevel, variants []Variant) map[string]StockLevel {
	isVariant := make(map[string]bool, len(variants))
	for _, v := range variants {
		isVariant[v.SKU] = true
	}
	for len(stock) > maxStockEntries {
		oldest := ""
		for sku, l := range stock {
			if !isVariant[sku] && (oldest == "" || l.At.Before(stock[oldest].At)) {
				oldest = sku
			}
		}
		if oldest == "" {
			break
		}
		delete(stock, oldest)
	}
	return stock
}

// workingSet holds the documents a batch reads and changes, so later events
// in a batch see earlier ones and each document is written once.
type workingSet struct {
	ix    *Index
	docs  map[string]*Document
	order []string
}

func newWorkingSet(ix *Index) *workingSet {
	return &workingSet{ix: ix, docs: map[string]*Document{}}
}

// get returns a copy of the current document, or nil when none is indexed.
func (w *workingSet) get(ctx context.Context, id string) (*Document, error) {
	if d, ok := w.docs[id]; ok {
		c := *d
		return &c, nil
	}
	d, err := w.ix.Get(ctx, id)
	switch {
	case errs.Is(err, errs.NotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("index events: %w", err)
	}
	return &d, nil
}

func (w *workingSet) put(d Document) {
	if _, ok := w.docs[d.ID]; !ok {
		w.order = append(w.order, d.ID)
	}
	w.docs[d.ID] = &d
}

// flush writes every changed document in one Upsert (Bleve batches).
func (w *workingSet) flush(ctx context.Context) error {
	if len(w.order) == 0 {
		return nil
	}
	docs := make([]Document, 0, len(w.order))
	for _, id := range w.order {
		docs = append(docs, *w.docs[id])
	}
	if err := w.ix.Upsert(ctx, docs...); err != nil {
		return fmt.Errorf("index events: %w", err)
	}
	return nil
}
