// Package search is the search service: a Bleve full-text index of the
// marketplace's active products, answering search (with facets) and
// suggest-as-you-type.
//
// The index is fed only by events, never by reading catalog tables: the
// catalog's product.* snapshots and inventory's stock.* levels. Each replica
// keeps its own index on local disk and its own durable consumers, named
// after its replica id, so every replica sees every event. The product and
// stock streams keep the latest event per entity forever, so a replica whose
// index is empty replays them from the first message and catches up by
// itself; Reindex does the same offline into a fresh directory.
//
// Every search also emits a best-effort search.performed event for
// analytics (see performedPublisher).
package search

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/svc"
)

// Source is the events' source attribute.
const Source = "mallhive/search"

// StockLevel is the latest known stock of one SKU, from a stock event.
type StockLevel struct {
	Available int64 `json:"available"`
	// At orders levels of one SKU: an older event never overwrites a newer one.
	At time.Time `json:"at"`
}

// Config configures the search service.
type Config struct {
	// IndexDir holds this replica's Bleve index and its replica id file.
	// Empty means <data-dir>/search/index.
	IndexDir string
	// ReplicaID names this replica's durable consumers ("search-<id>").
	// Empty means a random id generated on first start and kept in
	// IndexDir, so each replica (each index) has its own consumers.
	ReplicaID string
}

// RegisterFlags registers the search flags under the "search." prefix
// (settable as MALLHIVE_SEARCH_INDEX_DIR and MALLHIVE_SEARCH_REPLICA_ID).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.IndexDir, "search.index-dir", "",
		"directory of this replica's search index (default: <data-dir>/search/index)")
	fs.StringVar(&c.ReplicaID, "search.replica-id", "",
		"name of this replica's event consumers (default: a random id kept in the index dir)")
}

// replicaIDRE keeps replica ids valid inside JetStream consumer names.
var replicaIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.ReplicaID != "" && !replicaIDRE.MatchString(c.ReplicaID) {
		return fmt.Errorf("search.replica-id: %q must be 1-64 characters of A-Z a-z 0-9 _ -", c.ReplicaID)
	}
	if strings.ContainsRune(c.IndexDir, 0) {
		return errors.New("search.index-dir: must not contain NUL")
	}
	return nil
}

// resolve validates c and fills in the defaults that depend on env.
func (c Config) resolve(env *svc.Env) (Config, error) {
	if err := c.Validate(); err != nil {
		return c, err
	}
	if c.IndexDir == "" {
		if env.DataDir == "" {
			return c, errors.New("search.index-dir: required when there is no data dir")
		}
		c.IndexDir = filepath.Join(env.DataDir, "search", "index")
	}
	return c, nil
}

// Service is the search service.
type Service struct {
	log       *slog.Logger
	env       *svc.Env
	cfg       Config
	replicaID string
	ix        *Index
	feed      *indexer
	performed *performedPublisher
	// fresh is set when the index was empty at start: Run then restarts
	// this replica's consumers from the first message.
	fresh     bool
	running   atomic.Bool
	closeOnce sync.Once
}

var _ svc.Service = (*Service)(nil)

// New opens (or creates) the replica's index and resolves its replica id.
// An index built with another schema version is discarded and rebuilt from
// the event streams. New needs no event bus; Run does.
func New(ctx context.Context, env *svc.Env, cfg Config) (*Service, error) {
	cfg, err := cfg.resolve(env)
	if err != nil {
		return nil, err
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("service", "search")
	ix, err := openIndex(cfg.IndexDir, log)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	id, err := replicaID(cfg)
	if err != nil {
		ix.Close()
		return nil, fmt.Errorf("search: %w", err)
	}
	n, err := ix.Count()
	if err != nil {
		ix.Close()
		return nil, fmt.Errorf("search: %w", err)
	}
	log.Info("search index open", "dir", cfg.IndexDir, "replica", id, "documents", n)
	return &Service{
		log:       log,
		env:       env,
		cfg:       cfg,
		replicaID: id,
		ix:        ix,
		feed:      &indexer{ix: ix, log: log},
		performed: newPerformedPublisher(env.Bus, log, performedQueueSize, env.Metrics),
		fresh:     n == 0,
	}, nil
}

// openIndex opens the index in dir. An index of another schema version is a
// cache of the event streams like any other, so it is deleted and recreated
// empty (keeping the replica id), and the consumers rebuild it.
func openIndex(dir string, log *slog.Logger) (*Index, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, fmt.Errorf("create index parent dir: %w", err)
	}
	ix, err := Open(dir)
	if !errors.Is(err, ErrSchemaVersion) {
		return ix, err
	}
	log.Warn("search index has another schema version; rebuilding it from the event streams", "dir", dir, "err", err)
	id, idErr := os.ReadFile(filepath.Join(dir, replicaIDFile))
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("remove outdated index: %w", err)
	}
	if ix, err = Open(dir); err != nil {
		return nil, err
	}
	if idErr == nil {
		if err := writeFileAtomic(filepath.Join(dir, replicaIDFile), id); err != nil {
			ix.Close()
			return nil, fmt.Errorf("keep replica id: %w", err)
		}
	}
	return ix, nil
}

// replicaIDFile holds the generated replica id inside the index dir: the id
// belongs to the index, because the durable consumers' positions are only
// meaningful for the index they fed. Deleting the index dir therefore makes
// a new replica that replays everything.
const replicaIDFile = "replica-id"

// replicaID returns cfg.ReplicaID, or the id kept in the index dir,
// creating one on first start.
func replicaID(cfg Config) (string, error) {
	if cfg.ReplicaID != "" {
		return cfg.ReplicaID, nil
	}
	path := filepath.Join(cfg.IndexDir, replicaIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		id := strings.TrimSpace(string(b))
		if !replicaIDRE.MatchString(id) {
			return "", fmt.Errorf("replica id file %s holds %q: fix or delete it", path, id)
		}
		return id, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read replica id: %w", err)
	}
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generate replica id: %w", err)
	}
	id := hex.EncodeToString(raw[:])
	if err := writeFileAtomic(path, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("save replica id: %w", err)
	}
	return id, nil
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, so a crash never leaves a half-written file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	err = errors.Join(err, tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// ReplicaID returns the id naming this replica's durable consumers.
func (s *Service) ReplicaID() string { return s.replicaID }

// consumerName is the durable consumer name of this replica (per domain,
// events.ConsumerName appends the domain).
func (s *Service) consumerName() string { return "search-" + s.replicaID }

// RPC returns nil: search has no internal API.
func (s *Service) RPC() map[string]http.Handler { return nil }

// Run consumes product and stock events into the index and publishes
// search.performed events until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if s.env.Bus == nil {
		return errors.New("search: run needs an event bus")
	}
	pubCtx, stopPub := context.WithCancel(ctx)
	defer stopPub()
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		s.performed.run(pubCtx)
	}()
	subs, err := s.startConsumers(ctx)
	if err != nil {
		stopPub()
		<-pubDone
		return fmt.Errorf("search: %w", err)
	}
	s.running.Store(true)
	<-ctx.Done()
	s.running.Store(false)
	for _, sub := range subs {
		sub.Stop()
	}
	stopPub()
	<-pubDone
	return nil
}

// startConsumers starts the product and stock consumers. On a fresh (empty)
// index it first deletes this replica's durable consumers, whose positions
// belong to an index that no longer exists, so they restart from the first
// message of the compacted streams.
func (s *Service) startConsumers(ctx context.Context) ([]*events.Subscription, error) {
	bus := s.env.Bus
	domains := []struct {
		name  string
		apply events.BatchHandler
	}{
		{"product", s.feed.applyProducts},
		{"stock", s.feed.applyStock},
	}
	if s.fresh {
		for _, d := range domains {
			err := bus.JS.DeleteConsumer(ctx, bus.StreamName(d.name), events.ConsumerName(s.consumerName(), d.name))
			if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
				return nil, fmt.Errorf("reset consumer of %s events: %w", d.name, err)
			}
		}
		s.log.Info("search index is empty; replaying product and stock events from the start")
		s.fresh = false
	}
	var subs []*events.Subscription
	for _, d := range domains {
		sub, err := bus.ConsumeBatches(ctx, events.ConsumerConfig{
			Name: s.consumerName(), Domain: d.name, Metrics: s.env.ConsumerMetrics, Log: s.log,
		}, consumeBatchSize, d.apply)
		if err != nil {
			for _, sub := range subs {
				sub.Stop()
			}
			return nil, err
		}
		subs = append(subs, sub)
	}
	return subs, nil
}

// Ready reports whether the index is open and the consumers are running.
func (s *Service) Ready(ctx context.Context) error {
	if !s.running.Load() {
		return errors.New("search: event consumers are not running")
	}
	if _, err := s.ix.Count(); err != nil {
		return fmt.Errorf("search: %w", err)
	}
	return nil
}

// Close closes the index. Call it after Run has returned.
func (s *Service) Close() error {
	var err error
	s.closeOnce.Do(func() { err = s.ix.Close() })
	return err
}

// performedQueueSize bounds the search.performed events waiting to be sent.
const performedQueueSize = 1024

// performedPublisher sends search.performed events from a background
// goroutine.
//
// These analytics events are best-effort by design. The search service has
// no database, hence no transactional outbox, and a search must never wait
// for the bus or fail because of it: events wait in a bounded buffer, and
// when it is full, the bus refuses one, or the process stops with events
// still queued, they are dropped and counted in
// mallhive_search_performed_dropped_total. Analytics reads them as a
// (normally complete) sample of demand, not as a ledger.
type performedPublisher struct {
	bus     *events.Bus
	log     *slog.Logger
	queue   chan events.Event
	dropped *prometheus.CounterVec
}

func newPerformedPublisher(bus *events.Bus, log *slog.Logger, size int, reg prometheus.Registerer) *performedPublisher {
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mallhive_search_performed_dropped_total",
		Help: "search.performed analytics events dropped (best-effort), by reason.",
	}, []string{"reason"})
	if reg != nil {
		if err := reg.Register(dropped); err != nil {
			var already prometheus.AlreadyRegisteredError
			if errors.As(err, &already) {
				if c, ok := already.ExistingCollector.(*prometheus.CounterVec); ok {
					dropped = c
				}
			}
		}
	}
	return &performedPublisher{bus: bus, log: log, queue: make(chan events.Event, size), dropped: dropped}
}

// enqueue never blocks: a full queue drops the event.
func (p *performedPublisher) enqueue(e events.Event) {
	select {
	case p.queue <- e:
	default:
		p.dropped.WithLabelValues("queue_full").Inc()
	}
}

// run publishes queued events until ctx ends, then sends what is left
// within a short grace period.
func (p *performedPublisher) run(ctx context.Context) {
	for {
		select {
		case e := <-p.queue:
			p.publish(context.WithoutCancel(ctx), e)
		case <-ctx.Done():
			grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			for {
				select {
				case e := <-p.queue:
					if grace.Err() != nil {
						p.dropped.WithLabelValues("shutdown").Inc()
						continue
					}
					p.publish(grace, e)
				default:
					return
				}
			}
		}
	}
}

func (p *performedPublisher) publish(ctx context.Context, e events.Event) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := p.bus.Publish(ctx, e); err != nil {
		p.dropped.WithLabelValues("publish_failed").Inc()
		p.log.Warn("search.performed event dropped", "id", e.ID, "err", err)
	}
}
