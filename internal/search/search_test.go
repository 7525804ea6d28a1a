package search

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/svc"
)

// newTestEnv is a real *svc.Env for the search service; bus may be nil for
// tests that never Run.
func newTestEnv(tb testing.TB, bus *events.Bus) *svc.Env {
	tb.Helper()
	return &svc.Env{
		Log:             slog.New(slog.DiscardHandler),
		DataDir:         tb.TempDir(),
		Bus:             bus,
		ConsumerMetrics: events.NewConsumerMetrics(nil),
		RelayMetrics:    events.NewRelayMetrics(nil),
	}
}

// testService is a search service with a handler that takes the principal
// from test headers (the real process verifies tokens).
type testService struct {
	*Service
	h    http.Handler
	stop func() // stops Run and closes the service; safe to call twice
}

// newTestService builds a service without running it.
func newTestService(tb testing.TB, env *svc.Env, cfg Config) *testService {
	tb.Helper()
	s, err := New(context.Background(), env, cfg)
	if err != nil {
		tb.Fatalf("new: %v", err)
	}
	ts := &testService{Service: s, h: withTestPrincipal(s.Handler()), stop: func() { s.Close() }}
	tb.Cleanup(func() { ts.stop() })
	return ts
}

// startTestService builds a service, runs it until cleanup, and waits until
// it is ready.
func startTestService(tb testing.TB, env *svc.Env, cfg Config) *testService {
	tb.Helper()
	var ts *testService
	// Shared external servers outlive the test: leave no consumers behind
	// (registered first, so it runs after the service has stopped).
	tb.Cleanup(func() {
		if ts == nil {
			return
		}
		for _, domain := range []string{"product", "stock"} {
			_ = env.Bus.JS.DeleteConsumer(context.Background(), env.Bus.StreamName(domain), events.ConsumerName(ts.consumerName(), domain))
		}
	})
	ts = newTestService(tb, env, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.Run(ctx) }()
	stopped := false
	ts.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("run: %v", err)
		}
		if err := ts.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	}
	waitFor(tb, 10*time.Second, "service ready", func() bool { return ts.Ready(context.Background()) == nil })
	return ts
}

func withTestPrincipal(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get("X-Test-User"); id != "" {
			r = r.WithContext(authn.WithPrincipal(r.Context(), authn.Principal{UserID: id, Roles: []string{authn.RoleBuyer}}))
		}
		h.ServeHTTP(w, r)
	})
}

type testResponse struct {
	status int
	header http.Header
	body   []byte
}

// get sends GET path?rawQuery through the handler, as user when not empty.
func (ts *testService) get(tb testing.TB, target, user string) testResponse {
	tb.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	rec := httptest.NewRecorder()
	ts.h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return testResponse{status: rec.Code, header: rec.Header(), body: body}
}

// searchOK runs a search that must succeed.
func (ts *testService) searchOK(tb testing.TB, rawQuery string) SearchResponse {
	tb.Helper()
	res := ts.get(tb, "/api/v1/search?"+rawQuery, "")
	if res.status != http.StatusOK {
		tb.Fatalf("search %q: status %d: %s", rawQuery, res.status, res.body)
	}
	var out SearchResponse
	if err := json.Unmarshal(res.body, &out); err != nil {
		tb.Fatalf("search %q: %v", rawQuery, err)
	}
	return out
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func randomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func TestConfig(t *testing.T) {
	t.Parallel()
	t.Run("validate", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name    string
			cfg     Config
			wantErr bool
		}{
			{name: "defaults", cfg: Config{}},
			{name: "explicit", cfg: Config{IndexDir: "/var/lib/mallhive/search", ReplicaID: "search-0_a"}},
			{name: "replica id with a dot", cfg: Config{ReplicaID: "a.b"}, wantErr: true},
			{name: "replica id with a wildcard", cfg: Config{ReplicaID: "a*"}, wantErr: true},
			{name: "replica id too long", cfg: Config{ReplicaID: strings.Repeat("a", 65)}, wantErr: true},
			{name: "index dir with NUL", cfg: Config{IndexDir: "a\x00b"}, wantErr: true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				if err := tt.cfg.Validate(); (err != nil) != tt.wantErr {
					t.Errorf("Validate() = %v, want error %v", err, tt.wantErr)
				}
			})
		}
	})

	t.Run("flags", func(t *testing.T) {
		t.Parallel()
		var c Config
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		c.RegisterFlags(fs)
		if err := fs.Parse([]string{"-search.index-dir=/idx", "-search.replica-id=r1"}); err != nil {
			t.Fatal(err)
		}
		if c != (Config{IndexDir: "/idx", ReplicaID: "r1"}) {
			t.Errorf("parsed %+v", c)
		}
	})

	t.Run("index dir defaults under the data dir", func(t *testing.T) {
		t.Parallel()
		c, err := Config{}.resolve(&svc.Env{DataDir: "/data"})
		if err != nil || c.IndexDir != filepath.Join("/data", "search", "index") {
			t.Errorf("resolve: %+v, %v", c, err)
		}
		if _, err := (Config{}).resolve(&svc.Env{}); err == nil {
			t.Error("resolve without a data dir or index dir: want an error")
		}
	})
}

func TestReplicaID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("generated once and kept in the index dir", func(t *testing.T) {
		t.Parallel()
		env := newTestEnv(t, nil)
		s := newTestService(t, env, Config{})
		id := s.ReplicaID()
		if !replicaIDRE.MatchString(id) {
			t.Fatalf("replica id %q", id)
		}
		s.stop()
		again := newTestService(t, env, Config{})
		if again.ReplicaID() != id {
			t.Errorf("reopened: replica id %q, want %q", again.ReplicaID(), id)
		}
		other := newTestService(t, newTestEnv(t, nil), Config{})
		if other.ReplicaID() == id {
			t.Errorf("another index dir got the same replica id %q", id)
		}
	})

	t.Run("explicit id wins", func(t *testing.T) {
		t.Parallel()
		s := newTestService(t, newTestEnv(t, nil), Config{ReplicaID: "pod-7"})
		if s.ReplicaID() != "pod-7" || s.consumerName() != "search-pod-7" {
			t.Errorf("replica %q, consumer %q", s.ReplicaID(), s.consumerName())
		}
	})

	t.Run("a corrupt id file is an error", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "index")
		ix, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		ix.Close()
		if err := os.WriteFile(filepath.Join(dir, replicaIDFile), []byte("bad id!"), 0o600); err != nil {
			t.Fatal(err)
		}
		if s, err := New(ctx, newTestEnv(t, nil), Config{IndexDir: dir}); err == nil {
			s.Close()
			t.Error("New succeeded with a corrupt replica id file")
		}
	})

	t.Run("an index of another schema is rebuilt, keeping the id", func(t *testing.T) {
		t.Parallel()
		env := newTestEnv(t, nil)
		s := newTestService(t, env, Config{})
		id := s.ReplicaID()
		if err := s.ix.Upsert(ctx, Document{ID: "p1", Status: StatusActive, Title: "Lamp"}); err != nil {
			t.Fatal(err)
		}
		if err := s.ix.bleve.SetInternal(schemaKey, []byte("0")); err != nil {
			t.Fatal(err)
		}
		s.stop()
		again := newTestService(t, env, Config{})
		if n, _ := again.ix.Count(); n != 0 || !again.fresh {
			t.Errorf("rebuilt index: %d documents, fresh %v; want an empty, fresh index", n, again.fresh)
		}
		if again.ReplicaID() != id {
			t.Errorf("replica id %q, want %q", again.ReplicaID(), id)
		}
	})
}

func TestReadyNeedsRunningConsumers(t *testing.T) {
	t.Parallel()
	s := newTestService(t, newTestEnv(t, nil), Config{})
	if err := s.Ready(context.Background()); err == nil {
		t.Error("ready before Run")
	}
	if err := s.Run(context.Background()); err == nil {
		t.Error("Run without a bus succeeded")
	}
	if s.RPC() != nil {
		t.Error("RPC handlers, want none")
	}
}

func counterValue(tb testing.TB, c *prometheus.CounterVec, label string) float64 {
	tb.Helper()
	var m dto.Metric
	if err := c.WithLabelValues(label).Write(&m); err != nil {
		tb.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestPerformedPublisherDropsWhenFull(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	p := newPerformedPublisher(nil, slog.New(slog.DiscardHandler), 2, reg)
	for range 5 {
		p.enqueue(events.Event{ID: "x"})
	}
	if got := counterValue(t, p.dropped, "queue_full"); got != 3 {
		t.Errorf("dropped %v, want 3", got)
	}
	// A second publisher on the same registry (a second replica in one
	// process, or a test) shares the counter instead of panicking.
	q := newPerformedPublisher(nil, slog.New(slog.DiscardHandler), 0, reg)
	q.enqueue(events.Event{ID: "y"})
	if got := counterValue(t, p.dropped, "queue_full"); got != 4 {
		t.Errorf("dropped %v after the second publisher, want 4", got)
	}
}
