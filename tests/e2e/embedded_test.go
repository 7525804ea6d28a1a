package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestEmbeddedStartsServesAndStopsCleanly: a fresh data dir, every service,
// the newcomer's pages, then SIGTERM and exit 0.
func TestEmbeddedStartsServesAndStopsCleanly(t *testing.T) {
	t.Parallel()
	p := start(t, nil, "--data-dir="+t.TempDir())
	c := &client{t: t, base: p.URL}

	landing := c.do("GET", "/", nil).expect(t, http.StatusOK)
	for _, want := range []string{"MallHive is running", "/api/docs", "/healthz"} {
		if !strings.Contains(string(landing.Body), want) {
			t.Errorf("landing page lacks %q", want)
		}
	}
	var doc map[string]any
	c.do("GET", "/api/openapi.json", nil).expect(t, http.StatusOK).decode(t, &doc)
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", doc["openapi"])
	}
	c.do("GET", "/api/docs", nil).expect(t, http.StatusOK)
	c.do("GET", "/healthz", nil).expect(t, http.StatusOK)
	metrics := c.do("GET", "/metrics", nil).expect(t, http.StatusOK)
	if !strings.Contains(string(metrics.Body), `mallhive_http_requests_total{method="GET",route="GET /healthz",status="200"}`) {
		t.Errorf("metrics lack the healthz request:\n%s", metrics.Body)
	}
	var problem map[string]any
	nf := c.do("GET", "/api/v1/nope", nil).expect(t, http.StatusNotFound)
	if ct := nf.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("404 content type %q, want a problem document", ct)
	}
	_ = json.Unmarshal(nf.Body, &problem)

	if err := p.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// TestTwoInstancesSideBySide: different data dirs and ports on one machine.
func TestTwoInstancesSideBySide(t *testing.T) {
	t.Parallel()
	a := start(t, nil, "--data-dir="+t.TempDir())
	b := start(t, nil, "--data-dir="+t.TempDir())
	if a.URL == b.URL {
		t.Fatal("both instances on one address")
	}
	for _, p := range []*proc{a, b} {
		(&client{t: t, base: p.URL}).do("GET", "/readyz", nil).expect(t, http.StatusOK)
	}
}
