package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/money"
	"github.com/mallhive/mallhive/internal/platform/rpc"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/sqldb/sqldbtest"
	"github.com/mallhive/mallhive/internal/platform/svc"
)

// who is the caller of a test request; the zero value is anonymous.
type who struct {
	id    string
	roles []string
}

var (
	anon    = who{}
	sellerA = who{"seller-a", []string{authn.RoleSeller}}
	sellerB = who{"seller-b", []string{authn.RoleSeller}}
	buyer   = who{"buyer-1", []string{authn.RoleBuyer}}
	admin   = who{"admin-1", []string{authn.RoleAdmin}}
)

// testService is a catalog service on a fresh database with a handler that
// takes the principal from test headers (the real process verifies tokens).
type testService struct {
	*Service
	t *testing.T
	h http.Handler
}

func newTestService(t *testing.T, dialect sqldb.Dialect, bus *events.Bus) *testService {
	t.Helper()
	// A long-lived product cache: every test then also checks that no write
	// leaves a stale product page behind.
	return newTestServiceConfig(t, dialect, bus, Config{ProductCacheTTL: time.Minute})
}

func newTestServiceConfig(t *testing.T, dialect sqldb.Dialect, bus *events.Bus, cfg Config) *testService {
	t.Helper()
	ctx := context.Background()
	env := &svc.Env{
		Log:      slog.New(slog.DiscardHandler),
		DataDir:  t.TempDir(),
		Embedded: true,
		Bus:      bus,
		DB: func(ctx context.Context, service string) (*sqldb.DB, error) {
			return sqldbtest.Open(t, dialect, service, nil), nil
		},
		RPCHandlerOptions: rpc.HandlerOptions(nil, nil, nil),
	}
	s, err := New(ctx, env, cfg)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	// sqldbtest closes (and drops) the database; only the bucket is ours.
	t.Cleanup(func() { _ = s.bucket.Close() })
	inner := s.Handler()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get("X-Test-User"); id != "" {
			roles := strings.Split(r.Header.Get("X-Test-Roles"), ",")
			r = r.WithContext(authn.WithPrincipal(r.Context(), authn.Principal{UserID: id, Roles: roles}))
		}
		inner.ServeHTTP(w, r)
	})
	return &testService{Service: s, t: t, h: h}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T, dst any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, dst); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// problem decodes a problem document, failing unless it is one.
func (r response) problem(t *testing.T) map[string]any {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want a problem document; body %s", ct, r.Body)
	}
	var p map[string]any
	r.json(t, &p)
	return p
}

// do sends a request; body may be nil, a string (sent as is) or a value
// (sent as JSON).
func (ts *testService) do(method, path string, as who, body any) response {
	ts.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req := httptest.NewRequest(method, path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return ts.send(req, as)
}

func (ts *testService) send(req *http.Request, as who) response {
	ts.t.Helper()
	if as.id != "" {
		req.Header.Set("X-Test-User", as.id)
		req.Header.Set("X-Test-Roles", strings.Join(as.roles, ","))
	}
	rec := httptest.NewRecorder()
	ts.h.ServeHTTP(rec, req)
	return response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

// must fails the test unless the response has the wanted status.
func (r response) must(t *testing.T, status int) response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	return r
}

// category creates a category directly in the store.
func (ts *testService) category(slug, parentID string, position int) Category {
	ts.t.Helper()
	c := Category{Name: strings.ToUpper(slug[:1]) + slug[1:], Slug: slug, ParentID: parentID, Position: position}
	if err := ts.store.CreateCategory(context.Background(), &c); err != nil {
		ts.t.Fatalf("create category %s: %v", slug, err)
	}
	return c
}

// newProduct is a valid product body for the HTTP API.
func newProduct(title, categoryID string, prices ...int64) map[string]any {
	if len(prices) == 0 {
		prices = []int64{8900}
	}
	var variants []map[string]any
	for i, p := range prices {
		variants = append(variants, map[string]any{
			"sku":     fmt.Sprintf("%s-%d", skuPrefix(title), i),
			"options": map[string]string{"size": fmt.Sprint("S", i)},
			"price":   map[string]any{"amount": p, "currency": "EUR"},
		})
	}
	return map[string]any{
		"title": title, "description": "Warm and soft.", "brand": "Fjellgarn", "category_id": categoryID,
		"status": "active", "attributes": map[string]string{"material": "merino"}, "variants": variants,
	}
}

func skuPrefix(title string) string {
	return strings.ToUpper(strings.ReplaceAll(Slugify(title), "-", "."))
}

// product creates a product in the store directly, for fixtures.
func (ts *testService) product(seller who, title, categoryID string, status Status, prices ...int64) Product {
	ts.t.Helper()
	if len(prices) == 0 {
		prices = []int64{1000}
	}
	p := Product{SellerID: seller.id, Title: title, Brand: "Acme", CategoryID: categoryID, Status: status}
	for i, amount := range prices {
		p.Variants = append(p.Variants, Variant{SKU: fmt.Sprintf("%s-%d", skuPrefix(title), i), Price: money.Money{Amount: amount, Currency: "EUR"}})
	}
	if err := ts.store.CreateProduct(context.Background(), &p); err != nil {
		ts.t.Fatalf("create product %s: %v", title, err)
	}
	return p
}

// outbox returns the types of the events waiting in the outbox, oldest first.
func outbox(t testing.TB, db *sqldb.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT type FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	types := []string{}
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			t.Fatal(err)
		}
		types = append(types, typ)
	}
	return types
}

func count(t testing.TB, db *sqldb.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// eventually polls cond until it holds or 10 seconds pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
