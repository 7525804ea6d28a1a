package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestTracingWithoutExporter: with no OTLP endpoint nothing is recorded,
// yet every request still has a trace id, which its log records carry and
// which travels on to the calls and events it makes; a sampled caller's
// trace is continued.
func TestTracingWithoutExporter(t *testing.T) {
	setUpLocalTracing(t)

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

// TestTracingRecords: a span that is recorded, because an exporter is
// configured or because the caller sampled the trace, gets otelhttp's full
// treatment (name, kind, response attributes).
func TestTracingRecords(t *testing.T) {
	serve := func(t *testing.T, traceparent string) {
		t.Helper()
		h := NewMetrics().Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusCreated)
		}))
		req := httptest.NewRequest("POST", "/api/v1/products", nil)
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	check := func(t *testing.T, spans tracetest.SpanStubs, traceID string) {
		t.Helper()
		if len(spans) != 1 {
			t.Fatalf("%d spans recorded, want 1", len(spans))
		}
		s := spans[0]
		if s.Name != "POST /api/v1/products" || s.SpanKind != trace.SpanKindServer || (traceID != "" && s.SpanContext.TraceID().String() != traceID) {
			t.Fatalf("span %q kind %v trace %s", s.Name, s.SpanKind, s.SpanContext.TraceID())
		}
		for _, a := range s.Attributes {
			if a.Key == "http.response.status_code" && a.Value.AsInt64() == http.StatusCreated {
				return
			}
		}
		t.Fatalf("no response status among %v", s.Attributes)
	}

	t.Run("exported", func(t *testing.T) {
		exp := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		prev := otel.GetTracerProvider()
		otel.SetTracerProvider(tp)
		t.Cleanup(func() { otel.SetTracerProvider(prev) })
		serve(t, "")
		check(t, exp.GetSpans(), "")
	})

	t.Run("sampled caller, nothing exported", func(t *testing.T) {
		setUpLocalTracing(t)
		exp := tracetest.NewInMemoryExporter()
		otel.GetTracerProvider().(localProvider).RegisterSpanProcessor(sdktrace.NewSimpleSpanProcessor(exp))
		const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		serve(t, "00-"+traceID+"-00f067aa0ba902b7-01")
		check(t, exp.GetSpans(), traceID)
		exp.Reset()
		serve(t, "00-"+traceID+"-00f067aa0ba902b7-00")
		serve(t, "")
		if n := len(exp.GetSpans()); n != 0 {
			t.Fatalf("%d unsampled spans recorded", n)
		}
	})
}

// TestREDMetrics counts requests by route pattern, method and status, and
// times them by route and method.
func TestREDMetrics(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/products/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "gone" {
			w.WriteHeader(http.StatusNotFound)
		}
	})
	mux.HandleFunc("/api/v1/any", func(w http.ResponseWriter, r *http.Request) {})
	h := m.Middleware(CaptureRoute(mux))
	for _, req := range []struct{ method, path string }{
		{"GET", "/api/v1/products/p1"}, {"GET", "/api/v1/products/p2"}, {"GET", "/api/v1/products/gone"},
		{"GET", "/nowhere"}, {"PURGE", "/api/v1/any"}, {"PURGE", "/api/v1/any"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(req.method, req.path, nil))
	}

	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			var labels []string
			for _, l := range mt.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			key := f.GetName() + " " + strings.Join(labels, " ")
			switch f.GetName() {
			case "mallhive_http_requests_total":
				got[key] = uint64(mt.GetCounter().GetValue())
			case "mallhive_http_request_duration_seconds":
				got[key] = mt.GetHistogram().GetSampleCount()
			}
		}
	}
	want := map[string]uint64{
		"mallhive_http_requests_total GET GET /api/v1/products/{id} 200":       2,
		"mallhive_http_requests_total GET GET /api/v1/products/{id} 404":       1,
		"mallhive_http_requests_total GET unmatched 404":                       1,
		"mallhive_http_requests_total PURGE /api/v1/any 200":                   2,
		"mallhive_http_request_duration_seconds GET GET /api/v1/products/{id}": 3,
		"mallhive_http_request_duration_seconds GET unmatched":                 1,
		"mallhive_http_request_duration_seconds PURGE /api/v1/any":             2,
	}
	if !maps.Equal(got, want) {
		t.Fatalf("metrics\n%v\nwant\n%v", got, want)
	}
}

// TestUnrecorded: only a trace that was not sampled, in a process that
// exports nothing, is unrecorded; a context without a trace is not.
func TestUnrecorded(t *testing.T) {
	prev := otel.GetTracerProvider()
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	traceCtx := func(flags trace.TraceFlags) context.Context {
		return trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: flags, Remote: true,
		}))
	}
	cases := []struct {
		name     string
		exported bool
		ctx      context.Context
		want     bool
	}{
		{"unsampled, nothing exported", false, traceCtx(0), true},
		{"sampled, nothing exported", false, traceCtx(trace.FlagsSampled), false},
		{"no trace, nothing exported", false, context.Background(), false},
		{"unsampled, exported", true, traceCtx(0), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.exported {
				otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewInMemoryExporter())))
			} else {
				setUpLocalTracing(t)
			}
			if got := Unrecorded(c.ctx); got != c.want {
				t.Fatalf("Unrecorded = %v, want %v", got, c.want)
			}
		})
	}
}

// TestInjectTrace writes the headers propagation.HeaderCarrier would.
func TestInjectTrace(t *testing.T) {
	prev := otel.GetTextMapPropagator()
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	ts, err := trace.ParseTraceState("vendor=value")
	if err != nil {
		t.Fatal(err)
	}
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled, TraceState: ts,
	}))
	m, err := baggage.NewMember("tenant", "t1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := baggage.New(m)
	if err != nil {
		t.Fatal(err)
	}
	ctx = baggage.ContextWithBaggage(ctx, b)

	got, want := http.Header{}, http.Header{}
	InjectTrace(ctx, got)
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(want))
	if len(want) != 3 || !reflect.DeepEqual(got, want) {
		t.Fatalf("headers %v, want %v", got, want)
	}
	// And what it wrote reads back the same way.
	back := otel.GetTextMapPropagator().Extract(context.Background(), headerCarrier(got))
	if sc := trace.SpanContextFromContext(back); !sc.Equal(trace.SpanContextFromContext(ctx).WithRemote(true)) {
		t.Fatalf("extracted %v", sc)
	}
	if baggage.FromContext(back).Member("tenant").Value() != "t1" {
		t.Fatalf("baggage %v", baggage.FromContext(back))
	}
}

// setUpLocalTracing sets tracing up as a process does when nothing exports
// spans, until the test ends.
func setUpLocalTracing(t *testing.T) {
	t.Helper()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	shutdown, err := SetupTracing(context.Background(), "test", "v0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })
}
