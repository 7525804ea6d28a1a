package cart

// This file holds the service's REST route table and what its handlers
// share. Cart handlers are in cart_http.go, inventory handlers in
// inventory_http.go.

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/httpx"
)

// maxBody bounds every request body of this service; they are all tiny.
const maxBody = 4 << 10

// Page sizes of list endpoints.
const (
	defaultPageSize = 50
	maxPageSize     = 200
)

func (s *Service) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/cart", httpx.HandlerFunc(s.getCart))
	mux.Handle("DELETE /api/v1/cart", httpx.HandlerFunc(s.clearCart))
	mux.Handle("POST /api/v1/cart/items", httpx.HandlerFunc(s.addItem))
	mux.Handle("PATCH /api/v1/cart/items/{sku}", httpx.HandlerFunc(s.setItem))
	mux.Handle("DELETE /api/v1/cart/items/{sku}", httpx.HandlerFunc(s.removeItem))

	mux.Handle("GET /api/v1/inventory", httpx.HandlerFunc(s.listStock))
	mux.Handle("GET /api/v1/inventory/{sku}", httpx.HandlerFunc(s.getStock))
	mux.Handle("PUT /api/v1/inventory/{sku}", httpx.HandlerFunc(s.putStock))
	mux.Handle("POST /api/v1/inventory/{sku}/adjustments", httpx.HandlerFunc(s.adjustStock))
	mux.Handle("GET /api/v1/inventory/{sku}/ledger", httpx.HandlerFunc(s.stockLedger))

	// Everything else under our prefixes answers with a problem document
	// rather than the mux's plain-text 404 and 405.
	noRoute := httpx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); strings.HasPrefix(pattern, m+" ") {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			return errs.E(errs.NotFound, "no such resource")
		}
		// No domain code maps to 405, and it needs its Allow header, so it
		// is written here rather than returned.
		w.Header().Set("Allow", strings.Join(allow, ", "))
		httpx.WriteProblem(w, r, httpx.Problem{Status: http.StatusMethodNotAllowed, Code: errs.Invalid,
			Detail: fmt.Sprintf("use %s", strings.Join(allow, " or "))})
		return nil
	})
	for _, p := range []string{"/api/v1/cart", "/api/v1/cart/", "/api/v1/inventory", "/api/v1/inventory/"} {
		mux.Handle(p, noRoute)
	}
	return mux
}

// pathSKU returns the {sku} path value after validating it.
func pathSKU(r *http.Request) (string, error) {
	sku := r.PathValue("sku")
	return sku, checkSKU("sku", sku)
}

// page reads page_size and page_token; tokens are opaque base64url to
// clients, and must decode to something valid for the list.
func page(r *http.Request, valid func(string) bool) (size int, after string, err error) {
	q := r.URL.Query()
	size = defaultPageSize
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			return 0, "", errs.Field("page_size", fmt.Sprintf("must be between 1 and %d", maxPageSize))
		}
		size = n
	}
	if v := q.Get("page_token"); v != "" {
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(v) > 256 || !valid(string(raw)) {
			return 0, "", errs.Field("page_token", "is not a token this list returned")
		}
		after = string(raw)
	}
	return size, after, nil
}

func pageToken(last string) string { return base64.RawURLEncoding.EncodeToString([]byte(last)) }

// required reports a missing JSON field.
func required(f errs.Fields, present bool, name string) {
	f.Check(present, name, "is required")
}
