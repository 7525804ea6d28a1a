package cart

import (
	"context"
	"flag"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	catalogv1 "github.com/mallhive/mallhive/internal/gen/mallhive/catalog/v1"
	"github.com/mallhive/mallhive/internal/gen/mallhive/catalog/v1/catalogv1connect"
	eventsv1 "github.com/mallhive/mallhive/internal/gen/mallhive/events/v1"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/rpc"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/svc"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var cfg Config
	cfg.RegisterFlags(fs)
	if err := fs.Parse([]string{"-cart.reservation-ttl=10m", "-cart.redis-prefix=x:"}); err != nil {
		t.Fatal(err)
	}
	if cfg.ReservationTTL != 10*time.Minute || cfg.RedisPrefix != "x:" || cfg.GuestCartTTL != 30*24*time.Hour {
		t.Fatalf("parsed %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(*Config){
		"zero ttl":          func(c *Config) { c.ReservationTTL = 0 },
		"max below default": func(c *Config) { c.MaxReservationTTL = time.Minute },
		"zero sweep":        func(c *Config) { c.SweepInterval = 0 },
		"short guest carts": func(c *Config) { c.GuestCartTTL = time.Millisecond },
		"negative low":      func(c *Config) { c.LowThreshold = -1 },
	}
	for name, mutate := range bad {
		c := DefaultConfig()
		mutate(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestRun: Run publishes stock events through the outbox to JetStream and
// its sweeper releases expired reservations; Ready and Close work.
func TestRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	bus, err := events.Open(ctx, events.Config{DataDir: dir}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	cat := &fakeCatalog{variants: map[string]*catalogv1.VariantInfo{}}
	cat.put("RUN-1", sellerA.id, ProductActive, 100, "EUR")
	path, handler := catalogv1connect.NewCatalogServiceHandler(cat)
	mux := http.NewServeMux()
	mux.Handle(path, handler)
	catSrv := httptest.NewServer(mux)
	t.Cleanup(catSrv.Close)

	env := &svc.Env{
		Log:     slog.New(slog.DiscardHandler),
		DataDir: dir,
		DB: func(ctx context.Context, name string) (*sqldb.DB, error) {
			return sqldb.Open(ctx, sqldb.Config{Service: name, DataDir: dir})
		},
		Bus:        bus,
		ServiceURL: func(string) string { return catSrv.URL },
		RPCClient:  catSrv.Client(),

		RPCHandlerOptions: rpc.HandlerOptions(nil, nil, nil),
		RPCClientOptions:  rpc.ClientOptions(nil),
	}
	cfg := DefaultConfig()
	cfg.SweepInterval = 20 * time.Millisecond
	s, err := New(ctx, env, cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()

	if err := s.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.inventory.Set(ctx, sellerA.id, "RUN-1", 3, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.inventory.Reserve(ctx, "run-order", []ReserveLine{{SKU: "RUN-1", Quantity: 3}}, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the sweeper to release the reservation", func() bool {
		l, _, err := s.inventory.store.level(ctx, s.db, "RUN-1", false)
		return err == nil && l.Reserved == 0
	})
	eventually(t, "the outbox to drain", func() bool { return count(t, s.db, `SELECT COUNT(*) FROM outbox`) == 0 })

	// The stream keeps the latest event per subject: stock.changed after
	// the expiry, and the stock.out of the reservation.
	stream, err := bus.JS.Stream(ctx, bus.StreamName("stock"))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, "mallhive.stock.changed.RUN-1")
	if err != nil {
		t.Fatal(err)
	}
	var ev eventsv1.StockLevelEvent
	if err := proto.Unmarshal(msg.Data, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.GetReason() != ReasonExpired || ev.GetAvailable() != 3 || msg.Header.Get("Ce-Source") != eventSource {
		t.Fatalf("last stock.changed %v, headers %v", &ev, msg.Header)
	}
	if _, err := stream.GetLastMsgForSubject(ctx, "mallhive.stock.out.RUN-1"); err != nil {
		t.Fatalf("stock.out: %v", err)
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
