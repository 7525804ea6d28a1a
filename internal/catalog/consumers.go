package catalog

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"

	eventsv1 "github.com/mallhive/mallhive/internal/gen/mallhive/events/v1"
	"github.com/mallhive/mallhive/internal/platform/events"
)

// stockConsumer names the durable consumer. It kept this name when it moved
// from one event at a time to batches, so deployments resume where they were.
const stockConsumer = "catalog-stock"

// stockBatchSize bounds the events applied in one transaction: the cart
// emits thousands of stock events a second under load, and one commit per
// event would compete for the disk with the reservations themselves.
const stockBatchSize = 500

// consumeStock keeps variant_stock in step with inventory's stock.changed,
// stock.low and stock.out events. All three carry the same fields, so one
// handler records the level whatever the type. Catalog does not re-emit
// products on stock changes: search consumes stock events itself.
func (s *Service) consumeStock(ctx context.Context) (*events.Subscription, error) {
	return s.env.Bus.ConsumeBatches(ctx, events.ConsumerConfig{
		Name: stockConsumer, Domain: "stock", Metrics: s.env.ConsumerMetrics, Log: s.log,
	}, stockBatchSize, s.handleStockBatch)
}

// handleStockBatch applies a batch of stock events in one transaction.
// applyStocks keeps the newest level whatever the order, so a redelivered or
// replayed batch needs no processed_events records. Events that can never be
// applied are logged and skipped: failing the batch would redeliver the
// good events with them until they are dropped too.
func (s *Service) handleStockBatch(ctx context.Context, batch []events.Event) error {
	levels := s.newestLevels(batch)
	if len(levels) == 0 {
		return nil
	}
	if err := s.db.InTx(ctx, func(tx *sql.Tx) error { return applyStocks(ctx, tx, levels) }); err != nil {
		return fmt.Errorf("apply %d stock levels: %w", len(levels), err)
	}
	// After the commit, so a page read meanwhile is not cached with the old
	// level. A failed batch is redelivered and drops them when it lands.
	skus := make([]string, len(levels))
	for i, l := range levels {
		skus[i] = l.SKU
	}
	s.store.stockChanged(ctx, skus...)
	return nil
}

// newestLevels returns the newest level per SKU in batch, sorted by SKU so
// that two replicas' transactions lock rows in the same order. It chooses as
// applying the events one by one would: by At to the microsecond stored,
// and on a tie the later event in the stream.
func (s *Service) newestLevels(batch []events.Event) []StockLevel {
	bySKU := make(map[string]StockLevel, len(batch))
	for _, e := range batch {
		var m eventsv1.StockLevelEvent
		if err := e.Decode(&m); err != nil {
			s.log.Warn("stock event skipped", "id", e.ID, "type", e.Type, "err", err)
			continue
		}
		sku := m.GetSku()
		if _, ok := parseID(sku); !ok || len(sku) > MaxSKU {
			s.log.Warn("stock event skipped: bad sku", "id", e.ID, "type", e.Type, "sku", sku)
			continue
		}
		at := e.Time
		if m.GetAt().IsValid() {
			at = m.GetAt().AsTime()
		}
		if cur, ok := bySKU[sku]; ok && at.UnixMicro() < cur.At.UnixMicro() {
			continue
		}
		bySKU[sku] = StockLevel{SKU: sku, Available: m.GetAvailable(), LowThreshold: m.GetLowThreshold(), At: at}
	}
	levels := make([]StockLevel, 0, len(bySKU))
	for _, l := range bySKU {
		levels = append(levels, l)
	}
	slices.SortFunc(levels, func(a, b StockLevel) int { return cmp.Compare(a.SKU, b.SKU) })
	return levels
}
