package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mallhive/mallhive/internal/platform/httpx"
)

func TestOpenAPIIsOneValidDocumentWhosePathsAreRouted(t *testing.T) {
	t.Parallel()
	raw, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	for path := range doc.Paths {
		if path == "/healthz" || path == "/readyz" {
			continue
		}
		if ServiceOf(strings.Split(path, "{")[0]) == "" {
			t.Errorf("documented path %s has no route in the gateway table", path)
		}
	}
	// YAML flow mappings split unquoted text at commas, leaving junk keys
	// with null values: no key of the document may be null.
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if e == nil && k != "default" && k != "example" && k != "const" {
					t.Errorf("%s: %q is null (an unquoted comma in YAML?)", path, k)
				}
				walk(e, path+"/"+k)
			}
		case []any:
			for _, e := range x {
				walk(e, path)
			}
		}
	}
	var whole map[string]any
	_ = json.Unmarshal(raw, &whole)
	walk(whole, "#")

	// Every $ref points at something defined.
	var all map[string]any
	_ = json.Unmarshal(raw, &all)
	for _, ref := range refs(all) {
		if !resolves(all, ref) {
			t.Errorf("unresolved $ref %s", ref)
		}
	}
}

func refs(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "$ref" {
				out = append(out, s)
			} else {
				out = append(out, refs(e)...)
			}
		}
	case []any:
		for _, e := range x {
			out = append(out, refs(e)...)
		}
	}
	return out
}

func resolves(doc map[string]any, ref string) bool {
	if !strings.HasPrefix(ref, "#/") {
		return false
	}
	var cur any = doc
	for _, part := range strings.Split(ref[2:], "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}

func TestServiceOf(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"/api/v1/auth/login": "auth", "/api/v1/users/me": "auth", "/.well-known/jwks.json": "auth",
		"/api/v1/products": "catalog", "/api/v1/products/abc": "catalog", "/api/v1/cart/items": "cart",
		"/api/v1/search/suggest": "search", "/api/v1/unknown": "",
	} {
		if got := ServiceOf(path); got != want {
			t.Errorf("ServiceOf(%s) = %q, want %q", path, got, want)
		}
	}
}

func TestMountProxiesRemoteServicesAndMountsLocalOnes(t *testing.T) {
	t.Parallel()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "remote "+r.URL.Path+" fwd="+r.Header.Get("X-Forwarded-For")+" q="+r.URL.RawQuery)
	}))
	defer upstream.Close()
	local := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "local "+r.URL.Path) })

	build := func(proxy bool) *httptest.Server {
		mux := http.NewServeMux()
		Mount(mux, func(s string) http.Handler {
			if s == "catalog" {
				return local
			}
			return nil
		}, proxy, func(s string) string {
			if s == "auth" {
				return upstream.URL
			}
			return ""
		})
		return httptest.NewServer(mux)
	}
	gw := build(true)
	defer gw.Close()
	get := func(base, path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if _, body := get(gw.URL, "/api/v1/products/x"); body != "local /api/v1/products/x" {
		t.Errorf("local route: %q", body)
	}
	if _, body := get(gw.URL, "/api/v1/auth/login"); !strings.HasPrefix(body, "remote /api/v1/auth/login fwd=127.0.0.1") {
		t.Errorf("proxied route: %q", body)
	}
	// A malformed query reaches the service untouched (it answers 400 in
	// both shapes), rather than being cleaned by the proxy.
	if _, body := get(gw.URL, "/api/v1/auth/x?page_token=%%%&a=1"); !strings.HasSuffix(body, " q=page_token=%%%&a=1") {
		t.Errorf("proxied query: %q", body)
	}
	if status, _ := get(gw.URL, "/api/v1/cart"); status != http.StatusNotFound {
		t.Errorf("service with no address: %d, want 404", status)
	}
	plain := build(false)
	defer plain.Close()
	if status, _ := get(plain.URL, "/api/v1/auth/login"); status != http.StatusNotFound {
		t.Errorf("a non-gateway process proxied: %d", status)
	}
}

func TestRateLimiterAnswers429WithRetryAfter(t *testing.T) {
	t.Parallel()
	rl := NewRateLimiter(1, 3)
	h := httpx.ClientIPs(nil)(rl.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	from := func(addr, path string) *http.Request {
		r := httptest.NewRequest("GET", path, nil)
		r.RemoteAddr = addr
		return r
	}
	codes := []int{}
	for range 5 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, from("203.0.113.9:4000", "/api/v1/products"))
		codes = append(codes, rec.Code)
		if rec.Code == 429 && rec.Header().Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if codes[2] != 200 || codes[3] != 429 {
		t.Fatalf("codes %v: want the burst of 3 then 429", codes)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, from("203.0.113.9:4000", "/healthz"))
	if rec.Code != 200 {
		t.Fatalf("non-API path limited: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, from("198.51.100.1:4000", "/api/v1/products"))
	if rec.Code != 200 {
		t.Fatalf("another client shares the first one's bucket: %d", rec.Code)
	}
	for range 10 {
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, from("127.0.0.1:4000", "/api/v1/products"))
		if rec.Code != 200 {
			t.Fatalf("loopback client limited: %d", rec.Code)
		}
	}
	if NewRateLimiter(0, 1) != nil {
		t.Fatal("rate 0 must disable limiting")
	}
}
