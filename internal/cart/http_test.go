package cart

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestBadInput: every malformed request gets a 4xx problem document and
// writes nothing, on every store.
func TestBadInput(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		h.stock(sellerA, "OK-1", 10)
		r := h.do(anon, "POST", "/api/v1/cart/items", item("OK-1", 1)).want(t, 200)
		guest := user{token: r.header.Get(CartTokenHeader)}
		h.do(buyer1, "POST", "/api/v1/cart/items", item("OK-1", 2)).want(t, 200)
		before := snapshot(t, h)

		long := strings.Repeat("A", MaxSKULen+1)
		huge := `{"sku":"OK-1","quantity":1,"pad":"` + strings.Repeat("x", 5000) + `"}`
		cases := []struct {
			name   string
			who    user
			method string
			path   string
			body   any
			status int
		}{
			{"empty body", buyer1, "POST", "/api/v1/cart/items", "", 400},
			{"truncated JSON", buyer1, "POST", "/api/v1/cart/items", `{"sku":"OK-1",`, 400},
			{"not JSON", guest, "POST", "/api/v1/cart/items", `sku=OK-1`, 400},
			{"array", buyer1, "POST", "/api/v1/cart/items", `[{"sku":"OK-1","quantity":1}]`, 400},
			{"two objects", buyer1, "POST", "/api/v1/cart/items", `{"sku":"OK-1","quantity":1}{"sku":"OK-1","quantity":1}`, 400},
			{"null", buyer1, "POST", "/api/v1/cart/items", `null`, 400},
			{"unknown field", buyer1, "POST", "/api/v1/cart/items", `{"sku":"OK-1","quantity":1,"price":1}`, 400},
			{"missing sku", buyer1, "POST", "/api/v1/cart/items", `{"quantity":1}`, 400},
			{"missing quantity", guest, "POST", "/api/v1/cart/items", `{"sku":"OK-1"}`, 400},
			{"sku not a string", buyer1, "POST", "/api/v1/cart/items", `{"sku":12,"quantity":1}`, 400},
			{"quantity a string", buyer1, "POST", "/api/v1/cart/items", `{"sku":"OK-1","quantity":"1"}`, 400},
			{"quantity fractional", buyer1, "POST", "/api/v1/cart/items", `{"sku":"OK-1","quantity":1.5}`, 400},
			{"quantity zero", guest, "POST", "/api/v1/cart/items", item("OK-1", 0), 400},
			{"quantity negative", buyer1, "POST", "/api/v1/cart/items", item("OK-1", -3), 400},
			{"quantity 100", buyer1, "POST", "/api/v1/cart/items", item("OK-1", 100), 400},
			{"quantity overflow", buyer1, "POST", "/api/v1/cart/items", `{"sku":"OK-1","quantity":1e30}`, 400},
			{"empty sku", buyer1, "POST", "/api/v1/cart/items", item("", 1), 400},
			{"sku with space", buyer1, "POST", "/api/v1/cart/items", item("OK 1", 1), 400},
			{"sku with slash", buyer1, "POST", "/api/v1/cart/items", item("../OK-1", 1), 400},
			{"sku with colon", buyer1, "POST", "/api/v1/cart/items", item("u:OK-1", 1), 400},
			{"sku too long", buyer1, "POST", "/api/v1/cart/items", item(long, 1), 400},
			{"sku not UTF-8", buyer1, "POST", "/api/v1/cart/items", "{\"sku\":\"OK-\xff\",\"quantity\":1}", 400},
			{"body too large", buyer1, "POST", "/api/v1/cart/items", huge, 413},
			{"patch without quantity", buyer1, "PATCH", "/api/v1/cart/items/OK-1", `{}`, 400},
			{"patch to zero", guest, "PATCH", "/api/v1/cart/items/OK-1", `{"quantity":0}`, 400},
			{"patch above 99", buyer1, "PATCH", "/api/v1/cart/items/OK-1", `{"quantity":500}`, 400},
			{"patch bad sku", buyer1, "PATCH", "/api/v1/cart/items/OK%201", `{"quantity":1}`, 400},
			{"patch unknown field", buyer1, "PATCH", "/api/v1/cart/items/OK-1", `{"quantity":1,"sku":"X"}`, 400},
			{"delete bad sku", guest, "DELETE", "/api/v1/cart/items/OK%3B1", nil, 400},
			{"delete long sku", buyer1, "DELETE", "/api/v1/cart/items/" + long, nil, 400},
			{"wrong method on the cart", buyer1, "PUT", "/api/v1/cart", `{}`, 405},
			{"wrong method on items", buyer1, "GET", "/api/v1/cart/items", nil, 405},
			{"no such cart path", buyer1, "GET", "/api/v1/cart/everything", nil, 404},
			{"stock without on_hand", sellerA, "PUT", "/api/v1/inventory/OK-1", `{"low_threshold":1}`, 400},
			{"stock negative", sellerA, "PUT", "/api/v1/inventory/OK-1", `{"on_hand":-1}`, 400},
			{"stock too large", sellerA, "PUT", "/api/v1/inventory/OK-1", `{"on_hand":1000000000001}`, 400},
			{"stock overflow", sellerA, "PUT", "/api/v1/inventory/OK-1", `{"on_hand":99999999999999999999}`, 400},
			{"stock as string", sellerA, "PUT", "/api/v1/inventory/OK-1", `{"on_hand":"5"}`, 400},
			{"threshold negative", sellerA, "PUT", "/api/v1/inventory/OK-1", `{"on_hand":5,"low_threshold":-1}`, 400},
			{"stock unknown field", sellerA, "PUT", "/api/v1/inventory/OK-1", `{"on_hand":5,"reserved":0}`, 400},
			{"stock bad sku", sellerA, "PUT", "/api/v1/inventory/OK%20%201", `{"on_hand":5}`, 400},
			{"adjust zero", sellerA, "POST", "/api/v1/inventory/OK-1/adjustments", `{"delta":0,"reason":"x"}`, 400},
			{"adjust without reason", sellerA, "POST", "/api/v1/inventory/OK-1/adjustments", `{"delta":1}`, 400},
			{"adjust blank reason", sellerA, "POST", "/api/v1/inventory/OK-1/adjustments", `{"delta":1,"reason":"  "}`, 400},
			{"adjust long reason", sellerA, "POST", "/api/v1/inventory/OK-1/adjustments", `{"delta":1,"reason":"` + strings.Repeat("é", MaxNoteLen+1) + `"}`, 400},
			{"adjust control characters", sellerA, "POST", "/api/v1/inventory/OK-1/adjustments", `{"delta":1,"reason":"a\u0000b"}`, 400},
			{"adjust huge", sellerA, "POST", "/api/v1/inventory/OK-1/adjustments", `{"delta":-1000000000001,"reason":"x"}`, 400},
			{"list page size zero", sellerA, "GET", "/api/v1/inventory?page_size=0", nil, 400},
			{"list page size huge", sellerA, "GET", "/api/v1/inventory?page_size=100000", nil, 400},
			{"list page size text", sellerA, "GET", "/api/v1/inventory?page_size=ten", nil, 400},
			{"list bad token", sellerA, "GET", "/api/v1/inventory?page_token=%21%21", nil, 400},
			{"list forged token", sellerA, "GET", "/api/v1/inventory?page_token=" + base64.RawURLEncoding.EncodeToString([]byte("' OR 1=1")), nil, 400},
			{"ledger bad token", sellerA, "GET", "/api/v1/inventory/OK-1/ledger?page_token=zz%3D%3D", nil, 400},
			{"wrong method on stock", sellerA, "DELETE", "/api/v1/inventory/OK-1", nil, 405},
			{"no such inventory path", sellerA, "GET", "/api/v1/inventory/OK-1/history", nil, 404},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := h.do(c.who, c.method, c.path, c.body).want(t, c.status)
				p := r.problem(t)
				if int(p["status"].(float64)) != c.status {
					t.Fatalf("problem %v", p)
				}
			})
		}
		t.Run("wrong content type", func(t *testing.T) {
			res, err := h.srv.Client().Post(h.srv.URL+"/api/v1/cart/items", "text/plain", strings.NewReader(`{"sku":"OK-1","quantity":1}`))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 415 || res.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d, %s", res.StatusCode, res.Header.Get("Content-Type"))
			}
		})
		if after := snapshot(t, h); after != before {
			t.Fatalf("bad input wrote: %+v -> %+v", before, after)
		}
		if got := viewOf(t, h.do(buyer1, "GET", "/api/v1/cart", nil)).lines(); got != "OK-1=2" {
			t.Fatalf("buyer1's cart %q", got)
		}
		if got := viewOf(t, h.do(guest, "GET", "/api/v1/cart", nil)).lines(); got != "OK-1=1" {
			t.Fatalf("guest cart %q", got)
		}
	})
}

func FuzzGuestToken(f *testing.F) {
	tok, _ := newGuestToken()
	for _, s := range []string{tok, "", "u:buyer-1", strings.Repeat("A", 43), strings.Repeat("_", 43), tok[:42] + "=", tok + "A"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, ok := parseGuestToken(s)
		if !ok {
			return
		}
		if !k.Guest() || !strings.HasPrefix(k.String(), "g:") || len(k.String()) != 2+64 {
			t.Fatalf("token %q gave key %q", s, k.String())
		}
		raw, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || base64.RawURLEncoding.EncodeToString(raw) != s {
			t.Fatalf("accepted non-canonical token %q", s)
		}
	})
}

func FuzzValidators(f *testing.F) {
	for _, s := range []string{"SKU-1", "", "a b", "u:x", strings.Repeat("x", 200), "\xff", "é", "order-01a2:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validID(s, MaxOrderIDLen) {
			if len(s) == 0 || len(s) > MaxOrderIDLen || strings.ContainsAny(s, " /\\'\"%;") || !utf8.ValidString(s) {
				t.Fatalf("validID accepted %q", s)
			}
		}
		if checkSKU("sku", s) == nil && (strings.Contains(s, ":") || len(s) > MaxSKULen) {
			t.Fatalf("checkSKU accepted %q", s)
		}
		if validNote(s) && (!utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxNoteLen || strings.ContainsAny(s, "\x00\n\r\t")) {
			t.Fatalf("validNote accepted %q", s)
		}
	})
}
