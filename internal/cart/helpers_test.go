package cart

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/mallhive/mallhive/internal/gen/mallhive/cart/v1/cartv1connect"
	catalogv1 "github.com/mallhive/mallhive/internal/gen/mallhive/catalog/v1"
	"github.com/mallhive/mallhive/internal/gen/mallhive/catalog/v1/catalogv1connect"
	commonv1 "github.com/mallhive/mallhive/internal/gen/mallhive/common/v1"
	eventsv1 "github.com/mallhive/mallhive/internal/gen/mallhive/events/v1"
	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/rpc"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/sqldb/sqldbtest"
	"github.com/mallhive/mallhive/internal/platform/svc"
)

// envRedis names the variable holding the test Redis URL.
const envRedis = "MALLHIVE_TEST_REDIS_URL"

var migrationSets = []sqldb.Migrations{events.Migrations, Migrations}

// fakeCatalog is a catalog service with fixed variants, served over real
// connect RPC.
type fakeCatalog struct {
	catalogv1connect.UnimplementedCatalogServiceHandler
	mu       sync.Mutex
	variants map[string]*catalogv1.VariantInfo
	calls    atomic.Int64
	down     atomic.Bool
}

func (f *fakeCatalog) put(sku, sellerID, status string, amount int64, currency string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.variants[sku] = &catalogv1.VariantInfo{
		Sku: sku, ProductId: "prod-" + sku, SellerId: sellerID, ProductTitle: "Title of " + sku,
		ProductStatus: status, Price: &commonv1.Money{Amount: amount, Currency: currency},
		Options: map[string]string{"size": "M"}, ImageUrl: "https://img.example/" + sku + ".jpg",
	}
}

func (f *fakeCatalog) GetVariants(_ context.Context, req *connect.Request[catalogv1.GetVariantsRequest]) (*connect.Response[catalogv1.GetVariantsResponse], error) {
	f.calls.Add(1)
	if f.down.Load() {
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("catalog down"))
	}
	if n := len(req.Msg.GetSkus()); n == 0 || n > 100 {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("skus: 1 to 100"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &catalogv1.GetVariantsResponse{}
	for _, sku := range req.Msg.GetSkus() {
		if v, ok := f.variants[sku]; ok {
			out.Variants = append(out.Variants, v)
		}
	}
	return connect.NewResponse(out), nil
}

// harness is a running cart service with a fake catalog, reached over
// HTTP (REST with test principals, and RPC).
type harness struct {
	t       testing.TB
	svc     *Service
	db      *sqldb.DB
	redis   *redis.Client
	catalog *fakeCatalog
	srv     *httptest.Server
	inv     cartv1connect.InventoryServiceClient
	carts   cartv1connect.CartServiceClient
}

// newHarness starts the service on db; carts go to Redis when rdb is set.
func newHarness(tb testing.TB, db *sqldb.DB, rdb *redis.Client, prefix string) *harness {
	tb.Helper()
	cat := &fakeCatalog{variants: map[string]*catalogv1.VariantInfo{}}
	path, h := catalogv1connect.NewCatalogServiceHandler(cat)
	catMux := http.NewServeMux()
	catMux.Handle(path, h)
	catSrv := httptest.NewServer(catMux)
	tb.Cleanup(catSrv.Close)

	env := &svc.Env{
		Log:        slog.New(slog.DiscardHandler),
		DB:         func(context.Context, string) (*sqldb.DB, error) { return db, nil },
		Redis:      rdb,
		ServiceURL: func(string) string { return catSrv.URL },
		RPCClient:  catSrv.Client(),

		RPCHandlerOptions: rpc.HandlerOptions(nil, nil, nil),
		RPCClientOptions:  rpc.ClientOptions(nil),
	}
	cfg := DefaultConfig()
	if prefix != "" {
		cfg.RedisPrefix = prefix
	}
	s, err := New(context.Background(), env, cfg)
	if err != nil {
		tb.Fatalf("new service: %v", err)
	}
	// The test owns db (sqldbtest drops it), so s.Close is not called.
	mux := http.NewServeMux()
	mux.Handle("/api/", testAuth(s.Handler()))
	for p, h := range s.RPC() {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return &harness{
		t: tb, svc: s, db: db, redis: rdb, catalog: cat, srv: srv,
		inv:   cartv1connect.NewInventoryServiceClient(srv.Client(), srv.URL),
		carts: cartv1connect.NewCartServiceClient(srv.Client(), srv.URL),
	}
}

// testAuth stands in for token verification: X-Test-User and X-Test-Roles
// become the request's principal.
func testAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get("X-Test-User"); id != "" {
			p := authn.Principal{UserID: id, Roles: strings.Split(r.Header.Get("X-Test-Roles"), ",")}
			r = r.WithContext(authn.WithPrincipal(r.Context(), p))
		}
		next.ServeHTTP(w, r)
	})
}

// openRedis connects to the test Redis with a fresh key prefix whose keys
// are deleted when the test ends; it skips the test without a Redis URL.
func openRedis(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	url := os.Getenv(envRedis)
	if url == "" {
		tb.Skip(envRedis + " not set")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatalf("parse %s: %v", envRedis, err)
	}
	rdb := redis.NewClient(opts)
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "test:cart:" + hex.EncodeToString(b[:]) + ":"
	tb.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		rdb.Close()
	})
	return rdb, prefix
}

// redisKeys counts the keys under prefix.
func redisKeys(tb testing.TB, rdb *redis.Client, prefix string) int {
	tb.Helper()
	ctx := context.Background()
	n := 0
	iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		n++
	}
	if err := iter.Err(); err != nil {
		tb.Fatal(err)
	}
	return n
}

// eachBackend runs fn against the service with its SQL cart store on
// SQLite and on PostgreSQL, and with the Redis cart store (inventory on
// PostgreSQL when available, as in the distributed shape, else SQLite).
func eachBackend(t *testing.T, fn func(t *testing.T, h *harness)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, newHarness(t, sqldbtest.Open(t, sqldb.SQLite, Name, migrationSets), nil, ""))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, newHarness(t, sqldbtest.Open(t, sqldb.Postgres, Name, migrationSets), nil, ""))
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		rdb, prefix := openRedis(t)
		dialect := sqldb.SQLite
		if os.Getenv(sqldbtest.EnvPostgres) != "" {
			dialect = sqldb.Postgres
		}
		fn(t, newHarness(t, sqldbtest.Open(t, dialect, Name, migrationSets), rdb, prefix))
	})
}

// eachDB runs fn on SQLite and PostgreSQL.
func eachDB(t *testing.T, fn func(t *testing.T, db *sqldb.DB)) {
	t.Helper()
	for _, d := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			fn(t, sqldbtest.Open(t, d, Name, migrationSets))
		})
	}
}

// user is a caller of the REST API.
type user struct {
	id    string
	roles string
	token string // guest cart token, sent as header
	// cookie sends the token as the cart cookie instead of the header.
	cookie bool
}

var (
	anon    = user{}
	sellerA = user{id: "seller-a", roles: "seller"}
	sellerB = user{id: "seller-b", roles: "seller"}
	buyer1  = user{id: "buyer-1", roles: "buyer"}
	buyer2  = user{id: "buyer-2", roles: "buyer"}
)

// response is a decoded HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.body, err)
	}
}

// problem decodes a problem document, failing unless it is one.
func (r response) problem(tb testing.TB) map[string]any {
	tb.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		tb.Fatalf("content type %q, want a problem document; body %s", ct, r.body)
	}
	var p map[string]any
	r.json(tb, &p)
	return p
}

func (r response) cookie(name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// do sends a REST request as u; body is JSON-encoded unless it is a string.
func (h *harness) do(u user, method, path string, body any) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if u.id != "" {
		req.Header.Set("X-Test-User", u.id)
		req.Header.Set("X-Test-Roles", u.roles)
	}
	if u.token != "" {
		if u.cookie {
			req.AddCookie(&http.Cookie{Name: CartCookie, Value: u.token})
		} else {
			req.Header.Set(CartTokenHeader, u.token)
		}
	}
	res, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: raw}
}

// want fails unless the response has the status.
func (r response) want(tb testing.TB, status int) response {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	return r
}

// stock gives sku to seller in the catalog (active, 10.00 EUR) and sets its
// stock.
func (h *harness) stock(seller user, sku string, onHand int64) {
	h.t.Helper()
	h.catalog.put(sku, seller.id, ProductActive, 1000, "EUR")
	if _, _, err := h.svc.inventory.Set(context.Background(), seller.id, sku, onHand, nil); err != nil {
		h.t.Fatalf("set stock %s: %v", sku, err)
	}
}

func (h *harness) level(sku string) Level {
	h.t.Helper()
	l, found, err := h.svc.inventory.store.level(context.Background(), h.db, sku, false)
	if err != nil || !found {
		h.t.Fatalf("level %s: found %v, err %v", sku, found, err)
	}
	return l
}

// count runs a COUNT query.
func count(tb testing.TB, db *sqldb.DB, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

// checkLedger fails unless the ledger of sku sums to its stock row.
func checkLedger(tb testing.TB, db *sqldb.DB, sku string) {
	tb.Helper()
	var onHand, reserved, sumOnHand, sumReserved int64
	if err := db.QueryRow(`SELECT on_hand, reserved FROM stock WHERE sku = $1`, sku).Scan(&onHand, &reserved); err != nil {
		tb.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COALESCE(SUM(delta_on_hand), 0), COALESCE(SUM(delta_reserved), 0) FROM stock_ledger WHERE sku = $1`, sku).
		Scan(&sumOnHand, &sumReserved); err != nil {
		tb.Fatal(err)
	}
	if sumOnHand != onHand || sumReserved != reserved {
		tb.Fatalf("ledger of %s sums to on_hand %d reserved %d; stock row says %d and %d", sku, sumOnHand, sumReserved, onHand, reserved)
	}
}

// outboxTypes lists the types of the outbox events about sku, in order.
func outboxTypes(tb testing.TB, db *sqldb.DB, sku string) []string {
	tb.Helper()
	rows, err := db.Query(`SELECT type FROM outbox WHERE subject = $1 ORDER BY id`, sku)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			tb.Fatal(err)
		}
		out = append(out, typ)
	}
	return out
}

// outboxStockEvent decodes a stock event's outbox payload as the relay
// publishes it: protobuf, or protojson when a SQL statement wrote it.
func outboxStockEvent(tb testing.TB, headers string, payload []byte) *eventsv1.StockLevelEvent {
	tb.Helper()
	var hdr map[string]string
	if err := json.Unmarshal([]byte(headers), &hdr); err != nil {
		tb.Fatal(err)
	}
	ev := &eventsv1.StockLevelEvent{}
	unmarshal := proto.Unmarshal
	if hdr[events.JSONPayloadHeader] == string(proto.MessageName(ev)) {
		unmarshal = protojson.Unmarshal
	}
	if err := unmarshal(payload, ev); err != nil {
		tb.Fatalf("stock event payload %q: %v", payload, err)
	}
	return ev
}

// eventually polls cond until it holds or 10 s pass.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// connectCodeOf returns the connect code of an RPC error (0 for nil).
func connectCodeOf(err error) connect.Code {
	if err == nil {
		return 0
	}
	return connect.CodeOf(err)
}
