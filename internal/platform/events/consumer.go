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
	stop     func()
	done     <-chan struct{}
	consumer jetstream.Consumer
}

// Stop stops delivering and waits for in-flight handlers to finish.
func (s *Subscription) Stop() { s.stop(); <-s.done }

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

// consumer creates or updates the durable consumer cfg describes.
func (b *Bus) consumer(ctx context.Context, cfg *ConsumerConfig, maxAckPending int) (jetstream.Consumer, string, error) {
	if err := b.EnsureStream(ctx, cfg.Domain); err != nil {
		return nil, "", err
	}
	filter := b.Filter(cfg.Domain)
	if cfg.Type != "" {
		filter = b.Filter(cfg.Type)
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = 20
	}
	if cfg.Log == nil {
		cfg.Log = b.log
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewConsumerMetrics(nil)
	}
	durable := ConsumerName(cfg.Name, cfg.Domain)
	cons, err := b.JS.CreateOrUpdateConsumer(ctx, b.StreamName(cfg.Domain), jetstream.ConsumerConfig{
		Durable:       durable,
		FilterSubject: filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: maxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, "", fmt.Errorf("consumer %s: %w", durable, err)
	}
	return cons, durable, nil
}

// ConsumerName is the JetStream durable name of a consumer of a domain.
func ConsumerName(name, domain string) string { return name + "_" + domain }

// Consume starts a durable consumer that calls h for each event, in stream
// order, one at a time.
func (b *Bus) Consume(ctx context.Context, cfg ConsumerConfig, h Handler) (*Subscription, error) {
	// One in flight: handlers see events in the order they happened.
	cons, durable, err := b.consumer(ctx, &cfg, 1)
	if err != nil {
		return nil, err
	}
	log, m := cfg.Log, cfg.Metrics
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		e, err := FromMsg(msg)
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
			attempt := attemptOf(msg)
			log.Warn("event handling failed; will retry", "consumer", durable, "type", e.Type, "id", e.ID, "attempt", attempt, "err", err)
			m.handled.WithLabelValues(cfg.Name, e.Type, "retry").Inc()
			_ = msg.NakWithDelay(backoff(attempt))
		}
	})
	if err != nil {
		return nil, fmt.Errorf("consume %s: %w", durable, err)
	}
	done := make(chan struct{})
	go func() { <-cc.Closed(); close(done) }()
	sub := &Subscription{stop: cc.Drain, done: done, consumer: cons}
	sub.reportLag(cfg, b.StreamName(cfg.Domain))
	return sub, nil
}

func attemptOf(msg jetstream.Msg) uint64 {
	if md, err := msg.Metadata(); err == nil && md != nil {
		return md.NumDelivered
	}
	return 1
}

// BatchHandler handles events in stream order, a batch at a time; nil
// acknowledges the whole batch, an error redelivers it.
type BatchHandler func(ctx context.Context, batch []Event) error

// ConsumeBatches is Consume for handlers that gain from batching (a search
// index catching up on a whole stream): up to size events per call.
func (b *Bus) ConsumeBatches(ctx context.Context, cfg ConsumerConfig, size int, h BatchHandler) (*Subscription, error) {
	cons, durable, err := b.consumer(ctx, &cfg, size)
	if err != nil {
		return nil, err
	}
	log, m := cfg.Log, cfg.Metrics
	// A continuous pull (not one Fetch after another) never strands
	// messages in an expired pull request, which would hold them until
	// AckWait passes.
	it, err := cons.Messages(jetstream.PullMaxMessages(size))
	if err != nil {
		return nil, fmt.Errorf("consume %s: %w", durable, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			first, err := it.Next()
			if err != nil {
				return // stopped
			}
			msgs := []jetstream.Msg{first}
			// Take what has already arrived, up to size, without waiting
			// for a full batch: latency matters more than batch size.
			for len(msgs) < size {
				next, err := it.Next(jetstream.NextMaxWait(5 * time.Millisecond))
				if err != nil {
					break
				}
				msgs = append(msgs, next)
			}
			var evs []Event
			var good []jetstream.Msg
			for _, msg := range msgs {
				e, err := FromMsg(msg)
				if err != nil {
					log.Error("malformed event dropped", "consumer", durable, "subject", msg.Subject(), "err", err)
					m.handled.WithLabelValues(cfg.Name, "unknown", "malformed").Inc()
					_ = msg.Term()
					continue
				}
				good, evs = append(good, msg), append(evs, e)
			}
			if len(evs) == 0 {
				continue
			}
			hctx := evs[len(evs)-1].Context(context.Background())
			if err := h(hctx, evs); err != nil {
				log.Warn("event batch failed; will retry", "consumer", durable, "events", len(evs), "err", err)
				for _, msg := range good {
					_ = msg.NakWithDelay(backoff(attemptOf(msg)))
				}
				continue
			}
			for i, msg := range good {
				_ = msg.Ack()
				m.handled.WithLabelValues(cfg.Name, evs[i].Type, "ok").Inc()
			}
		}
	}()
	stop := it.Stop
	sub := &Subscription{stop: stop, done: done, consumer: cons}
	sub.reportLag(cfg, b.StreamName(cfg.Domain))
	return sub, nil
}

// reportLag publishes the consumer's pending count until it stops.
func (s *Subscription) reportLag(cfg ConsumerConfig, stream string) {
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				if n, err := s.Pending(context.Background()); err == nil {
					cfg.Metrics.pending.WithLabelValues(cfg.Name, stream).Set(float64(n))
				}
			}
		}
	}()
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
