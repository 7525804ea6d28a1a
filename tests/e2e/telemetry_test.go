package e2e

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestTracesAreExportedOverOTLP: with OTEL_EXPORTER_OTLP_ENDPOINT set, the
// process sends spans of the requests it serves to the collector.
func TestTracesAreExportedOverOTLP(t *testing.T) {
	t.Parallel()
	var posts atomic.Int32
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" && r.ContentLength != 0 {
			posts.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	p := start(t, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + collector.URL, "OTEL_BSP_SCHEDULE_DELAY=100"},
		"--data-dir="+t.TempDir())
	(&client{t: t, base: p.URL}).do("GET", "/healthz", nil).expect(t, http.StatusOK)
	eventually(t, "spans at the collector", 15*time.Second, func() bool { return posts.Load() > 0 })
}
