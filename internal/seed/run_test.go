package seed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/mallhive/mallhive/internal/app"
	"github.com/mallhive/mallhive/internal/platform/config"
	"github.com/mallhive/mallhive/internal/seed"
)

// go test ./internal/seed -run TestRun -v -args -seed.products=2000 -seed.sellers=12 -seed.buyers=5
// times a full-size seed.
var (
	nProducts = flag.Int("seed.products", 40, "products the end-to-end test seeds")
	nSellers  = flag.Int("seed.sellers", 3, "sellers the end-to-end test seeds")
	nBuyers   = flag.Int("seed.buyers", 2, "buyers the end-to-end test seeds")
)

func noEnv(string) string { return "" }

// startProcess runs MallHive in the test on a free port with its data in a
// temporary directory, and stops it when the test ends.
func startProcess(tb testing.TB) (string, *app.Config) {
	tb.Helper()
	fs := flag.NewFlagSet("seed-test", flag.ContinueOnError)
	cfg := &app.Config{}
	cfg.RegisterFlags(fs)
	args := []string{"--http-addr=127.0.0.1:0", "--data-dir=" + tb.TempDir(), "--seed=false",
		"--gateway.rate-limit=0", "--services=auth,catalog,cart,gateway"}
	if err := config.Parse(fs, args, noEnv); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := app.Start(ctx, cfg, slog.New(slog.DiscardHandler), noEnv)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, func(string) string { return "" }, io.Discard) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("serve: %v", err)
		}
	})
	return p.URL, cfg
}

type api struct {
	tb   testing.TB
	base string
}

// call sends a JSON request and decodes the answer into out; it returns
// the status and headers.
func (a api) call(method, path, token string, in, out any) (int, http.Header) {
	a.tb.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, body)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			a.tb.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
	return resp.StatusCode, resp.Header
}

type product struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Status   string   `json:"status"`
	Images   []string `json:"images"`
	Variants []struct {
		SKU          string `json:"sku"`
		Availability string `json:"availability"`
		Price        struct {
			Amount   int64  `json:"amount"`
			Currency string `json:"currency"`
		} `json:"price"`
	} `json:"variants"`
}

// products lists the storefront (all pages).
func (a api) products(query string) []product {
	a.tb.Helper()
	var all []product
	token := ""
	for {
		q := "/api/v1/products?page_size=100" + query
		if token != "" {
			q += "&page_token=" + url.QueryEscape(token)
		}
		var page struct {
			Items []product `json:"items"`
			Next  string    `json:"next_page_token"`
		}
		if st, _ := a.call(http.MethodGet, q, "", nil, &page); st != http.StatusOK {
			a.tb.Fatalf("GET %s: %d", q, st)
		}
		all = append(all, page.Items...)
		if token = page.Next; token == "" {
			return all
		}
	}
}

func (a api) login(email, password string) map[string]any {
	a.tb.Helper()
	var out map[string]any
	if st, _ := a.call(http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": email, "password": password}, &out); st != http.StatusOK {
		a.tb.Fatalf("login %s: %d", email, st)
	}
	return out
}

func TestRunSeedsAMarketplace(t *testing.T) {
	base, cfg := startProcess(t)
	createAdmin := func(ctx context.Context, email, password, name string) error {
		return app.CreateAdmin(ctx, cfg, noEnv, email, password, name)
	}
	a := api{tb: t, base: base}
	opts := seed.Options{Products: *nProducts, Sellers: *nSellers, Buyers: *nBuyers, Seed: 42}

	var progress bytes.Buffer
	started := time.Now()
	acc, err := seed.Run(t.Context(), base, createAdmin, opts, &progress)
	if err != nil {
		t.Fatalf("seed: %v\n%s", err, progress.String())
	}
	t.Logf("seeded %d products, %d sellers, %d buyers in %s", opts.Products, opts.Sellers, opts.Buyers, time.Since(started).Round(time.Millisecond))
	if !strings.Contains(progress.String(), "seed: products") || !strings.Contains(progress.String(), "in 8 departments") {
		t.Errorf("progress:\n%s", progress.String())
	}

	t.Run("accounts", func(t *testing.T) {
		if acc.Admin.Email != seed.DemoAdminEmail || acc.Seller.Email != seed.DemoSellerEmail || acc.Buyer.Email != seed.DemoBuyerEmail {
			t.Fatalf("accounts %+v", acc)
		}
		if acc.AdminTOTPSecret == "" || len(acc.AdminRecoveryCodes) != 10 {
			t.Fatalf("admin second factor: %q, %d recovery codes", acc.AdminTOTPSecret, len(acc.AdminRecoveryCodes))
		}
		if s := acc.Summary(); !strings.Contains(s, "DEMO ONLY") || !strings.Contains(s, seed.DemoBuyerPassword) {
			t.Errorf("summary:\n%s", s)
		}
	})

	t.Run("categories", func(t *testing.T) {
		var tree struct {
			Items []struct {
				Name     string `json:"name"`
				Children []struct {
					Slug string `json:"slug"`
				} `json:"children"`
			} `json:"items"`
		}
		a.call(http.MethodGet, "/api/v1/categories", "", nil, &tree)
		if len(tree.Items) != 8 {
			t.Fatalf("%d top-level categories", len(tree.Items))
		}
		for _, c := range tree.Items {
			if n := len(c.Children); n < 3 || n > 6 {
				t.Errorf("%s has %d children", c.Name, n)
			}
		}
	})

	all := a.products("")
	t.Run("products and images", func(t *testing.T) {
		if len(all) != opts.Products {
			t.Fatalf("the storefront lists %d products, want %d", len(all), opts.Products)
		}
		for i, p := range all {
			if p.Status != "active" || len(p.Images) != 1 || len(p.Variants) < 1 || len(p.Variants) > 4 || p.Variants[0].Price.Currency != "EUR" {
				t.Fatalf("product %+v", p)
			}
			if i >= 50 { // a full-size run checks a sample of images
				continue
			}
			resp, err := http.Get(base + p.Images[0])
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" || err != nil {
				t.Fatalf("GET %s: %d %s %v", p.Images[0], resp.StatusCode, resp.Header.Get("Content-Type"), err)
			}
			if b := img.Bounds(); b.Dx() != 256 || b.Dy() != 256 {
				t.Fatalf("image %v", b)
			}
		}
	})

	t.Run("stock", func(t *testing.T) {
		// Availability reaches the catalog through stock events.
		var counts map[string]int
		deadline := time.Now().Add(15 * time.Second)
		for {
			counts = map[string]int{}
			for _, p := range a.products("") {
				for _, v := range p.Variants {
					counts[v.Availability]++
				}
			}
			if counts["in_stock"] > 0 && counts["low_stock"] > 0 && counts["out_of_stock"] > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if counts["in_stock"] == 0 || counts["low_stock"] == 0 || counts["out_of_stock"] == 0 {
			t.Fatalf("availability %v", counts)
		}
		t.Logf("availability %v", counts)
		if inStock := a.products("&in_stock=true"); len(inStock) == 0 || len(inStock) > len(all) {
			t.Errorf("%d of %d products in stock", len(inStock), len(all))
		}

		tok := a.login(acc.Seller.Email, acc.Seller.Password)["access_token"].(string)
		var inv struct {
			Items []struct {
				SKU          string `json:"sku"`
				LowThreshold int64  `json:"low_threshold"`
			} `json:"items"`
		}
		if st, _ := a.call(http.MethodGet, "/api/v1/inventory?page_size=100", tok, nil, &inv); st != http.StatusOK || len(inv.Items) == 0 {
			t.Fatalf("the demo seller's inventory: %d, %d SKUs", st, len(inv.Items))
		}
		for _, it := range inv.Items {
			if it.LowThreshold != 5 {
				t.Errorf("%s: low threshold %d", it.SKU, it.LowThreshold)
			}
		}
	})

	t.Run("demo buyer signs in", func(t *testing.T) {
		tok, _ := a.login(acc.Buyer.Email, acc.Buyer.Password)["access_token"].(string)
		var me struct {
			Roles     []string `json:"roles"`
			Addresses []struct {
				City string `json:"city"`
			} `json:"addresses"`
		}
		if st, _ := a.call(http.MethodGet, "/api/v1/users/me", tok, nil, &me); st != http.StatusOK ||
			len(me.Roles) != 1 || me.Roles[0] != "buyer" || len(me.Addresses) != 1 {
			t.Fatalf("me: %d %+v", st, me)
		}
	})

	t.Run("demo admin signs in with TOTP", func(t *testing.T) {
		ch := a.login(acc.Admin.Email, acc.Admin.Password)
		if ch["mfa_required"] != true {
			t.Fatalf("login answered %v", ch)
		}
		// The enrolment spent the current step; the next one (within the
		// allowed skew) is fresh.
		code, err := totp.GenerateCode(acc.AdminTOTPSecret, time.Now().Add(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var tok struct {
			AccessToken string `json:"access_token"`
			User        struct {
				Roles []string `json:"roles"`
			} `json:"user"`
		}
		st, _ := a.call(http.MethodPost, "/api/v1/auth/login/mfa", "", map[string]string{"mfa_token": ch["mfa_token"].(string), "code": code}, &tok)
		if st != http.StatusOK || tok.AccessToken == "" || len(tok.User.Roles) != 1 || tok.User.Roles[0] != "admin" {
			t.Fatalf("mfa: %d %+v", st, tok)
		}
	})

	t.Run("a second run refuses", func(t *testing.T) {
		_, err := seed.Run(t.Context(), base, createAdmin, opts, io.Discard)
		if !errors.Is(err, seed.ErrAlreadySeeded) || !strings.Contains(err.Error(), "already seeded") {
			t.Fatalf("second run: %v", err)
		}
		if n := len(a.products("")); n != opts.Products {
			t.Fatalf("%d products after the second run", n)
		}
	})
}

func TestRunRefusesBadOptions(t *testing.T) {
	t.Parallel()
	called := false
	createAdmin := func(context.Context, string, string, string) error { called = true; return nil }
	for name, opts := range map[string]seed.Options{
		"negative products":         {Products: -1},
		"custom admin, no password": {AdminEmail: "root@example.com"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := seed.Run(t.Context(), "http://127.0.0.1:1", createAdmin, opts, nil); err == nil {
				t.Fatal("want an error")
			}
		})
	}
	if called {
		t.Fatal("createAdmin was called for bad options")
	}
}
