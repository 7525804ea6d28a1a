// Package events carries domain events between services over NATS
// JetStream: a transactional outbox and its relay on the producing side,
// durable idempotent consumers on the other. The envelope travels in NATS
// headers (CloudEvents binary mode); the payload is protobuf.
package events

import (
	"context"
	"embed"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations creates the outbox and processed-events tables; every service
// that emits or consumes events runs it beside its own migrations.
var Migrations = sqldb.Embedded("events", migrationsFS, "migrations")

// Event is one domain event.
type Event struct {
	ID      string // UUIDv7, also the JetStream Nats-Msg-Id (deduplication)
	Type    string // "<domain>.<what happened>", e.g. "user.registered"
	Source  string // the emitting service, e.g. "mallhive/auth"
	Subject string // the id of the entity the event is about
	Time    time.Time
	// Headers carry trace context (traceparent, tracestate).
	Headers map[string]string
	Data    []byte // protobuf-encoded payload
}

// New builds an event with a fresh id, carrying the trace context of ctx.
func New(ctx context.Context, source, typ, subject string, msg proto.Message) (Event, error) {
	data, err := proto.Marshal(msg)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s: %w", typ, err)
	}
	if strings.Count(typ, ".") < 1 {
		return Event{}, fmt.Errorf("event type %q must be <domain>.<name>", typ)
	}
	return Event{
		ID:      uuid.Must(uuid.NewV7()).String(),
		Type:    typ,
		Source:  source,
		Subject: subject,
		Time:    time.Now().UTC(),
		Headers: TraceHeaders(ctx),
		Data:    data,
	}, nil
}

// TraceHeaders are the headers New gives an event emitted from ctx.
func TraceHeaders(ctx context.Context) map[string]string {
	hdr := map[string]string{}
	propagation.TraceContext{}.Inject(ctx, propagation.MapCarrier(hdr))
	return hdr
}

// JSONPayloadHeader marks an outbox row whose payload a SQL statement wrote
// as protojson of the message it names (SQL can build JSON, not protobuf).
// The relay turns such a payload into protobuf before publishing, so no
// consumer ever sees the difference.
const JSONPayloadHeader = "Mallhive-Payload-Json"

// protobufFromJSON converts a payload marked with JSONPayloadHeader.
func (e *Event) protobufFromJSON() error {
	name, ok := e.Headers[JSONPayloadHeader]
	if !ok {
		return nil
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(name))
	if err != nil {
		return fmt.Errorf("outbox event %s: payload type %q: %w", e.ID, name, err)
	}
	msg := mt.New().Interface()
	if err := protojson.Unmarshal(e.Data, msg); err != nil {
		return fmt.Errorf("outbox event %s: JSON payload: %w", e.ID, err)
	}
	if e.Data, err = proto.Marshal(msg); err != nil {
		return fmt.Errorf("outbox event %s: %w", e.ID, err)
	}
	delete(e.Headers, JSONPayloadHeader)
	return nil
}

// Decode unmarshals the payload into msg.
func (e Event) Decode(msg proto.Message) error {
	if err := proto.Unmarshal(e.Data, msg); err != nil {
		return fmt.Errorf("decode %s %s: %w", e.Type, e.ID, err)
	}
	return nil
}

// Context returns ctx carrying the event's trace context, so a consumer's
// span continues the producer's trace.
func (e Event) Context(ctx context.Context) context.Context {
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(e.Headers))
}

// Domain is the first segment of the type: it names the stream.
func (e Event) Domain() string { return domainOf(e.Type) }

func domainOf(typ string) string {
	d, _, _ := strings.Cut(typ, ".")
	return d
}

func subjectToken(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '.' || r == '*' || r == '>' || r <= ' ' || r == 0x7f:
			return '_'
		}
		return r
	}, s)
}
