package search

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/svc"
)

// replayBatchSize is how many messages Reindex reads and indexes at a time.
const replayBatchSize = 500

// Reindex rebuilds the search index of cfg (its IndexDir, resolved as New
// does) from the product and stock streams, then swaps it into place.
//
// It builds a fresh index in a temporary directory beside IndexDir, reading
// each stream with an ordered (ephemeral) consumer from its first message up
// to the last sequence the stream had when Reindex started: products first,
// then stock. A progress bar of messages replayed out of the total is drawn
// on progress (nil: no output). The finished index is then renamed into
// place (the old one is moved aside first and deleted afterwards), keeping
// the replica id of the old one, so the replica's durable consumers resume
// where they stopped and apply whatever was published since.
//
// The search service must not be running on IndexDir meanwhile: in the
// embedded shape, `mallhive search reindex` runs with the server stopped.
// Reindex refuses to start when another process holds the index open. A
// live replica needs no reindex: delete its index dir and restart it, and it
// rebuilds by itself from the same streams.
func Reindex(ctx context.Context, env *svc.Env, cfg Config, progress io.Writer) error {
	cfg, err := cfg.resolve(env)
	if err != nil {
		return err
	}
	if env.Bus == nil {
		return errors.New("reindex: needs an event bus")
	}
	if progress == nil {
		progress = io.Discard
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("service", "search", "op", "reindex")
	if err := ensureNotInUse(cfg.IndexDir); err != nil {
		return err
	}

	type source struct {
		domain string
		last   uint64
		apply  events.BatchHandler
	}
	var total uint64
	sources := []*source{{domain: "product"}, {domain: "stock"}}
	for _, src := range sources {
		if err := env.Bus.EnsureStream(ctx, src.domain); err != nil {
			return fmt.Errorf("reindex: %w", err)
		}
		st, err := env.Bus.JS.Stream(ctx, env.Bus.StreamName(src.domain))
		if err != nil {
			return fmt.Errorf("reindex: stream %s: %w", src.domain, err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			return fmt.Errorf("reindex: stream %s: %w", src.domain, err)
		}
		src.last = info.State.LastSeq
		total += info.State.Msgs
	}

	if err := os.MkdirAll(filepath.Dir(cfg.IndexDir), 0o700); err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(cfg.IndexDir), filepath.Base(cfg.IndexDir)+".reindex-*")
	if err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	swapped := false
	defer func() {
		if !swapped {
			os.RemoveAll(tmp)
		}
	}()
	ix, err := Open(tmp)
	if err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	defer func() {
		if ix != nil {
			ix.Close()
		}
	}()
	feed := &indexer{ix: ix, log: log}
	sources[0].apply, sources[1].apply = feed.applyProducts, feed.applyStock

	bar := progressbar.NewOptions64(int64(max(total, 1)),
		progressbar.OptionSetWriter(progress),
		progressbar.OptionSetDescription("reindex: replaying events"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(progress) }),
	)
	for _, src := range sources {
		err := replay(ctx, env.Bus, src.domain, src.last, src.apply, func(n int) { _ = bar.Add(n) })
		if err != nil {
			return fmt.Errorf("reindex: %w", err)
		}
	}
	_ = bar.Finish()

	n, err := ix.Count()
	if err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	err = ix.Close()
	ix = nil
	if err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	// Keep the replica's identity: its consumers' positions are behind (or
	// at) what the new index holds, so resuming them only replays events
	// the index already reflects, which is harmless.
	if id, err := os.ReadFile(filepath.Join(cfg.IndexDir, replicaIDFile)); err == nil {
		if err := writeFileAtomic(filepath.Join(tmp, replicaIDFile), id); err != nil {
			return fmt.Errorf("reindex: keep replica id: %w", err)
		}
	}
	if err := swapDir(tmp, cfg.IndexDir, log); err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	swapped = true
	fmt.Fprintf(progress, "reindex: %d documents in %s\n", n, cfg.IndexDir)
	log.Info("search index rebuilt", "dir", cfg.IndexDir, "documents", n)
	return nil
}

// ensureNotInUse fails when a process has the index in dir open: Bleve
// holds an exclusive lock on it, so a read-only open times out. A missing
// or unreadable index is fine: replacing it is the point of reindexing.
func ensureNotInUse(dir string) error {
	b, err := bleve.OpenUsing(dir, map[string]any{"read_only": true, "bolt_timeout": "1s"})
	switch {
	case err == nil:
		return b.Close()
	case errors.Is(err, bolterrors.ErrTimeout):
		return fmt.Errorf("reindex: the search index %s is in use: stop the search service first", dir)
	default:
		return nil
	}
}

// replay reads a domain's stream from the first message up to sequence
// last, handing events to apply in batches and counts to progress.
func replay(ctx context.Context, bus *events.Bus, domain string, last uint64, apply events.BatchHandler, progress func(int)) error {
	if last == 0 {
		return nil
	}
	cons, err := bus.JS.OrderedConsumer(ctx, bus.StreamName(domain), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.Filter(domain)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("replay %s: %w", domain, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(replayBatchSize))
	if err != nil {
		return fmt.Errorf("replay %s: %w", domain, err)
	}
	defer it.Stop()

	var evs []events.Event
	read := 0
	flush := func() error {
		if len(evs) > 0 {
			if err := apply(ctx, evs); err != nil {
				return fmt.Errorf("replay %s: %w", domain, err)
			}
		}
		progress(read)
		evs, read = evs[:0], 0
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("replay %s: %w", domain, err)
		}
		msg, err := it.Next(jetstream.NextMaxWait(2 * time.Second))
		if err != nil {
			if !errors.Is(err, nats.ErrTimeout) {
				return fmt.Errorf("replay %s: %w", domain, err)
			}
			// Nothing came within the wait: the messages up to last may
			// have been removed (compacted or purged) since Reindex began.
			if err := flush(); err != nil {
				return err
			}
			info, err := cons.Info(ctx)
			if err != nil {
				return fmt.Errorf("replay %s: %w", domain, err)
			}
			if info.NumPending == 0 {
				return nil
			}
			continue
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("replay %s: %w", domain, err)
		}
		if md.Sequence.Stream > last {
			return flush() // newer than the start: the service's consumers take it from here
		}
		read++
		if e, err := events.FromMsg(msg); err == nil {
			evs = append(evs, e)
		}
		end := md.Sequence.Stream == last || md.NumPending == 0
		if end || len(evs) >= replayBatchSize {
			if err := flush(); err != nil {
				return err
			}
		}
		if end {
			return nil
		}
	}
}

// swapDir puts the directory tmp in dst's place with renames: dst (if any)
// is moved aside, tmp renamed to dst, and the old one deleted. Between the
// two renames dst does not exist; a replica started just then would build
// a new index by itself, which is why Reindex wants the service stopped.
func swapDir(tmp, dst string, log *slog.Logger) error {
	old := ""
	switch _, err := os.Stat(dst); {
	case err == nil:
		old = tmp + ".old"
		if err := os.Rename(dst, old); err != nil {
			return fmt.Errorf("move old index aside: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		if old != "" {
			_ = os.Rename(old, dst)
		}
		return fmt.Errorf("move new index into place: %w", err)
	}
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		_ = d.Sync() // make the renames durable
		d.Close()
	}
	if old != "" {
		if err := os.RemoveAll(old); err != nil {
			log.Warn("could not delete the old search index", "dir", old, "err", err)
		}
	}
	return nil
}
