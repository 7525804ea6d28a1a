package events_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/sqldb/sqldbtest"
)

// eachBus runs fn against an embedded JetStream and, when
// MALLHIVE_TEST_NATS_URL is set, against the external server.
// Each call of the domain function gives a fresh stream, so runs against a
// shared external server never see each other's events.
func eachBus(t *testing.T, fn func(t *testing.T, bus *events.Bus, domain func(t *testing.T) string)) {
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		bus := openBus(t, events.Config{DataDir: t.TempDir()})
		fn(t, bus, func(*testing.T) string { return newDomain() })
	})
	t.Run("external", func(t *testing.T) {
		t.Parallel()
		url := os.Getenv("MALLHIVE_TEST_NATS_URL")
		if url == "" {
			t.Skip("MALLHIVE_TEST_NATS_URL not set")
		}
		bus := openBus(t, events.Config{URL: url})
		fn(t, bus, func(t *testing.T) string {
			domain := newDomain()
			t.Cleanup(func() { _ = bus.JS.DeleteStream(context.Background(), bus.StreamName(domain)) })
			return domain
		})
	})
}

func openBus(t testing.TB, cfg events.Config) *events.Bus {
	t.Helper()
	bus, err := events.Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	return bus
}

func newDomain() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

func newEvent(t testing.TB, ctx context.Context, domain, value string) events.Event {
	t.Helper()
	e, err := events.New(ctx, "mallhive/test", domain+".happened", "entity-"+value, wrapperspb.String(value))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPublishDeduplicatesByEventID(t *testing.T) {
	t.Parallel()
	eachBus(t, func(t *testing.T, bus *events.Bus, newStream func(*testing.T) string) {
		ctx := context.Background()
		domain := newStream(t)
		e := newEvent(t, ctx, domain, "a")
		dup, err := bus.Publish(ctx, e)
		if err != nil || dup {
			t.Fatalf("first publish: dup=%v err=%v", dup, err)
		}
		dup, err = bus.Publish(ctx, e)
		if err != nil || !dup {
			t.Fatalf("second publish: want duplicate, got dup=%v err=%v", dup, err)
		}
		info, err := bus.JS.Stream(ctx, bus.StreamName(domain))
		if err != nil {
			t.Fatal(err)
		}
		if got := info.CachedInfo().State.Msgs; got != 1 {
			t.Fatalf("stream holds %d messages, want 1", got)
		}
	})
}

func TestOutboxPublishesOnlyCommittedEvents(t *testing.T) {
	t.Parallel()
	eachBus(t, func(t *testing.T, bus *events.Bus, newStream func(*testing.T) string) {
		sqldbtest.Each(t, "evtest", []sqldb.Migrations{events.Migrations}, func(t *testing.T, db *sqldb.DB) {
			ctx := context.Background()
			domain := newStream(t)
			var mu sync.Mutex
			var got []string
			sub, err := bus.Consume(ctx, events.ConsumerConfig{Name: "c" + newDomain(), Domain: domain}, func(ctx context.Context, e events.Event) error {
				var v wrapperspb.StringValue
				if err := e.Decode(&v); err != nil {
					return events.Permanent(err)
				}
				mu.Lock()
				got = append(got, v.Value)
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Stop()

			rolledBack := errors.New("roll back")
			err = db.InTx(ctx, func(tx *sql.Tx) error {
				if err := events.Enqueue(ctx, tx, newEvent(t, ctx, domain, "never")); err != nil {
					return err
				}
				return rolledBack
			})
			if !errors.Is(err, rolledBack) {
				t.Fatal(err)
			}
			for _, v := range []string{"one", "two", "three"} {
				if err := db.InTx(ctx, func(tx *sql.Tx) error {
					return events.Enqueue(ctx, tx, newEvent(t, ctx, domain, v))
				}); err != nil {
					t.Fatal(err)
				}
			}
			relay := events.NewRelay("evtest", db, bus, slog.New(slog.DiscardHandler), nil)
			if err := relay.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			var left int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox`).Scan(&left); err != nil || left != 0 {
				t.Fatalf("outbox after flush: %d rows, err %v", left, err)
			}
			eventually(t, "three events", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 3 })
			time.Sleep(100 * time.Millisecond) // nothing else may arrive
			mu.Lock()
			defer mu.Unlock()
			if want := []string{"one", "two", "three"}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
				t.Fatalf("got %v, want %v in order", got, want)
			}
		})
	})
}

func TestConsumerRetriesAndHandleOnceAppliesOnce(t *testing.T) {
	t.Parallel()
	eachBus(t, func(t *testing.T, bus *events.Bus, newStream func(*testing.T) string) {
		sqldbtest.Each(t, "evtest", []sqldb.Migrations{events.Migrations, counterMigrations}, func(t *testing.T, db *sqldb.DB) {
			ctx := context.Background()
			domain := newStream(t)
			var calls atomic.Int32
			apply := func(ctx context.Context, e events.Event) error {
				return events.HandleOnce(ctx, db, "counter", e, func(tx *sql.Tx) error {
					_, err := tx.ExecContext(ctx, `UPDATE counter SET n = n + 1`)
					return err
				})
			}
			sub, err := bus.Consume(ctx, events.ConsumerConfig{Name: "c" + newDomain(), Domain: domain}, func(ctx context.Context, e events.Event) error {
				// The first delivery fails after the effect committed, as
				// a crash before the ack would: redelivery must not repeat it.
				if err := apply(ctx, e); err != nil {
					return err
				}
				if calls.Add(1) == 1 {
					return errors.New("lost ack")
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Stop()
			e := newEvent(t, ctx, domain, "x")
			if _, err := bus.Publish(ctx, e); err != nil {
				t.Fatal(err)
			}
			eventually(t, "redelivery", func() bool { return calls.Load() >= 2 })
			var n int
			if err := db.QueryRowContext(ctx, `SELECT n FROM counter`).Scan(&n); err != nil || n != 1 {
				t.Fatalf("counter = %d (err %v), want 1", n, err)
			}
		})
	})
}

func TestTraceContextTravelsWithTheEvent(t *testing.T) {
	t.Parallel()
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled,
	}))
	eachBus(t, func(t *testing.T, bus *events.Bus, newStream func(*testing.T) string) {
		domain := newStream(t)
		got := make(chan trace.SpanContext, 1)
		sub, err := bus.Consume(context.Background(), events.ConsumerConfig{Name: "c" + newDomain(), Domain: domain}, func(ctx context.Context, e events.Event) error {
			got <- trace.SpanContextFromContext(ctx)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Stop()
		if _, err := bus.Publish(ctx, newEvent(t, ctx, domain, "traced")); err != nil {
			t.Fatal(err)
		}
		select {
		case sc := <-got:
			if sc.TraceID() != tid {
				t.Fatalf("trace id %s, want %s", sc.TraceID(), tid)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
	})
}

// TestRelayFlushesWhenStopped: a graceful shutdown publishes what is still
// in the outbox before the relay returns.
func TestRelayFlushesWhenStopped(t *testing.T) {
	t.Parallel()
	bus := openBus(t, events.Config{DataDir: t.TempDir()})
	db := sqldbtest.Open(t, sqldb.SQLite, "evtest", []sqldb.Migrations{events.Migrations})
	ctx := context.Background()
	domain := newDomain()
	if err := db.InTx(ctx, func(tx *sql.Tx) error {
		return events.Enqueue(ctx, tx, newEvent(t, ctx, domain, "late"))
	}); err != nil {
		t.Fatal(err)
	}
	stopped, stop := context.WithCancel(ctx)
	stop() // the relay starts already told to stop, as at SIGTERM
	events.NewRelay("evtest", db, bus, slog.New(slog.DiscardHandler), nil).Run(stopped)
	var left int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("outbox after stop: %d (%v)", left, err)
	}
	info, err := bus.JS.Stream(ctx, bus.StreamName(domain))
	if err != nil || info.CachedInfo().State.Msgs != 1 {
		t.Fatalf("stream after stop: %v", err)
	}
}

// TestConsumeBatchesDeliversEverything: at-least-once, in batches of at
// most the asked size, and a failed batch comes again (after later events:
// redelivery does not preserve order, which is why snapshot consumers
// compare versions).
func TestConsumeBatchesDeliversEverything(t *testing.T) {
	t.Parallel()
	eachBus(t, func(t *testing.T, bus *events.Bus, newStream func(*testing.T) string) {
		ctx := context.Background()
		domain := newStream(t)
		const n = 250
		for i := range n {
			if _, err := bus.Publish(ctx, newEvent(t, ctx, domain, fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		var got []string
		biggest := 0
		failedOnce := false
		sub, err := bus.ConsumeBatches(ctx, events.ConsumerConfig{Name: "b" + newDomain(), Domain: domain}, 100,
			func(ctx context.Context, batch []events.Event) error {
				mu.Lock()
				defer mu.Unlock()
				if !failedOnce { // the first batch fails and must come again
					failedOnce = true
					return errors.New("index busy")
				}
				biggest = max(biggest, len(batch))
				for _, e := range batch {
					var v wrapperspb.StringValue
					if err := e.Decode(&v); err != nil {
						return err
					}
					got = append(got, v.Value)
				}
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Stop()
		distinct := func() int {
			seen := map[string]bool{}
			for _, v := range got {
				seen[v] = true
			}
			return len(seen)
		}
		eventually(t, "every event", func() bool { mu.Lock(); defer mu.Unlock(); return distinct() == n })
		mu.Lock()
		defer mu.Unlock()
		if biggest > 100 {
			t.Fatalf("a batch of %d, want at most 100", biggest)
		}
	})
}

// TestNamespacesIsolateMarketplaces: two buses with different namespaces
// on one server never see each other's events.
func TestNamespacesIsolateMarketplaces(t *testing.T) {
	t.Parallel()
	url := os.Getenv("MALLHIVE_TEST_NATS_URL")
	if url == "" {
		t.Skip("MALLHIVE_TEST_NATS_URL not set")
	}
	ctx := context.Background()
	a := openBus(t, events.Config{URL: url, Namespace: "ns_" + newDomain()})
	b := openBus(t, events.Config{URL: url, Namespace: "ns_" + newDomain()})
	domain := newDomain()
	for _, bus := range []*events.Bus{a, b} {
		t.Cleanup(func() { _ = bus.JS.DeleteStream(context.Background(), bus.StreamName(domain)) })
	}
	if a.StreamName(domain) == b.StreamName(domain) {
		t.Fatal("namespaces share a stream name")
	}
	if _, err := a.Publish(ctx, newEvent(t, ctx, domain, "only-in-a")); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 4)
	sub, err := b.Consume(ctx, events.ConsumerConfig{Name: "c", Domain: domain}, func(ctx context.Context, e events.Event) error {
		got <- e.ID
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	select {
	case id := <-got:
		t.Fatalf("namespace b received %s from namespace a", id)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := events.Open(ctx, events.Config{URL: url, Namespace: "Bad.Name"}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("a namespace with a dot was accepted")
	}
}
