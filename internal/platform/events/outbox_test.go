package events_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/sqldb/sqldbtest"
)

// TestRelayFlushPublishesBatchesInOrder: one Flush of more than one relay
// batch, over two domains, leaves every event in its stream exactly once
// and in creation order (so in order per subject too).
func TestRelayFlushPublishesBatchesInOrder(t *testing.T) {
	t.Parallel()
	eachBus(t, func(t *testing.T, bus *events.Bus, newStream func(*testing.T) string) {
		sqldbtest.Each(t, "evtest", []sqldb.Migrations{events.Migrations}, func(t *testing.T, db *sqldb.DB) {
			ctx := context.Background()
			domains := []string{newStream(t), newStream(t)}
			want := enqueueMixed(t, db, domains, 700)
			reg := prometheus.NewRegistry()
			relay := events.NewRelay("evtest", db, bus, slog.New(slog.DiscardHandler), events.NewRelayMetrics(reg))
			if err := relay.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if left := outboxIDs(t, db); len(left) != 0 {
				t.Fatalf("outbox after flush: %d rows", len(left))
			}
			published := publishedByType(t, reg)
			for _, d := range domains {
				if got := streamIDs(t, bus, d); !slices.Equal(got, want[d]) {
					t.Fatalf("stream %s: %d events, want %d in creation order", d, len(got), len(want[d]))
				}
				if got := published[d+".happened"]; got != float64(len(want[d])) {
					t.Fatalf("published %s = %v, want %d", d, got, len(want[d]))
				}
			}
		})
	})
}

// TestRelayReplicasKeepOrder: replicas' relays sharing one PostgreSQL
// outbox publish one batch at a time, so a stream still holds its events
// in creation order (two relays publishing different batches at once
// would interleave them, and a snapshot stream would keep whichever of a
// subject's events arrived last).
func TestRelayReplicasKeepOrder(t *testing.T) {
	t.Parallel()
	eachBus(t, func(t *testing.T, bus *events.Bus, newStream func(*testing.T) string) {
		db := sqldbtest.Open(t, sqldb.Postgres, "evtest", []sqldb.Migrations{events.Migrations})
		ctx := context.Background()
		domain := newStream(t)
		want := enqueueMixed(t, db, []string{domain}, 3000)[domain]
		relays := make([]*events.Relay, 3)
		for i := range relays {
			relays[i] = events.NewRelay("evtest", db, bus, slog.New(slog.DiscardHandler), nil)
		}
		// Each replica flushes until the outbox is empty; one that finds
		// another publishing returns and tries again, as its ticker would.
		var wg sync.WaitGroup
		for _, r := range relays {
			wg.Go(func() {
				for len(outboxIDs(t, db)) > 0 {
					if err := r.Flush(ctx); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if got := streamIDs(t, bus, domain); !slices.Equal(got, want) {
			t.Fatalf("stream holds %d events, want %d in creation order", len(got), len(want))
		}
	})
}

// TestRelayKeepsUnacknowledgedEvents: when a domain's stream is gone (the
// bus created it, then it was deleted), a flush publishes and deletes the
// other domain's events, keeps the rest in the outbox and fails; the next
// flush creates the stream again and delivers them, in order, once.
func TestRelayKeepsUnacknowledgedEvents(t *testing.T) {
	t.Parallel()
	eachBus(t, func(t *testing.T, bus *events.Bus, newStream func(*testing.T) string) {
		sqldbtest.Each(t, "evtest", []sqldb.Migrations{events.Migrations}, func(t *testing.T, db *sqldb.DB) {
			ctx := context.Background()
			kept, lost := newStream(t), newStream(t)
			if _, err := bus.Publish(ctx, newEvent(t, ctx, lost, "before")); err != nil {
				t.Fatal(err)
			}
			if err := bus.JS.DeleteStream(ctx, bus.StreamName(lost)); err != nil {
				t.Fatal(err)
			}
			want := enqueueMixed(t, db, []string{kept, lost}, 300)
			relay := events.NewRelay("evtest", db, bus, slog.New(slog.DiscardHandler), nil)

			if err := relay.Flush(ctx); !errors.Is(err, jetstream.ErrNoStreamResponse) {
				t.Fatalf("first flush: %v, want %v", err, jetstream.ErrNoStreamResponse)
			}
			if left := outboxIDs(t, db); !slices.Equal(left, want[lost]) {
				t.Fatalf("outbox after failed flush: %d rows, want the %d unacknowledged", len(left), len(want[lost]))
			}
			if got := streamIDs(t, bus, kept); !slices.Equal(got, want[kept]) {
				t.Fatalf("stream %s: %d events, want %d in order", kept, len(got), len(want[kept]))
			}

			if err := relay.Flush(ctx); err != nil {
				t.Fatalf("second flush: %v", err)
			}
			if left := outboxIDs(t, db); len(left) != 0 {
				t.Fatalf("outbox after second flush: %d rows", len(left))
			}
			for _, d := range []string{kept, lost} {
				if got := streamIDs(t, bus, d); !slices.Equal(got, want[d]) {
					t.Fatalf("stream %s: %d events, want %d in order", d, len(got), len(want[d]))
				}
			}
		})
	})
}

// enqueueMixed writes n events to the outbox in a few transactions, the
// domains taking turns and seven entities each; it returns each domain's
// event ids in creation order.
func enqueueMixed(tb testing.TB, db *sqldb.DB, domains []string, n int) map[string][]string {
	tb.Helper()
	ctx := context.Background()
	want := map[string][]string{}
	for start := 0; start < n; start += 100 {
		if err := db.InTx(ctx, func(tx *sql.Tx) error {
			for i := start; i < min(start+100, n); i++ {
				d := domains[i%len(domains)]
				e := newEvent(tb, ctx, d, fmt.Sprint(i%7))
				want[d] = append(want[d], e.ID)
				if err := events.Enqueue(ctx, tx, e); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			tb.Fatal(err)
		}
	}
	return want
}

func outboxIDs(tb testing.TB, db *sqldb.DB) []string {
	tb.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT id FROM outbox ORDER BY id`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			tb.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return ids
}

// streamIDs reads a domain's whole stream and returns the event ids in
// stream order.
func streamIDs(tb testing.TB, bus *events.Bus, domain string) []string {
	tb.Helper()
	ctx := context.Background()
	st, err := bus.JS.Stream(ctx, bus.StreamName(domain))
	if err != nil {
		tb.Fatal(err)
	}
	n := int(st.CachedInfo().State.Msgs)
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	var ids []string
	for len(ids) < n {
		batch, err := cons.Fetch(n-len(ids), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			tb.Fatal(err)
		}
		before := len(ids)
		for m := range batch.Messages() {
			e, err := events.FromMsg(m)
			if err != nil {
				tb.Fatal(err)
			}
			ids = append(ids, e.ID)
		}
		if err := batch.Error(); err != nil {
			tb.Fatal(err)
		}
		if len(ids) == before {
			tb.Fatalf("stream %s: read %d of %d messages", domain, len(ids), n)
		}
	}
	return ids
}

func publishedByType(tb testing.TB, reg *prometheus.Registry) map[string]float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	byType := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "mallhive_outbox_published_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "type" {
					byType[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return byType
}

// TestRelayTurnsJSONPayloadsIntoProtobuf: an outbox row written by SQL
// with a protojson payload (marked by JSONPayloadHeader) is published as
// the same protobuf an event built in Go carries, without the mark.
func TestRelayTurnsJSONPayloadsIntoProtobuf(t *testing.T) {
	t.Parallel()
	bus := openBus(t, events.Config{DataDir: t.TempDir()})
	sqldbtest.Each(t, "evtest", []sqldb.Migrations{events.Migrations}, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		domain := newDomain()
		t.Cleanup(func() { _ = bus.JS.DeleteStream(context.Background(), bus.StreamName(domain)) })
		want := newEvent(t, ctx, domain, "from SQL")
		_, err := db.ExecContext(ctx, `INSERT INTO outbox (id, type, source, subject, occurred_at, headers, payload) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			want.ID, want.Type, want.Source, want.Subject, want.Time,
			`{"`+events.JSONPayloadHeader+`": "google.protobuf.StringValue", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`,
			[]byte(`"from SQL"`))
		if err != nil {
			t.Fatal(err)
		}
		relay := events.NewRelay("evtest", db, bus, slog.New(slog.DiscardHandler), nil)
		if err := relay.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		cons, err := bus.JS.OrderedConsumer(ctx, bus.StreamName(domain), jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got, err := events.FromMsg(m)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Data) != string(want.Data) || got.ID != want.ID {
			t.Fatalf("published payload %q, want the protobuf %q", got.Data, want.Data)
		}
		if _, marked := got.Headers[events.JSONPayloadHeader]; marked || got.Headers["traceparent"] == "" {
			t.Fatalf("published headers %v", got.Headers)
		}
	})
}

// TestRelayRefusesABadJSONPayload: a marked payload that is not its
// message's JSON stays in the outbox and the relay says why.
func TestRelayRefusesABadJSONPayload(t *testing.T) {
	t.Parallel()
	bus := openBus(t, events.Config{DataDir: t.TempDir()})
	sqldbtest.Each(t, "evtest", []sqldb.Migrations{events.Migrations}, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		e := newEvent(t, ctx, newDomain(), "x")
		_, err := db.ExecContext(ctx, `INSERT INTO outbox (id, type, source, subject, occurred_at, headers, payload) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			e.ID, e.Type, e.Source, e.Subject, e.Time, `{"`+events.JSONPayloadHeader+`": "google.protobuf.StringValue"}`, []byte(`{"no": 1}`))
		if err != nil {
			t.Fatal(err)
		}
		relay := events.NewRelay("evtest", db, bus, slog.New(slog.DiscardHandler), nil)
		if err := relay.Flush(ctx); err == nil || !strings.Contains(err.Error(), "JSON payload") {
			t.Fatalf("flush: %v", err)
		}
		if left := outboxIDs(t, db); len(left) != 1 {
			t.Fatalf("outbox holds %d rows, want the bad one kept", len(left))
		}
	})
}
