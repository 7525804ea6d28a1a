package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TestTracingWithoutExporter: with no OTLP endpoint nothing is recorded,
// yet every request still has a trace id, which its log records carry and
// which travels on to the calls and events it makes; a sampled caller's
// trace is continued.
func TestTracingWithoutExporter(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	shutdown, err := SetupTracing(context.Background(), "test", "v0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })

	type seen struct {
		log       map[string]any
		outgoing  string // the traceparent a call or event made here would carry
		recording bool
	}
	serve := func(t *testing.T, traceparent string) seen {
		t.Helper()
		var buf bytes.Buffer
		log := NewLogger(&buf, 0)
		var s seen
		h := NewMetrics().Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.recording = trace.SpanFromContext(r.Context()).IsRecording()
			carrier := propagation.MapCarrier{}
			otel.GetTextMapPropagator().Inject(r.Context(), carrier)
			s.outgoing = carrier["traceparent"]
			log.InfoContext(r.Context(), "handled")
		}))
		req := httptest.NewRequest("GET", "/api/v1/products/p1", nil)
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
		if err := json.Unmarshal(buf.Bytes(), &s.log); err != nil {
			t.Fatalf("log record %q: %v", buf.String(), err)
		}
		return s
	}
	validID := func(id any, n int) bool {
		s, ok := id.(string)
		return ok && len(s) == n && strings.Trim(s, "0") != ""
	}

	t.Run("new trace", func(t *testing.T) {
		s := serve(t, "")
		if s.recording {
			t.Error("the span records though nothing exports it")
		}
		if !validID(s.log["trace_id"], 32) || !validID(s.log["span_id"], 16) {
			t.Fatalf("log record without trace context: %v", s.log)
		}
		want := "00-" + s.log["trace_id"].(string) + "-" + s.log["span_id"].(string) + "-00"
		if s.outgoing != want {
			t.Fatalf("outgoing traceparent %q, want %q", s.outgoing, want)
		}
	})

	for name, flags := range map[string]string{"sampled caller": "01", "unsampled caller": "00"} {
		t.Run(name, func(t *testing.T) {
			const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
			s := serve(t, "00-"+traceID+"-00f067aa0ba902b7-"+flags)
			if s.log["trace_id"] != traceID {
				t.Fatalf("log trace_id %v, want the caller's %s", s.log["trace_id"], traceID)
			}
			if !strings.HasPrefix(s.outgoing, "00-"+traceID+"-") || !strings.HasSuffix(s.outgoing, "-"+flags) {
				t.Fatalf("outgoing traceparent %q does not continue the caller's trace with flags %s", s.outgoing, flags)
			}
		})
	}
}
