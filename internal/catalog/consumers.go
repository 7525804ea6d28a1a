package catalog

import (
	"context"
	"database/sql"
	"fmt"

	eventsv1 "github.com/mallhive/mallhive/internal/gen/mallhive/events/v1"
	"github.com/mallhive/mallhive/internal/platform/events"
)

// stockConsumer names the durable consumer and its idempotency records.
const stockConsumer = "catalog-stock"

// consumeStock keeps variant_stock in step with inventory's stock.changed,
// stock.low and stock.out events. All three carry the same fields, so one
// handler records the level whatever the type. Catalog does not re-emit
// products on stock changes: search consumes stock events itself.
func (s *Service) consumeStock(ctx context.Context) (*events.Subscription, error) {
	return s.env.Bus.Consume(ctx, events.ConsumerConfig{
		Name: stockConsumer, Domain: "stock", Metrics: s.env.ConsumerMetrics, Log: s.log,
	}, s.handleStock)
}

func (s *Service) handleStock(ctx context.Context, e events.Event) error {
	var m eventsv1.StockLevelEvent
	if err := e.Decode(&m); err != nil {
		return events.Permanent(err)
	}
	if _, ok := parseID(m.GetSku()); !ok || len(m.GetSku()) > MaxSKU {
		return events.Permanent(fmt.Errorf("stock event %s: bad sku %q", e.ID, m.GetSku()))
	}
	at := e.Time
	if m.GetAt().IsValid() {
		at = m.GetAt().AsTime()
	}
	l := StockLevel{SKU: m.GetSku(), Available: m.GetAvailable(), LowThreshold: m.GetLowThreshold(), At: at}
	defer s.store.stockChanged(ctx, l.SKU)
	return events.HandleOnce(ctx, s.db, stockConsumer, e, func(tx *sql.Tx) error {
		return applyStock(ctx, tx, l)
	})
}
