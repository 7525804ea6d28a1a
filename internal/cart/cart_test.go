package cart

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	cartv1 "github.com/mallhive/mallhive/internal/gen/mallhive/cart/v1"
	"github.com/mallhive/mallhive/internal/platform/money"
)

// viewOf decodes a cart response.
func viewOf(tb testing.TB, r response) View {
	tb.Helper()
	var v View
	r.json(tb, &v)
	return v
}

// lines renders a view's lines as "SKU=quantity ..." for comparisons.
func (v View) lines() string {
	var b strings.Builder
	for _, l := range v.Lines {
		fmt.Fprintf(&b, "%s=%d ", l.SKU, l.Quantity)
	}
	return strings.TrimSpace(b.String())
}

func (v View) line(tb testing.TB, sku string) LineView {
	tb.Helper()
	for _, l := range v.Lines {
		if l.SKU == sku {
			return l
		}
	}
	tb.Fatalf("no line %s in %q", sku, v.lines())
	return LineView{}
}

func item(sku string, q int) map[string]any { return map[string]any{"sku": sku, "quantity": q} }

func TestGuestCart(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		h.stock(sellerA, "TEE-S", 10)
		h.stock(sellerA, "MUG-1", 5)

		r := h.do(anon, "GET", "/api/v1/cart", nil).want(t, 200)
		if v := viewOf(t, r); len(v.Lines) != 0 || v.Subtotal != nil || r.header.Get(CartTokenHeader) != "" || r.cookie(CartCookie) != nil {
			t.Fatalf("anonymous empty cart: %s, headers %v", r.body, r.header)
		}

		// The first write issues the token, by header and by cookie.
		r = h.do(anon, "POST", "/api/v1/cart/items", item("TEE-S", 2)).want(t, 200)
		tok := r.header.Get(CartTokenHeader)
		if raw, err := base64.RawURLEncoding.DecodeString(tok); err != nil || len(raw) != 32 {
			t.Fatalf("token %q", tok)
		}
		c := r.cookie(CartCookie)
		if c == nil || c.Value != tok || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure ||
			c.MaxAge != int((30*24*time.Hour).Seconds()) {
			t.Fatalf("cookie %+v", c)
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("cart responses must not be cached")
		}
		byHeader, byCookie := user{token: tok}, user{token: tok, cookie: true}
		for _, u := range []user{byHeader, byCookie} {
			v := viewOf(t, h.do(u, "GET", "/api/v1/cart", nil).want(t, 200))
			if v.lines() != "TEE-S=2" || v.Subtotal == nil || *v.Subtotal != (money.Money{Amount: 2000, Currency: "EUR"}) || v.ItemCount != 2 {
				t.Fatalf("guest cart %+v", v)
			}
			l := v.line(t, "TEE-S")
			if l.Title != "Title of TEE-S" || l.SellerID != sellerA.id || l.ProductID != "prod-TEE-S" || l.Available != 10 ||
				l.UnitPrice.Amount != 1000 || l.LineTotal.Amount != 2000 || l.PriceChanged || l.Unavailable {
				t.Fatalf("line %+v", l)
			}
		}

		steps := []struct {
			name, method, path string
			body               any
			status             int
			want               string
		}{
			{"add merges the line", "POST", "/api/v1/cart/items", item("TEE-S", 3), 200, "TEE-S=5"},
			{"add another", "POST", "/api/v1/cart/items", item("MUG-1", 1), 200, "TEE-S=5 MUG-1=1"},
			{"set quantity", "PATCH", "/api/v1/cart/items/TEE-S", map[string]any{"quantity": 1}, 200, "TEE-S=1 MUG-1=1"},
			{"remove", "DELETE", "/api/v1/cart/items/TEE-S", nil, 200, "MUG-1=1"},
			{"remove again", "DELETE", "/api/v1/cart/items/TEE-S", nil, 200, "MUG-1=1"},
			{"set a line not in the cart", "PATCH", "/api/v1/cart/items/TEE-S", map[string]any{"quantity": 1}, 404, "MUG-1=1"},
		}
		for _, s := range steps {
			r := h.do(byCookie, s.method, s.path, s.body).want(t, s.status)
			if s.status == 200 && r.header.Get(CartTokenHeader) != tok {
				t.Fatalf("%s: token changed to %q", s.name, r.header.Get(CartTokenHeader))
			}
			if got := viewOf(t, h.do(byHeader, "GET", "/api/v1/cart", nil)).lines(); got != s.want {
				t.Fatalf("%s: cart %q, want %q", s.name, got, s.want)
			}
		}

		// Without a token there is no cart to change.
		h.do(anon, "PATCH", "/api/v1/cart/items/MUG-1", map[string]any{"quantity": 2}).want(t, 404)
		if v := viewOf(t, h.do(anon, "DELETE", "/api/v1/cart/items/MUG-1", nil).want(t, 200)); len(v.Lines) != 0 {
			t.Fatalf("tokenless delete: %+v", v)
		}

		// Only the token's hash is stored.
		raw, _ := base64.RawURLEncoding.DecodeString(tok)
		sum := sha256.Sum256(raw)
		key := "g:" + hex.EncodeToString(sum[:])
		if h.redis != nil {
			ttl := h.redis.TTL(context.Background(), h.svc.cfg.RedisPrefix+"cart:"+key).Val()
			if ttl < 29*24*time.Hour {
				t.Fatalf("guest cart TTL %v", ttl)
			}
		} else {
			if n := count(t, h.db, `SELECT COUNT(*) FROM carts WHERE cart_key = $1 AND expires_at IS NOT NULL`, key); n != 1 {
				t.Fatalf("no guest cart stored under the token hash")
			}
			if n := count(t, h.db, `SELECT COUNT(*) FROM carts WHERE cart_key LIKE $1`, "%"+tok+"%"); n != 0 {
				t.Fatalf("raw token stored")
			}
		}

		// Clearing the cart.
		if v := viewOf(t, h.do(byHeader, "DELETE", "/api/v1/cart", nil).want(t, 200)); len(v.Lines) != 0 {
			t.Fatalf("cleared cart %+v", v)
		}
		// A token whose cart is gone is replaced on the next write.
		r = h.do(byHeader, "POST", "/api/v1/cart/items", item("MUG-1", 1)).want(t, 200)
		if nt := r.header.Get(CartTokenHeader); nt == "" || nt == tok {
			t.Fatalf("token of an empty cart reused: %q", nt)
		}
	})
}

func TestCartPricing(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		for _, sku := range []string{"P-1", "P-2", "P-3", "P-4"} {
			h.stock(sellerA, sku, 10)
		}
		u := buyer1
		for _, sku := range []string{"P-1", "P-2", "P-3", "P-4"} {
			h.do(u, "POST", "/api/v1/cart/items", item(sku, 2)).want(t, 200)
		}
		h.catalog.put("P-1", sellerA.id, ProductActive, 1200, "EUR") // price up
		h.catalog.put("P-2", sellerA.id, "archived", 1000, "EUR")    // no longer sold
		if _, err := h.svc.inventory.Adjust(ctx, sellerA.id, "P-3", -10, "sold elsewhere"); err != nil {
			t.Fatal(err)
		}
		h.catalog.mu.Lock()
		delete(h.catalog.variants, "P-4") // gone from the catalog
		h.catalog.mu.Unlock()

		v := viewOf(t, h.do(u, "GET", "/api/v1/cart", nil).want(t, 200))
		cases := []struct {
			sku                  string
			unit, total, added   int64
			changed, unavailable bool
			reason               string
		}{
			{"P-1", 1200, 2400, 1000, true, false, ""},
			{"P-2", 1000, 2000, 1000, false, true, "inactive"},
			{"P-3", 1000, 2000, 1000, false, true, "out_of_stock"},
			{"P-4", 1000, 2000, 1000, false, true, "unknown_sku"},
		}
		for _, c := range cases {
			l := v.line(t, c.sku)
			if l.UnitPrice.Amount != c.unit || l.LineTotal.Amount != c.total || l.AddedPrice.Amount != c.added ||
				l.PriceChanged != c.changed || l.Unavailable != c.unavailable || l.UnavailableReason != c.reason {
				t.Errorf("%s: %+v", c.sku, l)
			}
		}
		if v.Subtotal == nil || v.Subtotal.Amount != 2400 || v.ItemCount != 8 {
			t.Fatalf("subtotal %v, items %d", v.Subtotal, v.ItemCount)
		}
		// Adding again shows the buyer the new price: no longer flagged.
		v = viewOf(t, h.do(u, "POST", "/api/v1/cart/items", item("P-1", 1)).want(t, 200))
		if l := v.line(t, "P-1"); l.PriceChanged || l.AddedPrice.Amount != 1200 || l.Quantity != 3 {
			t.Fatalf("re-added line %+v", l)
		}
		// Lowering the quantity of an unavailable line works; raising it does not.
		h.do(u, "PATCH", "/api/v1/cart/items/P-2", map[string]any{"quantity": 1}).want(t, 200)
		h.do(u, "PATCH", "/api/v1/cart/items/P-2", map[string]any{"quantity": 2}).want(t, 409)
		h.do(u, "PATCH", "/api/v1/cart/items/P-3", map[string]any{"quantity": 3}).want(t, 409)
		h.do(u, "PATCH", "/api/v1/cart/items/P-1", map[string]any{"quantity": 11}).want(t, 409)
		h.do(u, "PATCH", "/api/v1/cart/items/P-1", map[string]any{"quantity": 10}).want(t, 200)

		// The catalog being down is a 503, not a 500.
		h.catalog.down.Store(true)
		p := h.do(u, "GET", "/api/v1/cart", nil).want(t, 503).problem(t)
		if p["code"] != "unavailable" {
			t.Fatalf("problem %v", p)
		}
		h.do(u, "POST", "/api/v1/cart/items", item("P-1", 1)).want(t, 503)
		h.catalog.down.Store(false)
	})
}

func TestAddRefusals(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		h.stock(sellerA, "EUR-1", 200)
		h.stock(sellerA, "FEW-1", 3)
		h.stock(sellerA, "OFF-1", 10)
		h.catalog.put("OFF-1", sellerA.id, "draft", 1000, "EUR")
		h.catalog.put("USD-1", sellerB.id, ProductActive, 1000, "USD")
		if _, _, err := h.svc.inventory.Set(context.Background(), sellerB.id, "USD-1", 10, nil); err != nil {
			t.Fatal(err)
		}
		h.catalog.put("NOSTOCK-1", sellerA.id, ProductActive, 1000, "EUR")
		u := buyer1
		h.do(u, "POST", "/api/v1/cart/items", item("EUR-1", 60)).want(t, 200)

		cases := []struct {
			name   string
			body   any
			status int
			detail string
		}{
			{"unknown SKU", item("NOPE-1", 1), 404, "unknown SKU"},
			{"inactive product", item("OFF-1", 1), 409, "not for sale"},
			{"above available stock", item("FEW-1", 4), 409, "only 3 of FEW-1 available"},
			{"no stock recorded", item("NOSTOCK-1", 1), 409, "only 0"},
			{"line above 99", item("EUR-1", 40), 409, "at most 99"},
			{"another currency", item("USD-1", 1), 409, "priced in EUR"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				p := h.do(u, "POST", "/api/v1/cart/items", c.body).want(t, c.status).problem(t)
				if d, _ := p["detail"].(string); !strings.Contains(d, c.detail) {
					t.Fatalf("detail %q, want it to mention %q", d, c.detail)
				}
				if got := viewOf(t, h.do(u, "GET", "/api/v1/cart", nil)).lines(); got != "EUR-1=60" {
					t.Fatalf("cart changed to %q", got)
				}
			})
		}

		t.Run("full cart", func(t *testing.T) {
			full := buyer2
			for i := range MaxLines {
				sku := fmt.Sprintf("MANY-%03d", i)
				h.stock(sellerA, sku, 1)
				h.do(full, "POST", "/api/v1/cart/items", item(sku, 1)).want(t, 200)
			}
			h.stock(sellerA, "MANY-LAST", 1)
			h.do(full, "POST", "/api/v1/cart/items", item("MANY-LAST", 1)).want(t, 409)
			// A SKU already in the full cart can still grow.
			h.do(sellerA, "POST", "/api/v1/inventory/MANY-000/adjustments", map[string]any{"delta": 1, "reason": "found one"}).want(t, 200)
			h.do(full, "POST", "/api/v1/cart/items", item("MANY-000", 1)).want(t, 200)
			if v := viewOf(t, h.do(full, "GET", "/api/v1/cart", nil)); len(v.Lines) != MaxLines || v.ItemCount != MaxLines+1 {
				t.Fatalf("full cart: %d lines, %d items", len(v.Lines), v.ItemCount)
			}
		})
	})
}

// TestCartConcurrency: concurrent adds to one cart all land, and the stock
// bound holds however they interleave.
func TestCartConcurrency(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		h.stock(sellerA, "PLENTY", 50)
		h.stock(sellerA, "SCARCE", 5)
		var wg sync.WaitGroup
		var ok, refused atomic.Int64
		for range 12 {
			wg.Go(func() {
				if r := h.do(buyer1, "POST", "/api/v1/cart/items", item("PLENTY", 1)); r.status != 200 {
					t.Errorf("add: %d %s", r.status, r.body)
				}
				switch r := h.do(buyer1, "POST", "/api/v1/cart/items", item("SCARCE", 1)); r.status {
				case 200:
					ok.Add(1)
				case 409:
					refused.Add(1)
				default:
					t.Errorf("add scarce: %d %s", r.status, r.body)
				}
			})
		}
		wg.Wait()
		v := viewOf(t, h.do(buyer1, "GET", "/api/v1/cart", nil))
		if v.lines() != "PLENTY=12 SCARCE=5" && v.lines() != "SCARCE=5 PLENTY=12" || ok.Load() != 5 || refused.Load() != 7 {
			t.Fatalf("cart %q after %d accepted and %d refused scarce adds", v.lines(), ok.Load(), refused.Load())
		}
	})
}

func TestMergeOnLogin(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		h.stock(sellerA, "M-A", 5)
		h.stock(sellerA, "M-B", 10)
		h.stock(sellerA, "M-C", 2)
		h.stock(sellerA, "M-D", 99)
		h.catalog.put("M-USD", sellerB.id, ProductActive, 500, "USD")
		if _, _, err := h.svc.inventory.Set(ctx, sellerB.id, "M-USD", 10, nil); err != nil {
			t.Fatal(err)
		}

		// A guest fills a cart; C then sells out.
		r := h.do(anon, "POST", "/api/v1/cart/items", item("M-A", 3)).want(t, 200)
		guest := user{token: r.header.Get(CartTokenHeader)}
		h.do(guest, "POST", "/api/v1/cart/items", item("M-B", 2)).want(t, 200)
		h.do(guest, "POST", "/api/v1/cart/items", item("M-C", 2)).want(t, 200)
		h.do(guest, "POST", "/api/v1/cart/items", item("M-D", 60)).want(t, 200)
		if _, err := h.svc.inventory.Adjust(ctx, sellerA.id, "M-C", -2, "broken"); err != nil {
			t.Fatal(err)
		}
		// The user already holds some of the same things.
		h.do(buyer1, "POST", "/api/v1/cart/items", item("M-A", 4)).want(t, 200)
		h.do(buyer1, "POST", "/api/v1/cart/items", item("M-D", 50)).want(t, 200)

		// The first request with both merges: A 4+3 bounded by stock 5; B
		// comes over; C is kept (one, flagged) rather than lost; D 50+60
		// bounded by 99. Lines keep the order they were first added in.
		both := buyer1
		both.token, both.cookie = guest.token, true
		r = h.do(both, "GET", "/api/v1/cart", nil).want(t, 200)
		v := viewOf(t, r)
		if got := v.lines(); got != "M-B=2 M-C=1 M-A=5 M-D=99" {
			t.Fatalf("merged cart %q", got)
		}
		if l := v.line(t, "M-C"); !l.Unavailable || l.UnavailableReason != "out_of_stock" {
			t.Fatalf("sold-out line %+v", l)
		}
		if c := r.cookie(CartCookie); c == nil || c.MaxAge >= 0 {
			t.Fatalf("guest cookie not cleared: %+v", c)
		}
		// The guest cart is retired: the token now opens an empty cart, and
		// presenting it again merges nothing twice.
		if v := viewOf(t, h.do(guest, "GET", "/api/v1/cart", nil)); len(v.Lines) != 0 {
			t.Fatalf("retired guest cart still has %q", v.lines())
		}
		if got := viewOf(t, h.do(both, "GET", "/api/v1/cart", nil)).lines(); got != "M-B=2 M-C=1 M-A=5 M-D=99" {
			t.Fatalf("second login request changed the cart to %q", got)
		}

		// A guest cart in another currency does not mix into a EUR cart.
		r = h.do(anon, "POST", "/api/v1/cart/items", item("M-USD", 1)).want(t, 200)
		usd := buyer1
		usd.token = r.header.Get(CartTokenHeader)
		if got := viewOf(t, h.do(usd, "POST", "/api/v1/cart/items", item("M-B", 1)).want(t, 200)).lines(); got != "M-B=3 M-C=1 M-A=5 M-D=99" {
			t.Fatalf("cart after merging a USD guest cart %q", got)
		}
		// Into an empty user cart a guest cart comes over whole.
		r = h.do(anon, "POST", "/api/v1/cart/items", item("M-USD", 2)).want(t, 200)
		fresh := buyer2
		fresh.token = r.header.Get(CartTokenHeader)
		if got := viewOf(t, h.do(fresh, "GET", "/api/v1/cart", nil)).lines(); got != "M-USD=2" {
			t.Fatalf("fresh user's merged cart %q", got)
		}
	})
}

// TestCartIsolation: a buyer only ever reaches their own cart, and a cart
// token never opens a user's cart.
func TestCartIsolation(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		h.stock(sellerA, "I-1", 10)
		h.do(buyer1, "POST", "/api/v1/cart/items", item("I-1", 2)).want(t, 200)

		// Another buyer sees and changes only their own (empty) cart.
		if v := viewOf(t, h.do(buyer2, "GET", "/api/v1/cart", nil).want(t, 200)); len(v.Lines) != 0 {
			t.Fatalf("buyer2 sees %q", v.lines())
		}
		h.do(buyer2, "PATCH", "/api/v1/cart/items/I-1", map[string]any{"quantity": 1}).want(t, 404)
		h.do(buyer2, "DELETE", "/api/v1/cart/items/I-1", nil).want(t, 200)
		h.do(buyer2, "DELETE", "/api/v1/cart", nil).want(t, 200)

		// Tokens made from the user's id, its storage key or anything else
		// open (empty) guest carts, never the user's.
		sum := sha256.Sum256([]byte(buyer1.id))
		forged := []string{
			buyer1.id, "u:" + buyer1.id, "u:buyer-1",
			base64.RawURLEncoding.EncodeToString([]byte("u:buyer-1" + strings.Repeat("x", 23))),
			base64.RawURLEncoding.EncodeToString(sum[:]),
			hex.EncodeToString(sum[:]),
		}
		for _, tok := range forged {
			for _, cookie := range []bool{false, true} {
				v := viewOf(t, h.do(user{token: tok, cookie: cookie}, "GET", "/api/v1/cart", nil).want(t, 200))
				if len(v.Lines) != 0 {
					t.Fatalf("token %q opened %q", tok, v.lines())
				}
				h.do(user{token: tok, cookie: cookie}, "PATCH", "/api/v1/cart/items/I-1", map[string]any{"quantity": 9}).want(t, 404)
			}
		}
		// A guest token that was merged into buyer1's cart does not open it.
		r := h.do(anon, "POST", "/api/v1/cart/items", item("I-1", 1)).want(t, 200)
		tok := r.header.Get(CartTokenHeader)
		withTok := buyer1
		withTok.token = tok
		h.do(withTok, "GET", "/api/v1/cart", nil).want(t, 200)
		if v := viewOf(t, h.do(user{token: tok}, "GET", "/api/v1/cart", nil)); len(v.Lines) != 0 {
			t.Fatalf("merged token opened %q", v.lines())
		}
		if got := viewOf(t, h.do(buyer1, "GET", "/api/v1/cart", nil)).lines(); got != "I-1=3" {
			t.Fatalf("buyer1's cart %q", got)
		}
	})
}

func TestCartRPC(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		h.stock(sellerA, "R-1", 10)
		h.stock(sellerA, "R-2", 10)
		h.do(buyer1, "POST", "/api/v1/cart/items", item("R-1", 2)).want(t, 200)
		h.do(buyer1, "POST", "/api/v1/cart/items", item("R-2", 1)).want(t, 200)
		h.catalog.put("R-2", sellerA.id, ProductActive, 1500, "EUR")

		res, err := h.carts.GetCart(ctx, connect.NewRequest(&cartv1.GetCartRequest{UserId: buyer1.id}))
		if err != nil {
			t.Fatal(err)
		}
		c := res.Msg.GetCart()
		if c.GetUserId() != buyer1.id || len(c.GetLines()) != 2 || c.GetSubtotal().GetAmount() != 3500 || c.GetSubtotal().GetCurrency() != "EUR" {
			t.Fatalf("cart %v", c)
		}
		if l := c.GetLines()[1]; l.GetSku() != "R-2" || l.GetUnitPrice().GetAmount() != 1500 || l.GetLineTotal().GetAmount() != 1500 ||
			l.GetSellerId() != sellerA.id || l.GetTitle() != "Title of R-2" {
			t.Fatalf("line %v", l)
		}
		for range 2 { // idempotent
			if _, err := h.carts.ClearCart(ctx, connect.NewRequest(&cartv1.ClearCartRequest{UserId: buyer1.id})); err != nil {
				t.Fatal(err)
			}
		}
		res, err = h.carts.GetCart(ctx, connect.NewRequest(&cartv1.GetCartRequest{UserId: buyer1.id}))
		if err != nil || len(res.Msg.GetCart().GetLines()) != 0 || res.Msg.GetCart().GetSubtotal() != nil {
			t.Fatalf("cleared cart %v, %v", res, err)
		}
		for _, id := range []string{"", "a b", strings.Repeat("x", MaxUserIDLen+1)} {
			_, err := h.carts.GetCart(ctx, connect.NewRequest(&cartv1.GetCartRequest{UserId: id}))
			_, err2 := h.carts.ClearCart(ctx, connect.NewRequest(&cartv1.ClearCartRequest{UserId: id}))
			if connectCodeOf(err) != connect.CodeInvalidArgument || connectCodeOf(err2) != connect.CodeInvalidArgument {
				t.Fatalf("user id %q: %v, %v", id, err, err2)
			}
		}
	})
}
