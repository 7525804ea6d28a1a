// Package gateway is MallHive's edge: one route table that sends each
// external path to the service that owns it. A service in the same process
// is mounted directly; one elsewhere is reverse-proxied to its
// MALLHIVE_<SERVICE>_URL. The gateway also rate-limits per client, serves
// the landing page, the OpenAPI document and its docs page.
package gateway

import (
	"flag"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/mallhive/mallhive/internal/platform/httpx"
)

// Route sends a path pattern (net/http ServeMux syntax, no method) to a service.
type Route struct {
	Pattern string
	Service string
}

// Routes is the one route table, used by every process in both shapes.
var Routes = []Route{
	{"/api/v1/auth/", "auth"},
	{"/api/v1/users/", "auth"},
	{"/api/v1/admin/users", "auth"},
	{"/api/v1/admin/users/", "auth"},
	{"/api/v1/admin/oauth-clients", "auth"},
	{"/api/v1/admin/oauth-clients/", "auth"},
	{"/.well-known/", "auth"},
	{"/oauth2/", "auth"},

	{"/api/v1/categories", "catalog"},
	{"/api/v1/categories/", "catalog"},
	{"/api/v1/products", "catalog"},
	{"/api/v1/products/", "catalog"},
	{"/api/v1/images/", "catalog"},

	{"/api/v1/search", "search"},
	{"/api/v1/search/", "search"},

	{"/api/v1/cart", "cart"},
	{"/api/v1/cart/", "cart"},
	{"/api/v1/inventory", "cart"},
	{"/api/v1/inventory/", "cart"},
}

// Config holds the gateway's own settings.
type Config struct {
	// RateLimit is the sustained requests per second allowed per client
	// address on /api/ (0 disables), with bursts up to RateBurst.
	RateLimit float64
	RateBurst int
}

// RegisterFlags registers the gateway flags under the "gateway." prefix.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Float64Var(&c.RateLimit, "gateway.rate-limit", 50, "requests per second per client address on /api/ (0: off)")
	fs.IntVar(&c.RateBurst, "gateway.rate-burst", 200, "burst size of the per-client rate limit")
}

// Mount adds the route table to mux. local returns the handler of a service
// running in this process (nil otherwise); when proxy is true (this process
// is a gateway) routes of other services are proxied to remote(service), and
// skipped when it is empty.
func Mount(mux *http.ServeMux, local func(service string) http.Handler, proxy bool, remote func(service string) string) {
	proxies := map[string]http.Handler{}
	for _, rt := range Routes {
		if h := local(rt.Service); h != nil {
			mux.Handle(rt.Pattern, h)
			continue
		}
		if !proxy {
			continue
		}
		p, ok := proxies[rt.Service]
		if !ok {
			if base := remote(rt.Service); base != "" {
				p = newProxy(rt.Service, base)
			}
			proxies[rt.Service] = p
		}
		if p != nil {
			mux.Handle(rt.Pattern, p)
		}
	}
}

// ServiceOf returns the service owning a path, for tests and docs.
func ServiceOf(path string) string {
	best, svc := "", ""
	for _, rt := range Routes {
		match := path == rt.Pattern || (strings.HasSuffix(rt.Pattern, "/") && strings.HasPrefix(path, rt.Pattern))
		if match && len(rt.Pattern) > len(best) {
			best, svc = rt.Pattern, rt.Service
		}
	}
	return svc
}

func newProxy(service, base string) http.Handler {
	target, err := url.Parse(base)
	if err != nil || target.Host == "" {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httpx.WriteProblem(w, r, httpx.Problem{Status: http.StatusBadGateway, Detail: service + " has no valid address"})
		})
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// Forward the query as sent: the service, not the proxy, decides
			// what a malformed parameter means (a 400 in both shapes).
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host // links and issuers use the public host
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			httpx.WriteProblem(w, r, httpx.Problem{Status: http.StatusBadGateway, Detail: service + " is unreachable"})
		},
	}
}
