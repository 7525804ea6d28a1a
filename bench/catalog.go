package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mallhive/mallhive/internal/app"
	"github.com/mallhive/mallhive/internal/auth"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/svc"
)

// runCatalog: GET /api/v1/products/{id} over HTTP on an embedded MallHive
// against a bare net/http handler writing the same JSON bytes, with the same
// client and concurrency, then the same with the product cache off.
func runCatalog(ctx context.Context, o options) ([]result, error) {
	on, err := measureProductPage(ctx, o, "GET /products/{id}", 0.4)
	if err != nil {
		return nil, err
	}
	// Reported, not targeted: what the store read costs when every request
	// makes it (a product read less often than the cache lives).
	off, err := measureProductPage(ctx, o, "GET /products/{id}, product cache off", 0, "--catalog.product-cache-ttl=0")
	if err != nil {
		return nil, err
	}
	return []result{on, off}, nil
}

// pageRounds: the two servers take turns, so a burst of other work on the
// machine slows both sides of one round rather than one side of the whole
// measurement; the round with the median ratio is reported.
const pageRounds = 5

func measureProductPage(ctx context.Context, o options, name string, minRatio float64, args ...string) (result, error) {
	dir, err := os.MkdirTemp("", "mallhive-bench-catalog-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	sh, err := openShop(ctx, o, dir, "", args...)
	if err != nil {
		return result{}, err
	}
	defer sh.stop()

	// A handful of products, read in turn, so the measurement is not one
	// row that every cache layer has memorised. The product cache does hold
	// all of them (each is read ~1,000 times a second), hence the run with
	// it off.
	const products = 20
	ids := make([]string, products)
	for i := range ids {
		p, err := sh.createProduct(productSpec{
			title: fmt.Sprintf("Merino wool crew sweater %d", i), brand: "Fjellgarn",
			skuPrefix: fmt.Sprintf("FJ-CREW-%02d", i), variants: 3,
		})
		if err != nil {
			return result{}, err
		}
		ids[i] = p.ID
	}
	body, err := getBytes(sh.cl, sh.base+"/api/v1/products/"+ids[0])
	if err != nil {
		return result{}, err
	}
	fmt.Fprintf(o.out, "%s: product JSON %d bytes (3 variants); %d products read round robin, anonymous\n", name, len(body), products)

	var i atomic.Int64
	page := func() error {
		id := ids[int(i.Add(1))%products]
		return call(sh.cl, "GET", sh.base+"/api/v1/products/"+id, "", nil, http.StatusOK, nil)
	}
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer bare.Close()
	bareCall := func() error {
		return call(sh.cl, "GET", bare.URL+"/api/v1/products/"+ids[0], "", nil, http.StatusOK, nil)
	}

	// Warm up both (connections, heap size, SQLite's page cache), untimed.
	warm := min(o.duration/pageRounds, time.Second)
	for _, fn := range []func() error{page, bareCall} {
		if _, _, err := load(ctx, o.concurrency, warm, fn); err != nil {
			return result{}, err
		}
	}
	type round struct{ rate, bareRate float64 }
	var rounds []round
	var lat, bareLat []time.Duration
	for r := range pageRounds {
		var rd round
		measure := func(fn func() error, rate *float64, lats *[]time.Duration) error {
			v, l, err := load(ctx, o.concurrency, o.duration/pageRounds, fn)
			*rate, *lats = v, append(*lats, l...)
			return err
		}
		// Alternate which side goes first, so neither always follows the other.
		sides := []func() error{
			func() error { return measure(page, &rd.rate, &lat) },
			func() error { return measure(bareCall, &rd.bareRate, &bareLat) },
		}
		if r%2 == 1 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, side := range sides {
			if err := side(); err != nil {
				return result{}, err
			}
		}
		rounds = append(rounds, rd)
	}
	ratios := make([]string, len(rounds))
	for i, rd := range rounds {
		ratios[i] = fmt.Sprintf("%.0f%%", 100*rd.rate/rd.bareRate)
	}
	sort.Slice(rounds, func(i, j int) bool { return rounds[i].rate/rounds[i].bareRate < rounds[j].rate/rounds[j].bareRate })
	med := rounds[len(rounds)/2]
	fmt.Fprintf(o.out, "%s: p50 %s p99 %s; bare p50 %s p99 %s; ratio per round %s (median reported)\n", name,
		percentile(lat, 50), percentile(lat, 99), percentile(bareLat, 50), percentile(bareLat, 99), strings.Join(ratios, " "))
	return result{name: name, value: med.rate, unit: "req/s", baseline: med.bareRate, baseName: "bare net/http", minRatio: minRatio}, nil
}

// shop is an in-process MallHive (auth, catalog, cart, gateway) with one
// category made by an admin and a seller signed in, ready for products.
type shop struct {
	base     string
	proc     *app.Process
	cl       *http.Client
	seller   string // the seller's access token
	category string
	stop     func()
}

// openShop starts the process on dir (SQLite) or databaseURL (PostgreSQL)
// with extra flags. Admin two-factor sign-in is off for the bench only: the
// admin is created straight in the auth database before start, as
// `mallhive admin create` does, and signs in with a password.
func openShop(ctx context.Context, o options, dir, databaseURL string, args ...string) (*shop, error) {
	const adminEmail, adminPassword = "bench-admin@example.com", "a long bench admin passphrase"
	env := &svc.Env{
		Log:     slog.New(slog.DiscardHandler),
		DataDir: dir,
		DB: func(ctx context.Context, service string) (*sqldb.DB, error) {
			return sqldb.Open(ctx, sqldb.Config{URL: databaseURL, DataDir: dir, Service: service})
		},
	}
	if _, err := auth.CreateAdmin(ctx, env, auth.Config{}, adminEmail, adminPassword, "Bench Admin"); err != nil {
		return nil, fmt.Errorf("create admin: %w", err)
	}
	flags := []string{"--services=auth,catalog,cart,gateway", "--data-dir=" + dir, "--auth.require-admin-2fa=false"}
	if databaseURL != "" {
		flags = append(flags, "--database-url="+databaseURL)
	}
	proc, stop, err := inProcess(ctx, append(flags, args...)...)
	if err != nil {
		return nil, err
	}
	sh := &shop{base: proc.URL, proc: proc, cl: newClient(o.concurrency), stop: stop}
	if err := sh.setUp(); err != nil {
		stop()
		return nil, err
	}
	return sh, nil
}

func (sh *shop) setUp() error {
	admin, err := sh.login("bench-admin@example.com", "a long bench admin passphrase")
	if err != nil {
		return fmt.Errorf("admin login: %w", err)
	}
	var cat struct{ ID string }
	if err := call(sh.cl, "POST", sh.base+"/api/v1/categories", admin,
		map[string]any{"slug": "knitwear", "name": "Knitwear"}, http.StatusCreated, &cat); err != nil {
		return err
	}
	sh.category = cat.ID
	seller := map[string]any{"email": "bench-seller@example.com", "password": "a long bench seller passphrase",
		"name": "Bench Seller", "role": "seller", "store_name": "Bench Knits"}
	if err := call(sh.cl, "POST", sh.base+"/api/v1/auth/register", "", seller, http.StatusCreated, nil); err != nil {
		return err
	}
	sh.seller, err = sh.login(seller["email"].(string), seller["password"].(string))
	return err
}

func (sh *shop) login(email, password string) (string, error) {
	var pair struct {
		AccessToken string `json:"access_token"`
	}
	err := call(sh.cl, "POST", sh.base+"/api/v1/auth/login", "", map[string]any{"email": email, "password": password}, http.StatusOK, &pair)
	return pair.AccessToken, err
}

// productSpec describes a generated active product: variants SKUs are
// skuPrefix-1 .. skuPrefix-<variants>.
type productSpec struct {
	title, brand, skuPrefix string
	variants                int
}

type createdProduct struct {
	ID       string `json:"id"`
	Variants []struct {
		SKU string `json:"sku"`
	} `json:"variants"`
}

func (sh *shop) createProduct(p productSpec) (createdProduct, error) {
	variants := make([]map[string]any, p.variants)
	for i := range variants {
		variants[i] = map[string]any{
			"sku":     fmt.Sprintf("%s-%d", p.skuPrefix, i+1),
			"options": map[string]string{"size": fmt.Sprintf("S%d", i+1), "colour": "navy"},
			"price":   map[string]any{"amount": 8900 + 100*i, "currency": "EUR"},
		}
	}
	body := map[string]any{
		"title": p.title, "brand": p.brand, "category_id": sh.category, "status": "active",
		"description": "A soft, warm crew-neck sweater knitted from fine merino wool; machine washable, made to last.",
		"attributes":  map[string]string{"material": "merino", "fit": "regular"},
		"variants":    variants,
	}
	var out createdProduct
	err := call(sh.cl, "POST", sh.base+"/api/v1/products", sh.seller, body, http.StatusCreated, &out)
	return out, err
}

// setStock sets a SKU's stock as its seller.
func (sh *shop) setStock(sku string, onHand int64) error {
	return call(sh.cl, "PUT", sh.base+"/api/v1/inventory/"+sku, sh.seller, map[string]any{"on_hand": onHand}, http.StatusCreated, nil)
}

// getBytes returns a 200 response's body.
func getBytes(cl *http.Client, url string) ([]byte, error) {
	resp, err := cl.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return b, err
}
