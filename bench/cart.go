package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/mallhive/mallhive/internal/cart"
	cartv1 "github.com/mallhive/mallhive/internal/gen/mallhive/cart/v1"
	"github.com/mallhive/mallhive/internal/gen/mallhive/cart/v1/cartv1connect"
	"github.com/mallhive/mallhive/internal/platform/httpx"
	"github.com/mallhive/mallhive/internal/platform/rpc"
)

// Where the cart scenario finds Redis, PostgreSQL and NATS: the test
// suites' variables, else the local services.
const (
	envRedisURL        = "MALLHIVE_TEST_REDIS_URL"
	envPostgresURL     = "MALLHIVE_TEST_POSTGRES_URL"
	envNATSURL         = "MALLHIVE_TEST_NATS_URL"
	defaultRedisURL    = "redis://127.0.0.1:6379/0"
	defaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	defaultNATSURL     = "nats://127.0.0.1:4222"
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// runCart: add-to-cart over HTTP on Redis against redis-benchmark on the same
// server; reservations on PostgreSQL (hot SKU and uniform SKUs) against
// pgbench running the same conditional UPDATE.
func runCart(ctx context.Context, o options) ([]result, error) {
	rs, err := benchAddToCart(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("add to cart: %w", err)
	}
	res, err := benchReservations(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("reservations: %w", err)
	}
	return append(rs, res...), nil
}

// ---- add to cart on Redis ----

// Each client keeps a guest cart for cartAddsPerCart adds of random SKUs,
// then starts a new one: the first add of a cart issues its token.
const cartAddsPerCart = 20

func benchAddToCart(ctx context.Context, o options) ([]result, error) {
	redisURL := envOr(envRedisURL, defaultRedisURL)
	ropts, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envRedisURL, err)
	}
	rdb := redis.NewClient(ropts)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("redis %s: %w", ropts.Addr, err)
	}
	prefix := "bench:" + randomHex(6) + ":"
	defer func() {
		n, err := deleteKeys(context.WithoutCancel(ctx), rdb, prefix)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: delete Redis keys %s*: %v\n", prefix, err)
		}
		fmt.Fprintf(o.out, "deleted %d Redis keys %s*\n", n, prefix)
	}()

	dir, err := os.MkdirTemp("", "mallhive-bench-cart-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sh, err := openShop(ctx, o, dir, "", "--redis-url="+redisURL, "--cart.redis-prefix="+prefix)
	if err != nil {
		return nil, err
	}
	defer sh.stop()
	var skus []string
	for p := range 5 {
		cp, err := sh.createProduct(productSpec{title: fmt.Sprintf("Wool beanie %d", p), brand: "Fjellgarn",
			skuPrefix: fmt.Sprintf("BN%d", p), variants: 10})
		if err != nil {
			return nil, err
		}
		for _, v := range cp.Variants {
			skus = append(skus, v.SKU)
		}
	}
	if err := parallel(o.concurrency, skus, func(sku string) error { return sh.setStock(sku, 1000) }); err != nil {
		return nil, err
	}

	type slot struct {
		token string
		adds  int
	}
	slots := make(chan *slot, o.concurrency)
	for range o.concurrency {
		slots <- &slot{}
	}
	add := func() error {
		s := <-slots
		defer func() { slots <- s }()
		if s.adds == cartAddsPerCart {
			s.token, s.adds = "", 0
		}
		tok, err := addToCart(sh.cl, sh.base, s.token, skus[mrand.IntN(len(skus))])
		if err != nil {
			return err
		}
		s.token = tok
		s.adds++
		return nil
	}
	if _, _, err := load(ctx, o.concurrency, o.duration/4, add); err != nil { // warm up
		return nil, err
	}
	rate, lat, err := load(ctx, o.concurrency, o.duration, add)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.out, "add to cart (guest carts, %d adds per cart, %d SKUs, SQLite catalog and stock, Redis carts): p50 %s p99 %s\n",
		cartAddsPerCart, len(skus), percentile(lat, 50), percentile(lat, 99))
	fmt.Fprintln(o.out, "  each add: HGETALL (is the token's cart live?), catalog GetProducts RPC + stock read, WATCH HGETALL MULTI DEL HSET PEXPIRE EXEC,")
	fmt.Fprintln(o.out, "  then the answer prices the whole cart (another GetProducts RPC + stock read)")

	// redis-benchmark on the same server and clients: one HSET of a cart
	// line per request, and one EVAL doing an add's Redis work (read the
	// hash, rewrite it, renew the TTL) in a single round trip.
	line := `{"q":1,"a":8900,"c":"EUR","t":1764000000000000}`
	key := prefix + "rb:cart:g:__rand_int__"
	hset, err := redisBenchmark(ctx, ropts, o, "HSET", key, "BN0-1", line)
	if err != nil {
		return nil, err
	}
	script := `redis.call('HGETALL', KEYS[1]) redis.call('DEL', KEYS[1]) ` +
		`redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) redis.call('PEXPIRE', KEYS[1], ARGV[3]) return 1`
	eval, err := redisBenchmark(ctx, ropts, o, "EVAL", script, "1", key, "BN0-1", line, "2592000000")
	if err != nil {
		return nil, err
	}
	return []result{
		{name: "add to cart over HTTP (Redis)", value: rate, unit: "req/s", baseline: hset, baseName: "redis-benchmark HSET"},
		{name: "add to cart over HTTP (Redis)", value: rate, unit: "req/s", baseline: eval, baseName: "redis-benchmark EVAL of one add's commands"},
	}, nil
}

// addToCart adds one unit of sku to the guest cart of token (a new cart
// when empty) and returns the cart's token.
func addToCart(cl *http.Client, base, token, sku string) (string, error) {
	b, _ := json.Marshal(map[string]any{"sku": sku, "quantity": 1})
	req, err := http.NewRequest("POST", base+"/api/v1/cart/items", bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Cart-Token", token)
	}
	resp, err := cl.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST /api/v1/cart/items: %d %s", resp.StatusCode, body)
	}
	if t := resp.Header.Get("X-Cart-Token"); t != "" {
		token = t
	}
	if token == "" {
		return "", errors.New("POST /api/v1/cart/items: no X-Cart-Token for a new guest cart")
	}
	return token, nil
}

// redisBenchmark runs one custom command with redis-benchmark (keys vary
// through __rand_int__ over 100,000 values) for about o.duration and returns
// requests per second.
func redisBenchmark(ctx context.Context, ropts *redis.Options, o options, command ...string) (float64, error) {
	host, port, err := net.SplitHostPort(ropts.Addr)
	if err != nil {
		return 0, err
	}
	runN := func(n int) (float64, error) {
		args := []string{"-h", host, "-p", port, "--dbnum", strconv.Itoa(ropts.DB), "-c", strconv.Itoa(o.concurrency),
			"-n", strconv.Itoa(n), "-r", "100000", "--csv"}
		if ropts.Username != "" {
			args = append(args, "--user", ropts.Username)
		}
		cmd := exec.CommandContext(ctx, "redis-benchmark", append(args, command...)...)
		if ropts.Password != "" {
			cmd.Env = append(os.Environ(), "REDISCLI_AUTH="+ropts.Password)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return 0, fmt.Errorf("redis-benchmark %s: %w: %s", command[0], err, stderr.Bytes())
		}
		// The last line is "<command>","<rps>", then six latencies; the
		// command is not CSV-escaped, so read the fields from the end.
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		fields := strings.Split(strings.Trim(lines[len(lines)-1], `"`), `","`)
		if len(lines) < 2 || len(fields) < 8 {
			return 0, fmt.Errorf("redis-benchmark %s: unexpected output %q", command[0], out)
		}
		return strconv.ParseFloat(fields[len(fields)-7], 64)
	}
	// A short run sizes the real one to last about o.duration.
	rate, err := runN(10_000)
	if err != nil {
		return 0, err
	}
	return runN(max(10_000, int(rate*o.duration.Seconds())))
}

// deleteKeys deletes every key starting with prefix.
func deleteKeys(ctx context.Context, rdb *redis.Client, prefix string) (int, error) {
	n := 0
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := rdb.Unlink(ctx, batch...).Err()
		n += len(batch)
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 1000 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, err
	}
	return n, flush()
}

// ---- reservations on PostgreSQL ----

// stockDDL is the cart service's stock table (migrations/00001_cart.sql),
// for pgbench's scratch database.
const stockDDL = `
CREATE TABLE stock (
    sku           TEXT PRIMARY KEY,
    seller_id     TEXT NOT NULL,
    product_id    TEXT NOT NULL,
    on_hand       BIGINT NOT NULL,
    reserved      BIGINT NOT NULL DEFAULT 0,
    low_threshold BIGINT NOT NULL DEFAULT 0,
    updated_at    TIMESTAMP NOT NULL,
    CONSTRAINT stock_no_oversell CHECK (reserved >= 0 AND on_hand >= reserved),
    CONSTRAINT stock_low_threshold CHECK (low_threshold >= 0)
);
CREATE INDEX stock_by_seller ON stock (seller_id, sku);`

// The SKUs: one hot SKU, and 10 products of 100 variants for uniform load.
const (
	hotSKU          = "HOT-1"
	uniformProducts = 10
	uniformVariants = 100
	benchOnHand     = 1_000_000_000 // cart.MaxOnHand: no run empties it
)

func uniformSKU(p, v int) string { return fmt.Sprintf("U%02d-%d", p, v) }

func benchReservations(ctx context.Context, o options) ([]result, error) {
	base := envOr(envPostgresURL, defaultPostgresURL)
	suffix := randomHex(5)
	appURL, dropApp, err := createDatabase(ctx, base, "mallhive_bench_"+suffix)
	if err != nil {
		return nil, err
	}
	defer dropApp()
	scratchURL, dropScratch, err := createDatabase(ctx, base, "mallhive_pgbench_"+suffix)
	if err != nil {
		return nil, err
	}
	defer dropScratch()

	dir, err := os.MkdirTemp("", "mallhive-bench-reserve-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// The distributed shape, as PostgreSQL is run: an external JetStream
	// (its own namespace, so the run's streams are its own).
	natsURL, namespace := envOr(envNATSURL, defaultNATSURL), "bench"+suffix
	sh, err := openShop(ctx, o, dir, appURL, "--nats-url="+natsURL, "--nats-namespace="+namespace)
	if err != nil {
		return nil, err
	}
	defer deleteStreams(natsURL, namespace)
	defer sh.stop()
	skus := []string{hotSKU}
	if _, err := sh.createProduct(productSpec{title: "Limited edition sweater", brand: "Fjellgarn", skuPrefix: "HOT", variants: 1}); err != nil {
		return nil, err
	}
	for p := range uniformProducts {
		if _, err := sh.createProduct(productSpec{title: fmt.Sprintf("Everyday sock %d", p), brand: "Fjellgarn",
			skuPrefix: fmt.Sprintf("U%02d", p), variants: uniformVariants}); err != nil {
			return nil, err
		}
		for v := range uniformVariants {
			skus = append(skus, uniformSKU(p, v+1))
		}
	}
	if err := parallel(o.concurrency, skus, func(sku string) error { return sh.setStock(sku, benchOnHand) }); err != nil {
		return nil, err
	}
	if err := prepareScratch(ctx, scratchURL, skus); err != nil {
		return nil, err
	}

	inv := cartv1connect.NewInventoryServiceClient(httpx.NewH2CClient(30*time.Second), sh.base, rpc.ClientOptions(nil)...)
	var orders atomic.Int64
	reserve := func(pick func() string) func() error {
		return func() error {
			_, err := inv.Reserve(ctx, connect.NewRequest(&cartv1.ReserveRequest{
				OrderId: fmt.Sprintf("bench-%d", orders.Add(1)),
				Lines:   []*cartv1.ReserveLine{{Sku: pick(), Quantity: 1}},
			}))
			return err
		}
	}
	// The same calls without the RPC: Inventory.Reserve in the process,
	// as the RPC handler calls it, while the relay and consumers run.
	inventory := sh.proc.Service("cart").(*cart.Service).Inventory()
	reserveInProcess := func(pick func() string) func() error {
		return func() error {
			_, err := inventory.Reserve(ctx, fmt.Sprintf("bench-%d", orders.Add(1)), []cart.ReserveLine{{SKU: pick(), Quantity: 1}}, 0)
			return err
		}
	}
	hot := func() string { return hotSKU }
	uniform := func() string { return uniformSKU(mrand.IntN(uniformProducts), 1+mrand.IntN(uniformVariants)) }
	if _, _, err := load(ctx, o.concurrency, o.duration/4, reserve(uniform)); err != nil { // warm up
		return nil, err
	}

	fmt.Fprintf(o.out, "reservations: InventoryService.Reserve RPC (connect over h2c) to an in-process MallHive on PostgreSQL and external NATS, %d clients, one line of 1 unit per order\n", o.concurrency)
	fmt.Fprintln(o.out, "  concurrent Reserves share a transaction (at most 2 at once): when all fit, one statement (writable CTEs: lock rows,")
	fmt.Fprintln(o.out, "  INSERT reservations, UPDATE stock, INSERT lines, ledger rows per order and line, stock.changed per SKU into the outbox);")
	fmt.Fprintln(o.out, "  the relay publishes the events to NATS and the catalog applies them to its availability read model, all in this process.")
	fmt.Fprintln(o.out, "  Each is then measured again calling Inventory.Reserve in the process (no RPC; relay and consumers still run), reported only.")
	fmt.Fprintf(o.out, "  pgbench runs only the conditional UPDATE (autocommit, -M prepared) on a table of the same shape in a scratch database, %d clients\n", o.concurrency)
	var rs []result
	for _, c := range []struct {
		name   string
		pick   func() string
		script string
	}{
		{"hot SKU", hot, fmt.Sprintf("UPDATE stock SET reserved = reserved + 1 WHERE sku = '%s' AND on_hand - reserved >= 1;\n", hotSKU)},
		{fmt.Sprintf("uniform over %d SKUs", uniformProducts*uniformVariants), uniform,
			fmt.Sprintf("\\set p random(0, %d)\n\\set v random(1, %d)\n", uniformProducts-1, uniformVariants) +
				"UPDATE stock SET reserved = reserved + 1 WHERE sku = format('U%s-%s', lpad(:p::text, 2, '0'), :v::text) AND on_hand - reserved >= 1;\n"},
	} {
		if err := drainOutbox(ctx, o, appURL); err != nil {
			return nil, err
		}
		rate, lat, err := load(ctx, o.concurrency, o.duration, reserve(c.pick))
		if err != nil {
			return nil, err
		}
		if err := drainOutbox(ctx, o, appURL); err != nil {
			return nil, err
		}
		direct, directLat, err := load(ctx, o.concurrency, o.duration, reserveInProcess(c.pick))
		if err != nil {
			return nil, err
		}
		// pgbench starts once the relay has published the run's events,
		// so their publishing does not slow the baseline down.
		if err := drainOutbox(ctx, o, appURL); err != nil {
			return nil, err
		}
		tps, err := pgbench(ctx, o, dir, scratchURL, c.script)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(o.out, "  %s: Reserve RPC p50 %s p99 %s; in-process p50 %s p99 %s\n", c.name,
			percentile(lat, 50), percentile(lat, 99), percentile(directLat, 50), percentile(directLat, 99))
		rs = append(rs,
			result{name: "reservations, " + c.name, value: rate, unit: "/s", baseline: tps, baseName: "pgbench UPDATE", minRatio: 0.7},
			result{name: "  the same in-process, no RPC", value: direct, unit: "/s", baseline: tps, baseName: "pgbench UPDATE"})
	}
	if err := checkScratch(ctx, scratchURL); err != nil {
		return nil, err
	}
	return rs, nil
}

// deleteStreams removes the streams of a namespace from the NATS server.
func deleteStreams(natsURL, namespace string) {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	var doomed []string
	for name := range names.Name() {
		if strings.HasPrefix(name, strings.ToUpper(namespace)+"_") {
			doomed = append(doomed, name)
		}
	}
	for _, name := range doomed {
		_ = js.DeleteStream(ctx, name)
	}
}

// drainOutbox waits until the cart service's relay has emptied its outbox.
func drainOutbox(ctx context.Context, o options, appURL string) error {
	db, err := sql.Open("pgx", appURL)
	if err != nil {
		return err
	}
	defer db.Close()
	t0 := time.Now()
	var first int64 = -1
	for {
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM cart.outbox").Scan(&n); err != nil {
			return fmt.Errorf("count outbox: %w", err)
		}
		if first < 0 {
			first = n
		}
		if n == 0 {
			if first > 0 {
				fmt.Fprintf(o.out, "  (relay published the last %d outbox rows in %s)\n", first, time.Since(t0).Round(time.Millisecond))
			}
			return nil
		}
		if time.Since(t0) > time.Minute {
			return fmt.Errorf("the cart outbox still holds %d rows after a minute", n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// createDatabase creates database name next to base's and returns its URL
// and a function that drops it.
func createDatabase(ctx context.Context, base, name string) (string, func(), error) {
	db, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		db, err := sql.Open("pgx", base)
		if err == nil {
			_, err = db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			db.Close()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: drop database %s: %v\n", name, err)
		}
	}
	u, err := url.Parse(base)
	if err != nil {
		drop()
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

func prepareScratch(ctx context.Context, scratchURL string, skus []string) error {
	db, err := sql.Open("pgx", scratchURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, stockDDL); err != nil {
		return fmt.Errorf("scratch stock table: %w", err)
	}
	_, err = db.ExecContext(ctx, `INSERT INTO stock (sku, seller_id, product_id, on_hand, updated_at)
		SELECT s, 'bench-seller', 'bench-product', $2, now() FROM unnest($1::text[]) AS s`, skus, int64(benchOnHand))
	if err != nil {
		return fmt.Errorf("scratch stock rows: %w", err)
	}
	return nil
}

// checkScratch makes sure pgbench's updates matched rows (a typo in the
// uniform script's SKU would make it measure updates of nothing).
func checkScratch(ctx context.Context, scratchURL string) error {
	db, err := sql.Open("pgx", scratchURL)
	if err != nil {
		return err
	}
	defer db.Close()
	var hot, uniform int64
	err = db.QueryRowContext(ctx, `SELECT coalesce(sum(reserved) FILTER (WHERE sku = $1), 0),
		coalesce(sum(reserved) FILTER (WHERE sku <> $1), 0) FROM stock`, hotSKU).Scan(&hot, &uniform)
	if err != nil {
		return err
	}
	if hot == 0 || uniform == 0 {
		return fmt.Errorf("pgbench reserved %d on the hot SKU and %d on the others: its UPDATE matched nothing", hot, uniform)
	}
	return nil
}

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbench runs script with o.concurrency clients for o.duration (whole
// seconds, at least 1) and returns transactions per second.
func pgbench(ctx context.Context, o options, dir, dbURL, script string) (float64, error) {
	pc, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return 0, err
	}
	f := filepath.Join(dir, "pgbench-"+randomHex(4)+".sql")
	if err := os.WriteFile(f, []byte(script), 0o600); err != nil {
		return 0, err
	}
	secs := max(1, int(o.duration.Round(time.Second).Seconds()))
	cmd := exec.CommandContext(ctx, "pgbench", "-n", "-M", "prepared",
		"-c", strconv.Itoa(o.concurrency), "-j", strconv.Itoa(min(o.concurrency, runtime.NumCPU())),
		"-T", strconv.Itoa(secs), "-f", f,
		"-h", pc.Host, "-p", strconv.Itoa(int(pc.Port)), "-U", pc.User, pc.Database)
	if pc.Password != "" {
		cmd.Env = append(os.Environ(), "PGPASSWORD="+pc.Password)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("pgbench: %w: %s", err, stderr.Bytes())
	}
	m := tpsRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench: no tps in %q", out)
	}
	if bytes.Contains(out, []byte("number of failed transactions: ")) && !bytes.Contains(out, []byte("number of failed transactions: 0 ")) {
		return 0, fmt.Errorf("pgbench: failed transactions: %s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// ---- helpers ----

// parallel calls fn for every item from c goroutines and returns the first
// error.
func parallel(c int, items []string, fn func(string) error) error {
	ch := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range ch {
				if err := fn(it); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, it := range items {
		ch <- it
	}
	close(ch)
	wg.Wait()
	return first
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
