package e2e

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"testing"
	"time"
)

type searchResult struct {
	Items []struct {
		ID      string `json:"id"`
		Title   string `json:"title"`
		InStock bool   `json:"in_stock"`
		Seller  struct {
			Name string `json:"name"`
		} `json:"seller"`
	} `json:"items"`
	Total  int `json:"total"`
	Facets struct {
		Category []struct {
			Value string `json:"value"`
			Count int    `json:"count"`
		} `json:"category"`
		Brand []struct {
			Value string `json:"value"`
			Count int    `json:"count"`
		} `json:"brand"`
		Price []struct {
			Label string `json:"label"`
			Count int    `json:"count"`
		} `json:"price"`
	} `json:"facets"`
}

func (r searchResult) has(id string) bool {
	for _, it := range r.Items {
		if it.ID == id {
			return true
		}
	}
	return false
}

// TestSellerListsBuyerFinds: a seller creates a product with a variant, a
// price and an image; within seconds a buyer finds it by a misspelled word,
// filters it by category and price, and sees the facets count it;
// archiving it removes it from search.
func TestSellerListsBuyerFinds(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := start(t, nil, "--data-dir="+dir, "--seed=false")
	searchJourney(t, p.URL, admin(t, p.URL, dir))
}

// searchJourney runs against any shape; adm is a signed-in admin.
func searchJourney(t *testing.T, base string, adm *client) {
	t.Helper()
	var clothing, knitwear struct {
		ID string `json:"id"`
	}
	adm.do("POST", "/api/v1/categories", map[string]any{"name": "Apparel", "slug": "apparel"}).expect(t, http.StatusCreated).decode(t, &clothing)
	adm.do("POST", "/api/v1/categories", map[string]any{"name": "Jumpers", "slug": "jumpers", "parent_id": clothing.ID}).
		expect(t, http.StatusCreated).decode(t, &knitwear)

	seller := signUp(t, base, "knits@e2e.test", "seller", map[string]any{"store_name": "Fjellgarn"})
	var prod product
	seller.do("POST", "/api/v1/products", map[string]any{
		"title": "Merino wool crew sweater", "description": "A warm sweater knitted from fine merino.", "brand": "Fjellgarn",
		"category_id": knitwear.ID, "status": "active",
		"variants": []map[string]any{{"sku": "FJ-SRCH-1", "options": map[string]string{"size": "M"},
			"price": map[string]any{"amount": 8900, "currency": "EUR"}}},
	}).expect(t, http.StatusCreated).decode(t, &prod)
	uploadImage(t, seller, prod.ID)
	seller.do("PUT", "/api/v1/inventory/FJ-SRCH-1", map[string]any{"on_hand": 3}).expect(t, http.StatusCreated)

	buyer := &client{t: t, base: base}
	var res searchResult
	eventually(t, "the product in search by a misspelled word", 10*time.Second, func() bool {
		buyer.do("GET", "/api/v1/search?q=merino+sweter", nil).expect(t, http.StatusOK).decode(t, &res)
		return res.has(prod.ID)
	})
	eventually(t, "in stock in search", 10*time.Second, func() bool {
		buyer.do("GET", "/api/v1/search?q=sweter&in_stock=true", nil).expect(t, http.StatusOK).decode(t, &res)
		return res.has(prod.ID)
	})
	buyer.do("GET", "/api/v1/search?q=sweater&category=apparel&min_price=5000&max_price=10000", nil).expect(t, http.StatusOK).decode(t, &res)
	if !res.has(prod.ID) {
		t.Fatalf("category (parent) and price filters lost the product: %+v", res)
	}
	for _, it := range res.Items {
		if it.ID == prod.ID && it.Seller.Name != "Fjellgarn" {
			t.Errorf("seller's store name in search: %q, want Fjellgarn", it.Seller.Name)
		}
	}
	counted := map[string]int{}
	for _, f := range res.Facets.Category {
		counted["category:"+f.Value] = f.Count
	}
	for _, f := range res.Facets.Brand {
		counted["brand:"+f.Value] = f.Count
	}
	if counted["category:jumpers"] != 1 || counted["category:apparel"] != 1 || counted["brand:Fjellgarn"]+counted["brand:fjellgarn"] != 1 {
		t.Fatalf("facets: %+v", res.Facets)
	}
	buyer.do("GET", "/api/v1/search?q=sweater&max_price=5000", nil).expect(t, http.StatusOK).decode(t, &res)
	if res.has(prod.ID) {
		t.Fatal("max_price filter kept an 89 EUR product")
	}
	buyer.do("GET", "/api/v1/search?page_size=1000", nil).expect(t, http.StatusBadRequest)
	buyer.do("GET", "/api/v1/search?page_token=%%%", nil).expect(t, http.StatusBadRequest)

	seller.do("DELETE", "/api/v1/products/"+prod.ID, nil).expect(t, http.StatusOK)
	eventually(t, "archived product gone from search", 10*time.Second, func() bool {
		buyer.do("GET", "/api/v1/search?q=merino", nil).expect(t, http.StatusOK).decode(t, &res)
		return !res.has(prod.ID)
	})
}

func uploadImage(t *testing.T, c *client, productID string) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for x := range 32 {
		for y := range 32 {
			img.Set(x, y, color.RGBA{uint8(x * 8), uint8(y * 8), 120, 255})
		}
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("image", "photo.png")
	_ = png.Encode(fw, img)
	mw.Close()
	req, _ := http.NewRequest("POST", c.base+"/api/v1/products/"+productID+"/images", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
}
