package app

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/mallhive/mallhive/internal/catalog"
	catalogv1 "github.com/mallhive/mallhive/internal/gen/mallhive/catalog/v1"
	"github.com/mallhive/mallhive/internal/gen/mallhive/catalog/v1/catalogv1connect"
	"github.com/mallhive/mallhive/internal/platform/config"
	"github.com/mallhive/mallhive/internal/platform/httpx"
	"github.com/mallhive/mallhive/internal/platform/money"
	"github.com/mallhive/mallhive/internal/platform/rpc"
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
			p, prod := benchProcess(b, "--catalog.product-cache-ttl="+bc.ttl)
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

// BenchmarkRPC calls CatalogService.GetVariants through a real h2c client
// with the options every service client has, against the process's own
// listener, with the logger and tracing the binary uses: the cost of the
// RPC edge on both sides (client interceptors and transport, the server's
// middleware chain and handler interceptors). The edge cases ask for a SKU
// that cannot exist, which the handler answers without a query, so the
// edge's cost is not lost among SQLite's; "query" prices a real variant.
// The caller's context carries an unsampled trace, as a request handler's
// does when nothing exports spans; "sampled" continues a sampled trace, so
// every span is recorded.
func BenchmarkRPC(b *testing.B) {
	ctx := context.Background()
	p, _ := benchProcess(b)
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- httpx.Serve(serveCtx, p.server, p.ln, time.Second) }()
	defer func() {
		stop()
		<-served
	}()
	client := catalogv1connect.NewCatalogServiceClient(httpx.NewH2CClient(30*time.Second), p.URL,
		rpc.ClientOptions(rpc.NewMetrics(nil))...)
	// call reports failures with Error, which RunParallel's goroutines may use.
	call := func(b *testing.B, ctx context.Context, sku string, want int) {
		resp, err := client.GetVariants(ctx, connect.NewRequest(&catalogv1.GetVariantsRequest{Skus: []string{sku}}))
		if err != nil {
			b.Error(err)
		} else if len(resp.Msg.Variants) != want {
			b.Errorf("variants %v, want %d", resp.Msg.Variants, want)
		}
	}
	const noSuchSKU = "no\x00such"
	unsampled, span := otel.Tracer("bench").Start(ctx, "request")
	defer span.End()
	sampled := trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f}, SpanID: trace.SpanID{0x00, 0xf0, 0x67}, TraceFlags: trace.FlagsSampled, Remote: true,
	}))

	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			call(b, unsampled, noSuchSKU, 0)
		}
	})
	// Enough callers to keep every CPU busy, as under load: ns/op is then
	// the CPU an RPC costs client and server together, over GOMAXPROCS.
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				call(b, unsampled, noSuchSKU, 0)
			}
		})
	})
	// The server's side alone, without a network: what the handler chain
	// costs an RPC that a caller sent with its unsampled trace.
	b.Run("handler", func(b *testing.B) {
		body, err := proto.Marshal(&catalogv1.GetVariantsRequest{Skus: []string{noSuchSKU}})
		if err != nil {
			b.Fatal(err)
		}
		h := p.server.Handler
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest("POST", catalogv1connect.CatalogServiceGetVariantsProcedure, bytes.NewReader(body))
			req.RemoteAddr = "127.0.0.1:40000"
			req.Header.Set("Content-Type", "application/proto")
			req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
	b.Run("sampled", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			call(b, sampled, noSuchSKU, 0)
		}
	})
	b.Run("query", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			call(b, unsampled, "FJ-1", 1)
		}
	})
}

// benchProcess starts a Process with auth and catalog on SQLite, logging
// and tracing as the binary does, with one active product whose variant is
// FJ-1. flags are added to the command line; the process closes when the
// benchmark ends.
func benchProcess(b *testing.B, flags ...string) (*Process, catalog.Product) {
	b.Helper()
	ctx := context.Background()
	shutdown, err := telemetry.SetupTracing(ctx, "bench", "dev")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = shutdown(ctx) })
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var cfg Config
	cfg.RegisterFlags(fs)
	getenv := func(string) string { return "" }
	args := append([]string{"--http-addr=127.0.0.1:0", "--data-dir=" + b.TempDir(), "--services=auth,catalog"}, flags...)
	if err := config.Parse(fs, args, getenv); err != nil {
		b.Fatal(err)
	}
	p, err := Start(ctx, &cfg, telemetry.NewLogger(io.Discard, slog.LevelInfo), getenv)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.close)
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
	return p, prod
}
