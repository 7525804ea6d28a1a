package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config says which JetStream to use.
type Config struct {
	// URL of an external NATS server; empty starts an embedded one.
	URL string
	// DataDir holds the embedded server's file store (<DataDir>/nats).
	DataDir string
	// Replicas for streams on a clustered server (1 when unset).
	Replicas int
	// Namespace prefixes every subject and stream ("mallhive" when empty),
	// so several marketplaces (staging beside production, parallel test
	// runs) can share one NATS cluster without seeing each other's events.
	Namespace string
}

var namespaceRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,30}$`)

// Bus is a connection to JetStream, optionally with the embedded server
// that backs it.
type Bus struct {
	Conn *nats.Conn
	JS   jetstream.JetStream

	log      *slog.Logger
	server   *server.Server
	replicas int
	ns       string

	mu      sync.Mutex
	streams map[string]bool
}

// Open connects to cfg.URL, or starts an embedded JetStream server with a
// file store under cfg.DataDir that only this process can reach.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Bus, error) {
	ns := cfg.Namespace
	if ns == "" {
		ns = "mallhive"
	}
	if !namespaceRE.MatchString(ns) {
		return nil, fmt.Errorf("open events: namespace %q must be lower-case letters, digits and _", ns)
	}
	b := &Bus{log: log, replicas: max(cfg.Replicas, 1), ns: ns, streams: map[string]bool{}}
	opts := []nats.Option{nats.Name("mallhive"), nats.MaxReconnects(-1), nats.ReconnectWait(500 * time.Millisecond)}
	url := cfg.URL
	if url == "" {
		if cfg.DataDir == "" {
			return nil, errors.New("open events: embedded server needs a data dir")
		}
		ns, err := server.NewServer(&server.Options{
			ServerName: "mallhive-embedded",
			DontListen: true, // in-process only: two instances never collide on a port
			JetStream:  true,
			StoreDir:   filepath.Join(cfg.DataDir, "nats"),
			NoSigs:     true,
			NoLog:      true,
			// Orders and money ride on these streams: write through to disk.
			SyncAlways: true,
		})
		if err != nil {
			return nil, fmt.Errorf("open events: embedded server: %w", err)
		}
		ns.Start()
		if !ns.ReadyForConnections(15 * time.Second) {
			ns.Shutdown()
			return nil, errors.New("open events: embedded server did not start")
		}
		b.server = ns
		opts = append(opts, nats.InProcessServer(ns))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("open events: connect: %w", err)
	}
	// Async publishes (PublishBatch) whose ack never comes fail after
	// ackWait instead of holding a pending slot forever.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(ackWait))
	if err != nil {
		nc.Close()
		b.shutdownServer()
		return nil, fmt.Errorf("open events: jetstream: %w", err)
	}
	b.Conn, b.JS = nc, js
	return b, nil
}

// Embedded reports whether the bus runs its own server.
func (b *Bus) Embedded() bool { return b.server != nil }

// Ping reports whether JetStream answers; readiness checks use it.
func (b *Bus) Ping(ctx context.Context) error {
	if !b.Conn.IsConnected() {
		return errors.New("nats: not connected")
	}
	_, err := b.JS.AccountInfo(ctx)
	return err
}

// Close drains the connection and stops the embedded server.
func (b *Bus) Close() {
	if b.Conn != nil {
		_ = b.Conn.Drain()
		for i := 0; i < 50 && !b.Conn.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		b.Conn.Close()
	}
	b.shutdownServer()
}

func (b *Bus) shutdownServer() {
	if b.server != nil {
		b.server.Shutdown()
		b.server.WaitForShutdown()
	}
}

// StreamName is the JetStream stream holding a domain's events, e.g.
// MALLHIVE_PRODUCT.
func (b *Bus) StreamName(domain string) string {
	return strings.ToUpper(b.ns) + "_" + strings.ToUpper(domain)
}

// Filter is the subject filter of every event of a domain ("product") or
// of one type ("product.archived").
func (b *Bus) Filter(domainOrType string) string { return b.ns + "." + domainOrType + ".>" }

// subject is <namespace>.<type>.<entity>, so a stream can keep the latest
// event per entity and consumers filter by type prefix.
func (b *Bus) subject(e Event) string { return b.ns + "." + e.Type + "." + subjectToken(e.Subject) }

// Domains whose events are full snapshots of an entity keep only the latest
// event per entity and type forever: the stream then is a compacted log
// that a new search replica or read model can rebuild itself from.
var snapshotDomains = map[string]bool{"product": true, "stock": true, "category": true}

// EnsureStream creates or updates the stream for a domain.
func (b *Bus) EnsureStream(ctx context.Context, domain string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.streams[domain] {
		return nil
	}
	cfg := jetstream.StreamConfig{
		Name:       b.StreamName(domain),
		Subjects:   []string{b.Filter(domain)},
		Storage:    jetstream.FileStorage,
		Replicas:   b.replicas,
		Duplicates: 10 * time.Minute,
	}
	if snapshotDomains[domain] {
		cfg.MaxMsgsPerSubject = 1
	} else {
		cfg.MaxAge = 30 * 24 * time.Hour
	}
	if _, err := b.JS.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
	}
	b.streams[domain] = true
	return nil
}

// ackWait bounds how long PublishBatch waits for one ack (as the default
// API timeout bounds a synchronous publish, but generous enough for a
// batch queued behind others on a server that syncs every write).
const ackWait = 10 * time.Second

// Publish sends one event. Re-publishing an event with the same id inside
// the stream's duplicate window is acknowledged but stored once.
func (b *Bus) Publish(ctx context.Context, e Event) (duplicate bool, err error) {
	if err := b.EnsureStream(ctx, e.Domain()); err != nil {
		return false, err
	}
	ack, err := b.JS.PublishMsg(ctx, b.msg(e), jetstream.WithMsgID(e.ID))
	if err != nil {
		b.forgetStreamOn(err, e.Domain())
		return false, fmt.Errorf("publish %s %s: %w", e.Type, e.ID, err)
	}
	return ack.Duplicate, nil
}

// PublishBatch sends evs in order without waiting for each ack, then waits
// for all acks (each bounded by ctx and ackWait). acked[i] reports whether
// JetStream stored evs[i] or already had it (the id is the Nats-Msg-Id).
// err is the first failure; sending stops at a failed send, so nothing
// after it goes out in this call.
func (b *Bus) PublishBatch(ctx context.Context, evs []Event) (acked []bool, err error) {
	acked = make([]bool, len(evs))
	futures := make([]jetstream.PubAckFuture, 0, len(evs))
	var sendErr error
	for _, e := range evs {
		if sendErr = ctx.Err(); sendErr != nil {
			break
		}
		if sendErr = b.EnsureStream(ctx, e.Domain()); sendErr != nil {
			break
		}
		// No client-side retry on "no responders": the resent message would
		// land behind those sent after it. The relay's next flush resends it.
		f, err := b.JS.PublishMsgAsync(b.msg(e), jetstream.WithMsgID(e.ID),
			jetstream.WithRetryAttempts(0), jetstream.WithStallWait(ackWait))
		if err != nil {
			sendErr = fmt.Errorf("publish %s %s: %w", e.Type, e.ID, err)
			break
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
			acked[i] = true
		case ferr := <-f.Err():
			b.forgetStreamOn(ferr, evs[i].Domain())
			if err == nil {
				err = fmt.Errorf("publish %s %s: %w", evs[i].Type, evs[i].ID, ferr)
			}
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("publish %s %s: %w", evs[i].Type, evs[i].ID, ctx.Err())
			}
		}
	}
	if err == nil {
		err = sendErr
	}
	return acked, err
}

// forgetStreamOn makes the next publish to domain ensure its stream again
// when err says no stream took the message (deleted by hand, or lost).
func (b *Bus) forgetStreamOn(err error, domain string) {
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		b.mu.Lock()
		delete(b.streams, domain)
		b.mu.Unlock()
	}
}

func (b *Bus) msg(e Event) *nats.Msg {
	msg := nats.NewMsg(b.subject(e))
	msg.Header.Set("Ce-Specversion", "1.0")
	msg.Header.Set("Ce-Id", e.ID)
	msg.Header.Set("Ce-Type", e.Type)
	msg.Header.Set("Ce-Source", e.Source)
	msg.Header.Set("Ce-Subject", e.Subject)
	msg.Header.Set("Ce-Time", e.Time.UTC().Format(time.RFC3339Nano))
	msg.Header.Set("Content-Type", "application/protobuf")
	for k, v := range e.Headers {
		msg.Header.Set(k, v)
	}
	msg.Data = e.Data
	return msg
}

// FromMsg rebuilds an Event from a JetStream message (consumers use it;
// so does a reader replaying a stream).
func FromMsg(m jetstream.Msg) (Event, error) {
	h := m.Headers()
	e := Event{
		ID:      h.Get("Ce-Id"),
		Type:    h.Get("Ce-Type"),
		Source:  h.Get("Ce-Source"),
		Subject: h.Get("Ce-Subject"),
		Data:    m.Data(),
		Headers: map[string]string{},
	}
	if e.ID == "" || e.Type == "" {
		return e, errors.New("message without Ce-Id or Ce-Type")
	}
	t, err := time.Parse(time.RFC3339Nano, h.Get("Ce-Time"))
	if err != nil {
		return e, fmt.Errorf("bad Ce-Time: %w", err)
	}
	e.Time = t
	for _, k := range []string{"traceparent", "tracestate"} {
		if v := h.Get(k); v != "" {
			e.Headers[k] = v
		}
	}
	return e, nil
}
