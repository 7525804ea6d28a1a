// Package telemetry sets up what every process reports about itself: JSON
// logs that carry trace ids, Prometheus metrics (RED per route and RPC) and
// OpenTelemetry traces exported over OTLP when an endpoint is configured.
package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/mallhive/mallhive/internal/platform/httpx"
)

// NewLogger returns a JSON logger whose records carry the trace and span
// ids of their context.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(traceHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(as)}
}
func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}

// SetupTracing installs the W3C propagator and, when
// OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set, an OTLP/HTTP
// exporter. It returns a shutdown that flushes spans.
func SetupTracing(ctx context.Context, serviceName, version string) (func(context.Context) error, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		// Nothing would receive the spans, so record none: an unsampled
		// span still gets a valid trace and span id, which reach logs,
		// outgoing calls and event headers, but records no attributes or
		// events. A trace its caller sampled is still recorded, so the
		// sampled flag travels on to services that do export.
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
		otel.SetTracerProvider(localProvider{tp, tp.Tracer(otelhttp.ScopeName, trace.WithInstrumentationVersion(otelhttp.Version))})
		return tp.Shutdown, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, err
	}
	res, _ := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(serviceName), semconv.ServiceVersion(version)))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// localProvider is the tracer provider when nothing exports spans. Its
// type tells Middleware and Unrecorded that a span records only when its
// trace was sampled.
type localProvider struct {
	*sdktrace.TracerProvider
	server trace.Tracer // what otelhttp would use, made once
}

// Unrecorded reports whether ctx carries a trace that no span started from
// it would record: nothing exports spans (see SetupTracing) and the trace
// was not sampled. Instrumentation may then skip its own span, which would
// cost time and allocations for nothing, and only pass the trace on. A
// context without a trace reports false: a span started there would begin
// one.
func Unrecorded(ctx context.Context) bool {
	if _, ok := otel.GetTracerProvider().(localProvider); !ok {
		return false
	}
	sc := trace.SpanContextFromContext(ctx)
	return sc.IsValid() && !sc.IsSampled()
}

// InjectTrace puts ctx's trace context (and baggage) in h, as an outgoing
// call carries it.
func InjectTrace(ctx context.Context, h http.Header) {
	otel.GetTextMapPropagator().Inject(ctx, headerCarrier(h))
}

// headerCarrier is propagation.HeaderCarrier without the allocation of
// making the W3C propagators' lower-case keys canonical on every call.
type headerCarrier http.Header

func (c headerCarrier) Get(key string) string { return http.Header(c).Get(canonicalKey(key)) }
func (c headerCarrier) Set(key, value string) { http.Header(c).Set(canonicalKey(key), value) }
func (c headerCarrier) Keys() []string        { return propagation.HeaderCarrier(c).Keys() }

func canonicalKey(key string) string {
	switch key {
	case "traceparent":
		return "Traceparent"
	case "tracestate":
		return "Tracestate"
	case "baggage":
		return "Baggage"
	}
	return key
}

// Metrics is a process's Prometheus registry with the HTTP RED metrics.
type Metrics struct {
	Registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight prometheus.Gauge
	// red holds each label set's counter and histogram, by redKey, so a
	// request finds them with one map read instead of hashing its labels
	// into both vectors.
	red sync.Map
}

type redKey struct {
	route, method string
	status        int
}

type redMetrics struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// NewMetrics creates a registry with Go runtime, process and HTTP metrics.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mallhive_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mallhive_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mallhive_http_requests_in_flight", Help: "HTTP requests being served.",
		}),
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.inflight)
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Middleware records RED metrics per route pattern (the ServeMux pattern
// that matched, so ids in paths do not explode the label set) and wraps the
// request in a server span.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return traced(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		m.inflight.Inc()
		defer m.inflight.Dec()
		// Recorder and route in one allocation: every request pays it.
		st := &struct {
			rec    httpx.StatusRecorder
			holder routeHolder
		}{rec: httpx.StatusRecorder{ResponseWriter: w}}
		rec, holder := &st.rec, &st.holder
		r = r.WithContext(context.WithValue(r.Context(), routeKey{}, holder))
		next.ServeHTTP(rec, r)
		route := holder.route
		if route == "" {
			route = r.Pattern
		}
		if route == "" {
			route = "unmatched"
		}
		status := rec.Status
		if status == 0 {
			status = http.StatusOK
		}
		red := m.redOf(route, r.Method, status)
		red.requests.Inc()
		red.duration.Observe(time.Since(start).Seconds())
	}))
}

// redOf returns the metrics of one label set. Routes are ServeMux patterns
// and statuses are what handlers write, so the sets are few; the method is
// the caller's, so only standard methods are kept in m.red.
func (m *Metrics) redOf(route, method string, status int) redMetrics {
	k := redKey{route, method, status}
	if v, ok := m.red.Load(k); ok {
		return v.(redMetrics)
	}
	red := redMetrics{
		requests: m.requests.WithLabelValues(route, method, strconv.Itoa(status)),
		duration: m.duration.WithLabelValues(route, method),
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		m.red.Store(k, red)
	}
	return red
}

// traced wraps next in a server span. otelhttp does that in full (request
// and response attributes, span status, OpenTelemetry HTTP metrics, which go
// nowhere: no meter provider is set), at several microseconds and tens of
// allocations per request. When nothing exports spans (localProvider) and
// the caller did not sample the trace, the span records nothing and all of
// that is thrown away, so such a request gets only what it kept before: the
// span, whose trace and span ids reach logs, calls and events, and the
// caller's baggage.
func traced(next http.Handler) http.Handler {
	full := otelhttp.NewHandler(next, "http", otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
		return r.Method + " " + r.URL.Path
	}))
	serverSpan := trace.WithSpanKind(trace.SpanKindServer)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, ok := otel.GetTracerProvider().(localProvider)
		if !ok {
			full.ServeHTTP(w, r)
			return
		}
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), headerCarrier(r.Header))
		if trace.SpanContextFromContext(ctx).IsSampled() {
			full.ServeHTTP(w, r)
			return
		}
		ctx, span := local.server.Start(ctx, "http", serverSpan)
		defer span.End()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

type routeKey struct{}

type routeHolder struct{ route string }

// CaptureRoute wraps a ServeMux so the pattern it matched (for example
// "GET /api/v1/products/{id}") becomes the route label of the request's
// metrics, however deep the mux sits behind other middleware.
func CaptureRoute(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		// The innermost mux finishes first and names the most specific route.
		if h, ok := r.Context().Value(routeKey{}).(*routeHolder); ok && h.route == "" && r.Pattern != "" {
			h.route = r.Pattern
		}
	})
}
