package app

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mallhive/mallhive/internal/catalog"
	"github.com/mallhive/mallhive/internal/platform/config"
	"github.com/mallhive/mallhive/internal/platform/money"
	"github.com/mallhive/mallhive/internal/platform/telemetry"
)

// BenchmarkProductPage serves GET /api/v1/products/{id} through the
// process's whole handler (every edge middleware) without a network, with
// the logger and tracing the binary uses, so the cost of the edge shows
// apart from sockets and clients.
func BenchmarkProductPage(b *testing.B) {
	for _, bc := range []struct {
		name string
		ttl  string
	}{{"cached", "1s"}, {"uncached", "0s"}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			shutdown, err := telemetry.SetupTracing(ctx, "bench", "dev")
			if err != nil {
				b.Fatal(err)
			}
			defer shutdown(ctx)
			fs := flag.NewFlagSet("bench", flag.ContinueOnError)
			var cfg Config
			cfg.RegisterFlags(fs)
			getenv := func(string) string { return "" }
			if err := config.Parse(fs, []string{"--http-addr=127.0.0.1:0", "--data-dir=" + b.TempDir(), "--services=auth,catalog",
				"--catalog.product-cache-ttl=" + bc.ttl}, getenv); err != nil {
				b.Fatal(err)
			}
			p, err := Start(ctx, &cfg, telemetry.NewLogger(io.Discard, slog.LevelInfo), getenv)
			if err != nil {
				b.Fatal(err)
			}
			defer p.close()
			store := p.services["catalog"].(*catalog.Service).Store()
			cat := catalog.Category{Name: "Knitwear", Slug: "knitwear"}
			if err := store.CreateCategory(ctx, &cat); err != nil {
				b.Fatal(err)
			}
			prod := catalog.Product{SellerID: "seller", Title: "Merino wool crew sweater", CategoryID: cat.ID, Status: catalog.StatusActive,
				Variants: []catalog.Variant{{SKU: "FJ-1", Price: money.Money{Amount: 8900, Currency: "EUR"}}}}
			if err := store.CreateProduct(ctx, &prod); err != nil {
				b.Fatal(err)
			}
			h := p.server.Handler
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest("GET", "/api/v1/products/"+prod.ID, nil)
				req.RemoteAddr = "127.0.0.1:40000"
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
