// Package rpc holds what every connect handler and client shares: the
// mapping between domain error codes and connect codes (chosen once, here),
// and interceptors for tracing, metrics and caller authentication.
package rpc

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/otelconnect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/telemetry"
)

var codes = map[errs.Code]connect.Code{
	errs.Invalid:         connect.CodeInvalidArgument,
	errs.NotFound:        connect.CodeNotFound,
	errs.Conflict:        connect.CodeFailedPrecondition,
	errs.Forbidden:       connect.CodePermissionDenied,
	errs.Unauthenticated: connect.CodeUnauthenticated,
	errs.TooManyRequests: connect.CodeResourceExhausted,
	errs.TooLarge:        connect.CodeResourceExhausted,
	errs.Unsupported:     connect.CodeInvalidArgument,
	errs.Unavailable:     connect.CodeUnavailable,
	errs.Internal:        connect.CodeInternal,
}

// ToConnect turns a domain error into a connect error with the matching
// code; the message is the caller-safe one. Internal errors hide detail. A
// handler that needs a code the domain does not name (AlreadyExists)
// returns a *connect.Error itself, which passes through.
func ToConnect(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	switch {
	case errors.As(err, &ce):
		return err
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	var e *errs.Error
	if !errors.As(err, &e) {
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	return connect.NewError(codes[e.Code], errors.New(e.Message))
}

// FromConnect turns an error from a connect client back into a domain
// error, so callers handle remote and local failures alike. AlreadyExists
// and Aborted are conflicts too.
func FromConnect(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return errs.E(errs.Unavailable, "service call failed: %v", err)
	}
	code := errs.Internal
	for d, c := range codes {
		if c == ce.Code() && d != errs.TooLarge && d != errs.Unsupported {
			code = d
		}
	}
	switch ce.Code() {
	case connect.CodeAlreadyExists, connect.CodeAborted:
		code = errs.Conflict
	case connect.CodeDeadlineExceeded, connect.CodeCanceled:
		code = errs.Unavailable
	}
	return &errs.Error{Code: code, Message: ce.Message(), Err: err}
}

// Metrics counts RPCs by procedure, side and code, with latencies.
type Metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// byCall holds each label set's counter and histogram, by callKey, so a
	// call finds them with one map read instead of hashing its labels into
	// both vectors. Procedures are the generated ones and codes connect's,
	// so the sets are few.
	byCall sync.Map
}

type callKey struct {
	procedure string
	client    bool
	code      string
}

type callMetrics struct {
	calls    prometheus.Counter
	duration prometheus.Observer
}

// NewMetrics registers the RPC metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mallhive_rpc_calls_total", Help: "RPCs by procedure, side (server or client) and code.",
		}, []string{"procedure", "side", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mallhive_rpc_duration_seconds", Help: "RPC latency by procedure and side.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"procedure", "side"}),
	}
	if reg != nil {
		reg.MustRegister(m.calls, m.duration)
	}
	return m
}

func (m *Metrics) interceptor() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			start := time.Now()
			resp, err := next(ctx, req)
			code := "ok"
			if err != nil {
				code = connect.CodeOf(err).String()
			}
			cm := m.of(callKey{req.Spec().Procedure, req.Spec().IsClient, code})
			cm.calls.Inc()
			cm.duration.Observe(time.Since(start).Seconds())
			return resp, err
		}
	}
}

// of returns the metrics of one label set.
func (m *Metrics) of(k callKey) callMetrics {
	if v, ok := m.byCall.Load(k); ok {
		return v.(callMetrics)
	}
	side := "server"
	if k.client {
		side = "client"
	}
	cm := callMetrics{
		calls:    m.calls.WithLabelValues(k.procedure, side, k.code),
		duration: m.duration.WithLabelValues(k.procedure, side),
	}
	m.byCall.Store(k, cm)
	return cm
}

// errorMapping converts domain errors at the edge of a handler, so service
// code returns errs values as everywhere else; on a handler it logs what
// becomes an Internal error, whose detail the caller never sees.
func errorMapping(log *slog.Logger) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			resp, err := next(ctx, req)
			if req.Spec().IsClient {
				return resp, FromConnect(err)
			}
			cerr := ToConnect(err)
			if err != nil && log != nil && connect.CodeOf(cerr) == connect.CodeInternal {
				log.ErrorContext(ctx, "rpc failed", "procedure", req.Spec().Procedure, "err", err)
			}
			return resp, cerr
		}
	}
}

// authentication verifies a bearer token on an incoming RPC, when present,
// and puts its Principal in the context (a user's request forwarded by a
// service keeps the user's identity); a bad token is refused.
func authentication(v *authn.Verifier) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if req.Spec().IsClient || v == nil {
				return next(ctx, req)
			}
			if h := req.Header().Get("Authorization"); h != "" {
				token, ok := strings.CutPrefix(h, "Bearer ")
				if !ok {
					return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("authorization must be a bearer token"))
				}
				p, err := v.Verify(ctx, token)
				if err != nil {
					return nil, ToConnect(err)
				}
				ctx = authn.WithPrincipal(ctx, p)
			}
			return next(ctx, req)
		}
	}
}

// tracing is otelconnect's interceptor, except for a call whose trace is
// not recorded (telemetry.Unrecorded): its span would record nothing, yet
// costs microseconds and allocations per call. Such a call still passes its
// trace on. A client puts the trace context in the request headers, as
// otelconnect does (the called span's parent is then the caller's span, not
// a client span that exists nowhere); a handler runs in the span that the
// HTTP middleware started from those headers.
type tracing struct{ *otelconnect.Interceptor }

func newTracing(opts ...otelconnect.Option) tracing {
	// NewInterceptor fails only on metric options; metrics are off.
	i, _ := otelconnect.NewInterceptor(append(opts, otelconnect.WithoutMetrics())...)
	return tracing{i}
}

func (t tracing) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	full := t.Interceptor.WrapUnary(next)
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if !telemetry.Unrecorded(ctx) {
			return full(ctx, req)
		}
		if req.Spec().IsClient {
			telemetry.InjectTrace(ctx, req.Header())
		}
		return next(ctx, req)
	}
}

// HandlerOptions are the options every connect handler is built with. m
// may be nil in tests (metrics unregistered), v nil where no caller is
// authenticated.
func HandlerOptions(m *Metrics, v *authn.Verifier, log *slog.Logger) []connect.HandlerOption {
	if m == nil {
		m = NewMetrics(nil)
	}
	return []connect.HandlerOption{
		connect.WithInterceptors(newTracing(otelconnect.WithTrustRemote()), m.interceptor(), errorMapping(log), authentication(v)),
		connect.WithReadMaxBytes(4 << 20),
		// Setting up gzip costs more than it saves on the small answers
		// most RPCs give.
		connect.WithCompressMinBytes(1 << 10),
	}
}

// ClientOptions are the options every connect client is built with (m may
// be nil in tests).
func ClientOptions(m *Metrics) []connect.ClientOption {
	if m == nil {
		m = NewMetrics(nil)
	}
	return []connect.ClientOption{
		// Errors become domain errors outermost, after metrics saw the code.
		connect.WithInterceptors(errorMapping(nil), newTracing(), m.interceptor()),
		connect.WithReadMaxBytes(16 << 20),
	}
}
