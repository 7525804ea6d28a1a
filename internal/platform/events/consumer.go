package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

// Handler handles one event. Returning nil acknowledges it; an error has it
// redelivered with backoff; a Permanent error drops it after logging.
type Handler func(ctx context.Context, e Event) error

// permanentError marks an event that can never be handled (bad payload).
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent wraps err so the consumer terminates the message instead of
// redelivering it.
func Permanent(err error) error { return permanentError{err} }

// Subscription is a running durable consumer.
type Subscription struct {
	cc       jetstream.ConsumeContext
	consumer jetstream.Consumer
}

// Stop stops delivering; in-flight handlers finish.
func (s *Subscription) Stop() { s.cc.Drain(); <-s.cc.Closed() }

// Pending returns how many events wait for this consumer (consumer lag).
func (s *Subscription) Pending(ctx context.Context) (uint64, error) {
	info, err := s.consumer.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

// ConsumerMetrics count handled events per consumer and result.
type ConsumerMetrics struct {
	handled *prometheus.CounterVec
	pending *prometheus.GaugeVec
}

// NewConsumerMetrics registers the consumer metrics with reg (nil: none).
func NewConsumerMetrics(reg prometheus.Registerer) *ConsumerMetrics {
	m := &ConsumerMetrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mallhive_events_handled_total", Help: "Events handled by consumers, by result.",
		}, []string{"consumer", "type", "result"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mallhive_consumer_pending", Help: "Events not yet handled by a consumer (consumer lag).",
		}, []string{"consumer", "stream"}),
	}
	if reg != nil {
		reg.MustRegister(m.handled, m.pending)
	}
	return m
}

// ConsumerConfig names a durable consumer and what it reads.
type ConsumerConfig struct {
	// Name is durable: a restarted process resumes where it stopped.
	Name string
	// Domain picks the stream ("product" reads MALLHIVE_PRODUCT).
	Domain string
	// Types filters by type prefix inside the domain ("product.archived");
	// empty means every event of the domain.
	Type string
	// MaxDeliver bounds redeliveries of a failing event (default 20).
	MaxDeliver int
	Metrics    *ConsumerMetrics
	Log        *slog.Logger
}

// Consume starts a durable consumer that calls h for each event, in stream
// order, one at a time.
func (b *Bus) Consume(ctx context.Context, cfg ConsumerConfig, h Handler) (*Subscription, error) {
	if err := b.EnsureStream(ctx, cfg.Domain); err != nil {
		return nil, err
	}
	filter := "mallhive." + cfg.Domain + ".>"
	if cfg.Type != "" {
		filter = "mallhive." + cfg.Type + ".>"
	}
	maxDeliver := cfg.MaxDeliver
	if maxDeliver == 0 {
		maxDeliver = 20
	}
	log := cfg.Log
	if log == nil {
		log = b.log
	}
	m := cfg.Metrics
	if m == nil {
		m = NewConsumerMetrics(nil)
	}
	durable := cfg.Name + "_" + cfg.Domain
	cons, err := b.JS.CreateOrUpdateConsumer(ctx, StreamName(cfg.Domain), jetstream.ConsumerConfig{
		Durable:       durable,
		FilterSubject: filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    maxDeliver,
		MaxAckPending: 1, // in order, one at a time: handlers see events as they happened
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", durable, err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		e, err := eventFromMsg(msg)
		if err != nil {
			log.Error("malformed event dropped", "consumer", durable, "subject", msg.Subject(), "err", err)
			m.handled.WithLabelValues(cfg.Name, "unknown", "malformed").Inc()
			_ = msg.Term()
			return
		}
		hctx := e.Context(context.Background())
		err = h(hctx, e)
		var perm permanentError
		switch {
		case err == nil:
			m.handled.WithLabelValues(cfg.Name, e.Type, "ok").Inc()
			_ = msg.Ack()
		case errors.As(err, &perm):
			log.Error("event dropped", "consumer", durable, "type", e.Type, "id", e.ID, "err", err)
			m.handled.WithLabelValues(cfg.Name, e.Type, "dropped").Inc()
			_ = msg.Term()
		default:
			md, _ := msg.Metadata()
			attempt := uint64(1)
			if md != nil {
				attempt = md.NumDelivered
			}
			log.Warn("event handling failed; will retry", "consumer", durable, "type", e.Type, "id", e.ID, "attempt", attempt, "err", err)
			m.handled.WithLabelValues(cfg.Name, e.Type, "retry").Inc()
			_ = msg.NakWithDelay(backoff(attempt))
		}
	})
	if err != nil {
		return nil, fmt.Errorf("consume %s: %w", durable, err)
	}
	sub := &Subscription{cc: cc, consumer: cons}
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-cc.Closed():
				return
			case <-t.C:
				if n, err := sub.Pending(context.Background()); err == nil {
					m.pending.WithLabelValues(cfg.Name, StreamName(cfg.Domain)).Set(float64(n))
				}
			}
		}
	}()
	return sub, nil
}

func backoff(attempt uint64) time.Duration {
	d := 100 * time.Millisecond << min(attempt, 8)
	return min(d, 30*time.Second)
}

// HandleOnce runs fn in a transaction that also records the event as handled
// by consumer. An event already recorded is skipped, so redelivery is safe.
func HandleOnce(ctx context.Context, db *sqldb.DB, consumer string, e Event, fn func(tx *sql.Tx) error) error {
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO processed_events (consumer, event_id, processed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			consumer, e.ID, time.Now().UTC())
		if err != nil {
			return fmt.Errorf("record event %s: %w", e.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errAlreadyHandled
		}
		return fn(tx)
	})
	if errors.Is(err, errAlreadyHandled) {
		return nil
	}
	return err
}

var errAlreadyHandled = errors.New("event already handled")
