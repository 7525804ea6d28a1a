package rpc_test

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	authv1 "github.com/mallhive/mallhive/internal/gen/mallhive/auth/v1"
	"github.com/mallhive/mallhive/internal/gen/mallhive/auth/v1/authv1connect"
	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/authn/authntest"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/httpx"
	"github.com/mallhive/mallhive/internal/platform/rpc"
	"github.com/mallhive/mallhive/internal/platform/telemetry"
)

// users answers GetUser with the caller's identity, or a domain error.
type users struct {
	authv1connect.UnimplementedAuthServiceHandler
}

func (users) GetUser(ctx context.Context, req *connect.Request[authv1.GetUserRequest]) (*connect.Response[authv1.GetUserResponse], error) {
	switch req.Msg.Id {
	case "missing":
		return nil, errs.E(errs.NotFound, "no such user")
	case "crash":
		return nil, errors.New("dial db: password=hunter2") // an uncoded error must not leak
	case "trace":
		// The caller learns the trace its call ran in.
		sc := trace.SpanContextFromContext(ctx)
		return connect.NewResponse(&authv1.GetUserResponse{User: &authv1.User{Id: sc.TraceID().String(), Roles: []string{sc.TraceFlags().String()}}}), nil
	case "me":
		p, ok := authn.FromContext(ctx)
		if !ok {
			return nil, errs.E(errs.Unauthenticated, "who are you")
		}
		return connect.NewResponse(&authv1.GetUserResponse{User: &authv1.User{Id: p.UserID, Roles: p.Roles}}), nil
	}
	return connect.NewResponse(&authv1.GetUserResponse{User: &authv1.User{Id: req.Msg.Id}}), nil
}

// serve serves users with the handler options of every service, behind mw
// (the process puts its HTTP middleware there), and returns its base URL.
func serve(t *testing.T, issuer *authntest.Issuer, m *rpc.Metrics, mw ...func(http.Handler) http.Handler) string {
	t.Helper()
	path, h := authv1connect.NewAuthServiceHandler(users{}, rpc.HandlerOptions(m, issuer.Verifier(), slog.New(slog.DiscardHandler))...)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpx.NewServer(httpx.Chain(mux, mw...), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = httpx.Serve(ctx, srv, ln, time.Second); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String()
}

func TestRPCOverConnectAndGRPC(t *testing.T) {
	t.Parallel()
	issuer := authntest.New(t)
	base := serve(t, issuer, nil)
	m := rpc.NewMetrics(nil)
	for name, extra := range map[string][]connect.ClientOption{"connect": nil, "grpc": {connect.WithGRPC()}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			client := authv1connect.NewAuthServiceClient(httpx.NewH2CClient(5*time.Second), base, append(rpc.ClientOptions(m), extra...)...)
			ctx := context.Background()

			resp, err := client.GetUser(ctx, connect.NewRequest(&authv1.GetUserRequest{Id: "u1"}))
			if err != nil || resp.Msg.User.Id != "u1" {
				t.Fatalf("GetUser: %v %v", resp, err)
			}
			_, err = client.GetUser(ctx, connect.NewRequest(&authv1.GetUserRequest{Id: "missing"}))
			if !errs.Is(err, errs.NotFound) {
				t.Fatalf("missing user: want a NotFound domain error, got %v", err)
			}
			_, err = client.GetUser(ctx, connect.NewRequest(&authv1.GetUserRequest{Id: "crash"}))
			if !errs.Is(err, errs.Internal) || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("crash: want Internal without detail, got %v", err)
			}

			req := connect.NewRequest(&authv1.GetUserRequest{Id: "me"})
			req.Header().Set("Authorization", "Bearer "+issuer.Token(t, "buyer-7", "buyer"))
			resp, err = client.GetUser(ctx, req)
			if err != nil || resp.Msg.User.Id != "buyer-7" {
				t.Fatalf("caller identity: %v %v", resp, err)
			}
			req = connect.NewRequest(&authv1.GetUserRequest{Id: "me"})
			req.Header().Set("Authorization", "Bearer forged.token.here")
			if _, err = client.GetUser(ctx, req); !errs.Is(err, errs.Unauthenticated) {
				t.Fatalf("forged token: want Unauthenticated, got %v", err)
			}
		})
	}
}

// TestRPCMetrics counts calls by procedure, side and code, and times them by
// procedure and side.
func TestRPCMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := rpc.NewMetrics(reg) // one for both sides, as in a process
	client := authv1connect.NewAuthServiceClient(httpx.NewH2CClient(5*time.Second), serve(t, authntest.New(t), m), rpc.ClientOptions(m)...)
	for _, id := range []string{"u1", "u2", "missing"} {
		_, _ = client.GetUser(context.Background(), connect.NewRequest(&authv1.GetUserRequest{Id: id}))
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			key := f.GetName()
			for _, l := range mt.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			if f.GetName() == "mallhive_rpc_calls_total" {
				got[key] = uint64(mt.GetCounter().GetValue())
			} else {
				got[key] = mt.GetHistogram().GetSampleCount()
			}
		}
	}
	const proc = authv1connect.AuthServiceGetUserProcedure
	want := map[string]uint64{
		"mallhive_rpc_calls_total code=ok procedure=" + proc + " side=client":        2,
		"mallhive_rpc_calls_total code=not_found procedure=" + proc + " side=client": 1,
		"mallhive_rpc_calls_total code=ok procedure=" + proc + " side=server":        2,
		"mallhive_rpc_calls_total code=not_found procedure=" + proc + " side=server": 1,
		"mallhive_rpc_duration_seconds procedure=" + proc + " side=client":           3,
		"mallhive_rpc_duration_seconds procedure=" + proc + " side=server":           3,
	}
	if !maps.Equal(got, want) {
		t.Fatalf("metrics\n%v\nwant\n%v", got, want)
	}
}

// TestRPCTracing: where nothing exports spans, a call in a trace its caller
// did not sample records no span, yet the handler runs in the caller's
// trace; a call in a sampled trace records otelconnect's client and server
// spans in it, as before.
func TestRPCTracing(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	prev := otel.GetTracerProvider()
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	shutdown, err := telemetry.SetupTracing(context.Background(), "test", "v0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })
	exp := tracetest.NewInMemoryExporter()
	otel.GetTracerProvider().(interface{ RegisterSpanProcessor(sdktrace.SpanProcessor) }).
		RegisterSpanProcessor(sdktrace.NewSimpleSpanProcessor(exp))

	// The process's middleware starts the HTTP server span; the
	// interceptors are made after SetupTracing, as in a process.
	base := serve(t, authntest.New(t), nil, telemetry.NewMetrics().Middleware)
	client := authv1connect.NewAuthServiceClient(httpx.NewH2CClient(5*time.Second), base, rpc.ClientOptions(nil)...)
	traceOf := func(t *testing.T, ctx context.Context) (traceID, flags string) {
		t.Helper()
		resp, err := client.GetUser(ctx, connect.NewRequest(&authv1.GetUserRequest{Id: "trace"}))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Msg.User.Id, resp.Msg.User.Roles[0]
	}

	t.Run("unsampled", func(t *testing.T) {
		exp.Reset()
		// A request handler's context: a trace no one sampled.
		ctx, span := otel.Tracer("test").Start(context.Background(), "request")
		defer span.End()
		traceID, flags := traceOf(t, ctx)
		if want := span.SpanContext().TraceID().String(); traceID != want || flags != "00" {
			t.Fatalf("handler ran in trace %s flags %s, want the caller's %s unsampled", traceID, flags, want)
		}
		if spans := exp.GetSpans(); len(spans) != 0 {
			t.Fatalf("%d spans recorded: %v", len(spans), spans)
		}
	})

	t.Run("sampled", func(t *testing.T) {
		exp.Reset()
		const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		tid, _ := trace.TraceIDFromHex(callerTrace)
		ctx := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: tid, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled, Remote: true,
		}))
		if traceID, flags := traceOf(t, ctx); traceID != callerTrace || flags != "01" {
			t.Fatalf("handler ran in trace %s flags %s, want the caller's %s sampled", traceID, flags, callerTrace)
		}
		kinds := map[trace.SpanKind]bool{}
		for _, s := range exp.GetSpans() {
			if s.SpanContext.TraceID().String() != callerTrace {
				t.Errorf("span %q in trace %s", s.Name, s.SpanContext.TraceID())
			}
			if s.Name == strings.TrimPrefix(authv1connect.AuthServiceGetUserProcedure, "/") {
				kinds[s.SpanKind] = true
			}
		}
		if !kinds[trace.SpanKindClient] || !kinds[trace.SpanKindServer] {
			t.Fatalf("RPC spans by kind %v among %d spans, want a client and a server one", kinds, len(exp.GetSpans()))
		}
	})
}
