package events_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"testing"

	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/sqldb/sqldbtest"
)

// BenchmarkRelayFlush times one Flush of 2000 pending events (two domains,
// 50 entities); enqueueing is not timed. The embedded server syncs every
// write to disk, so there the disk sets the pace; the external server (when
// MALLHIVE_TEST_NATS_URL is set) shows the relay's own cost.
func BenchmarkRelayFlush(b *testing.B) {
	const n = 2000
	for _, where := range []string{"embedded", "external"} {
		for _, dialect := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
			b.Run(where+"/"+string(dialect), func(b *testing.B) {
				cfg := events.Config{DataDir: b.TempDir()}
				if where == "external" {
					if cfg.URL = os.Getenv("MALLHIVE_TEST_NATS_URL"); cfg.URL == "" {
						b.Skip("MALLHIVE_TEST_NATS_URL not set")
					}
				}
				db := sqldbtest.Open(b, dialect, "evbench", []sqldb.Migrations{events.Migrations})
				bus := openBus(b, cfg)
				domains := []string{newDomain(), newDomain()}
				if where == "external" {
					b.Cleanup(func() {
						for _, d := range domains {
							_ = bus.JS.DeleteStream(context.Background(), bus.StreamName(d))
						}
					})
				}
				relay := events.NewRelay("evbench", db, bus, slog.New(slog.DiscardHandler), nil)
				ctx := context.Background()
				for b.Loop() {
					b.StopTimer()
					if err := db.InTx(ctx, func(tx *sql.Tx) error {
						for i := range n {
							if err := events.Enqueue(ctx, tx, newEvent(b, ctx, domains[i%2], fmt.Sprint(i%50))); err != nil {
								return err
							}
						}
						return nil
					}); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					if err := relay.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}
