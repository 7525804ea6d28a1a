package e2e

import (
	"net/http"
	"testing"
	"time"
)

type product struct {
	ID       string `json:"id"`
	Slug     string `json:"slug"`
	Status   string `json:"status"`
	Variants []struct {
		SKU          string `json:"sku"`
		Availability string `json:"availability"`
	} `json:"variants"`
}

type cartView struct {
	Lines []struct {
		SKU      string `json:"sku"`
		Quantity int    `json:"quantity"`
	} `json:"lines"`
	Subtotal *struct {
		Amount   int64  `json:"amount"`
		Currency string `json:"currency"`
	} `json:"subtotal"`
}

// TestShopJourney: an admin makes a category, a seller lists a product and
// sets its stock (and sees the availability), a guest fills a cart,
// registers, logs in and finds the cart merged; attackers are refused.
func TestShopJourney(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := start(t, nil, "--data-dir="+dir, "--seed=false")
	shopJourney(t, p.URL, admin(t, p.URL, dir))
}

// shopJourney runs against any shape; adm is a signed-in admin.
func shopJourney(t *testing.T, base string, adm *client) {
	t.Helper()

	var cat struct {
		ID string `json:"id"`
	}
	adm.do("POST", "/api/v1/categories", map[string]any{"name": "Knitwear", "slug": "knitwear"}).expect(t, http.StatusCreated).decode(t, &cat)

	seller := signUp(t, base, "seller@e2e.test", "seller", map[string]any{"store_name": "Fjellgarn"})
	var prod product
	seller.do("POST", "/api/v1/products", map[string]any{
		"title": "Merino wool crew sweater", "description": "Soft and warm.", "brand": "Fjellgarn",
		"category_id": cat.ID, "status": "active", "attributes": map[string]string{"material": "merino"},
		"variants": []map[string]any{{"sku": "FJ-CREW-M-NAVY", "options": map[string]string{"size": "M", "colour": "navy"},
			"price": map[string]any{"amount": 8900, "currency": "EUR"}}},
	}).expect(t, http.StatusCreated).decode(t, &prod)

	buyerView := &client{t: t, base: base}
	buyerView.do("GET", "/api/v1/products/"+prod.ID, nil).expect(t, http.StatusOK).decode(t, &prod)
	if prod.Variants[0].Availability != "out_of_stock" {
		t.Fatalf("before stock: %+v", prod.Variants)
	}
	seller.do("PUT", "/api/v1/inventory/FJ-CREW-M-NAVY", map[string]any{"on_hand": 10}).expect(t, http.StatusCreated)
	eventually(t, "availability from stock events", 10*time.Second, func() bool {
		buyerView.do("GET", "/api/v1/products/"+prod.Slug, nil).expect(t, http.StatusOK).decode(t, &prod)
		return prod.Variants[0].Availability == "in_stock"
	})

	// Another seller can neither edit the product nor its stock; a buyer
	// cannot create products.
	other := signUp(t, base, "other@e2e.test", "seller", map[string]any{"store_name": "Other"})
	other.do("PATCH", "/api/v1/products/"+prod.ID, map[string]any{"title": "Mine now"}).expect(t, http.StatusNotFound)
	other.do("PUT", "/api/v1/inventory/FJ-CREW-M-NAVY", map[string]any{"on_hand": 0}).expect(t, http.StatusNotFound)

	// A guest fills a cart.
	guest := &client{t: t, base: base, headers: map[string]string{}}
	add := guest.do("POST", "/api/v1/cart/items", map[string]any{"sku": "FJ-CREW-M-NAVY", "quantity": 2})
	if add.Status != http.StatusOK && add.Status != http.StatusCreated {
		t.Fatalf("guest add: %d %s", add.Status, add.Body)
	}
	token := add.Header.Get("X-Cart-Token")
	if token == "" {
		t.Fatal("no cart token for the guest")
	}
	guest.headers["X-Cart-Token"] = token
	guest.do("POST", "/api/v1/cart/items", map[string]any{"sku": "FJ-CREW-M-NAVY", "quantity": 99}).expect(t, http.StatusConflict)

	// The guest registers and logs in: the first request with both merges.
	guest.do("POST", "/api/v1/auth/register", map[string]any{"email": "guest@e2e.test", "password": "guest passphrase e2e", "name": "Guest"}).expect(t, http.StatusCreated)
	signIn(t, guest, "guest@e2e.test", "guest passphrase e2e")
	var cart cartView
	guest.do("GET", "/api/v1/cart", nil).expect(t, http.StatusOK).decode(t, &cart)
	if len(cart.Lines) != 1 || cart.Lines[0].Quantity != 2 || cart.Subtotal == nil || cart.Subtotal.Amount != 17800 {
		t.Fatalf("merged cart: %+v", cart)
	}
	delete(guest.headers, "X-Cart-Token")
	guest.do("GET", "/api/v1/cart", nil).expect(t, http.StatusOK).decode(t, &cart)
	if len(cart.Lines) != 1 {
		t.Fatalf("user cart after merge: %+v", cart)
	}

	// The retired guest token opens nothing; another buyer sees only their own cart.
	stranger := &client{t: t, base: base, headers: map[string]string{"X-Cart-Token": token}}
	stranger.do("GET", "/api/v1/cart", nil).expect(t, http.StatusOK).decode(t, &cart)
	if len(cart.Lines) != 0 {
		t.Fatalf("retired guest token still opens a cart: %+v", cart)
	}
	buyer := signUp(t, base, "buyer2@e2e.test", "buyer", nil)
	buyer.do("GET", "/api/v1/cart", nil).expect(t, http.StatusOK).decode(t, &cart)
	if len(cart.Lines) != 0 {
		t.Fatalf("another buyer sees a cart: %+v", cart)
	}
	buyer.do("POST", "/api/v1/products", map[string]any{"title": "x"}).expect(t, http.StatusForbidden)
}
