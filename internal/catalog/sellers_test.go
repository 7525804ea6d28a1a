package catalog

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"

	authv1 "github.com/mallhive/mallhive/internal/gen/mallhive/auth/v1"
	"github.com/mallhive/mallhive/internal/gen/mallhive/auth/v1/authv1connect"
	"github.com/mallhive/mallhive/internal/platform/rpc"
)

type fakeAuth struct {
	authv1connect.UnimplementedAuthServiceHandler
	calls atomic.Int32
	down  atomic.Bool
}

func (f *fakeAuth) GetUser(ctx context.Context, req *connect.Request[authv1.GetUserRequest]) (*connect.Response[authv1.GetUserResponse], error) {
	f.calls.Add(1)
	if f.down.Load() {
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("down"))
	}
	return connect.NewResponse(&authv1.GetUserResponse{User: &authv1.User{Id: req.Msg.Id, StoreName: "Store of " + req.Msg.Id}}), nil
}

func TestSellerNamesComeFromAuthAndAreCached(t *testing.T) {
	t.Parallel()
	fake := &fakeAuth{}
	path, h := authv1connect.NewAuthServiceHandler(fake, rpc.HandlerOptions(nil, nil, nil)...)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	names := newAuthSellers(authv1connect.NewAuthServiceClient(srv.Client(), srv.URL, rpc.ClientOptions(nil)...))
	ctx := context.Background()

	if got := names.StoreName(ctx, "s1"); got != "Store of s1" {
		t.Fatalf("name %q", got)
	}
	names.StoreName(ctx, "s1")
	if n := fake.calls.Load(); n != 1 {
		t.Fatalf("%d calls for one seller, want 1 (cached)", n)
	}
	fake.down.Store(true)
	if got := names.StoreName(ctx, "s2"); got != "" {
		t.Fatalf("auth down: name %q, want empty", got)
	}
	if got := names.StoreName(ctx, "s1"); got != "Store of s1" {
		t.Fatalf("cached name lost while auth is down: %q", got)
	}
}
