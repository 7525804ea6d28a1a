package rpc_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	authv1 "github.com/mallhive/mallhive/internal/gen/mallhive/auth/v1"
	"github.com/mallhive/mallhive/internal/gen/mallhive/auth/v1/authv1connect"
	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/authn/authntest"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/httpx"
	"github.com/mallhive/mallhive/internal/platform/rpc"
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
	case "me":
		p, ok := authn.FromContext(ctx)
		if !ok {
			return nil, errs.E(errs.Unauthenticated, "who are you")
		}
		return connect.NewResponse(&authv1.GetUserResponse{User: &authv1.User{Id: p.UserID, Roles: p.Roles}}), nil
	}
	return connect.NewResponse(&authv1.GetUserResponse{User: &authv1.User{Id: req.Msg.Id}}), nil
}

func serve(t *testing.T, issuer *authntest.Issuer) string {
	t.Helper()
	m := rpc.NewMetrics(nil)
	path, h := authv1connect.NewAuthServiceHandler(users{}, rpc.HandlerOptions(m, issuer.Verifier(), slog.New(slog.DiscardHandler))...)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpx.NewServer(mux, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = httpx.Serve(ctx, srv, ln, time.Second); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String()
}

func TestRPCOverConnectAndGRPC(t *testing.T) {
	t.Parallel()
	issuer := authntest.New(t)
	base := serve(t, issuer)
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
