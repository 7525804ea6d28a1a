package gateway

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed openapi/*.yaml
var openapiFS embed.FS

//go:embed apidocs
var apidocsFS embed.FS

// OpenAPI merges openapi/base.yaml with each service's fragment
// (openapi/<service>.yaml: paths and components) into one OpenAPI 3.1
// document, rendered as JSON.
func OpenAPI() ([]byte, error) {
	doc, err := loadYAML("openapi/base.yaml")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(openapiFS, "openapi/*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, name := range names {
		if name == "openapi/base.yaml" {
			continue
		}
		frag, err := loadYAML(name)
		if err != nil {
			return nil, err
		}
		if err := mergeInto(doc, frag, name); err != nil {
			return nil, err
		}
	}
	return json.MarshalIndent(doc, "", "  ")
}

func loadYAML(name string) (map[string]any, error) {
	b, err := openapiFS.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return m, nil
}

// mergeInto adds frag's paths, tags and components to doc; a name defined
// twice is an error so two fragments never silently overwrite each other.
func mergeInto(doc, frag map[string]any, name string) error {
	for _, section := range []string{"paths"} {
		if err := mergeMap(doc, frag, section, name); err != nil {
			return err
		}
	}
	if fc, ok := frag["components"].(map[string]any); ok {
		dc, _ := doc["components"].(map[string]any)
		if dc == nil {
			dc = map[string]any{}
			doc["components"] = dc
		}
		for kind := range fc {
			if err := mergeMap(dc, fc, kind, name); err != nil {
				return err
			}
		}
	}
	if tags, ok := frag["tags"].([]any); ok {
		existing, _ := doc["tags"].([]any)
		seen := map[any]bool{}
		for _, t := range existing {
			if m, ok := t.(map[string]any); ok {
				seen[m["name"]] = true
			}
		}
		for _, t := range tags {
			if m, ok := t.(map[string]any); ok && !seen[m["name"]] {
				seen[m["name"]] = true
				existing = append(existing, t)
			}
		}
		doc["tags"] = existing
	}
	return nil
}

func mergeMap(dst, src map[string]any, key, name string) error {
	s, ok := src[key].(map[string]any)
	if !ok {
		return nil
	}
	d, _ := dst[key].(map[string]any)
	if d == nil {
		d = map[string]any{}
		dst[key] = d
	}
	for k, v := range s {
		if _, dup := d[k]; dup {
			return fmt.Errorf("%s: %s %q is defined twice", name, key, k)
		}
		d[k] = v
	}
	return nil
}

// Pages serves the landing page, the OpenAPI document and the docs page.
type Pages struct {
	Services []string // running in this process
	Version  string
	openapi  []byte
}

// NewPages builds the pages, failing when the OpenAPI fragments do not merge.
func NewPages(services []string, version string) (*Pages, error) {
	doc, err := OpenAPI()
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	return &Pages{Services: services, Version: version, openapi: doc}, nil
}

// Mount registers the pages on mux.
func (p *Pages) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", p.landing)
	mux.HandleFunc("GET /api/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(p.openapi)
	})
	mux.HandleFunc("GET /api/docs", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(docsHTML))
	})
	assets, _ := fs.Sub(apidocsFS, "apidocs")
	mux.Handle("GET /api/docs/assets/", http.StripPrefix("/api/docs/assets/", cacheForever(http.FileServerFS(assets))))
}

func cacheForever(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if path.Ext(r.URL.Path) == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		h.ServeHTTP(w, r)
	})
}

func (p *Pages) landing(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = landingTmpl.Execute(w, map[string]any{"Services": strings.Join(p.Services, ", "), "Version": p.Version})
}

var landingTmpl = template.Must(template.New("landing").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MallHive</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;color:#222}
code{background:#f3f3f3;padding:.1rem .3rem;border-radius:3px}li{margin:.3rem 0}</style></head>
<body><h1>MallHive is running</h1>
<p>A multi-vendor marketplace. This process runs: <strong>{{.Services}}</strong> (version {{.Version}}).</p>
<ul>
<li><a href="/api/docs">API documentation</a> (<a href="/api/openapi.json">OpenAPI 3.1 document</a>)</li>
<li><a href="/healthz">/healthz</a>: liveness · <a href="/readyz">/readyz</a>: readiness · <a href="/metrics">/metrics</a>: Prometheus</li>
<li><a href="/.well-known/openid-configuration">OpenID configuration</a> · <a href="/.well-known/jwks.json">JWKS</a></li>
</ul>
<p>Try it: <code>curl -s localhost:8080/api/v1/auth/register -d '{"email":"me@example.com","password":"a long passphrase","name":"Me"}' -H 'Content-Type: application/json'</code></p>
</body></html>`))

const docsHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MallHive API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css"></head>
<body><div id="docs"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#docs", deepLinking: true});</script>
</body></html>`
