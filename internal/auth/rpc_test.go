package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"

	authv1 "github.com/mallhive/mallhive/internal/gen/mallhive/auth/v1"
	"github.com/mallhive/mallhive/internal/gen/mallhive/auth/v1/authv1connect"
)

func TestRPC(t *testing.T) {
	eachEngine(t, func(t *testing.T, h *harness) {
		mux := http.NewServeMux()
		for path, handler := range h.svc.RPC() {
			mux.Handle(path, handler)
		}
		srv := httptest.NewServer(mux)
		defer srv.Close()
		client := authv1connect.NewAuthServiceClient(srv.Client(), srv.URL)

		buyer := h.register("rpc@example.com", pw1, "Rip")
		seller := h.register("rpcs@example.com", pw1, "Ros", map[string]any{"role": "seller", "store_name": "Ros Goods"})

		res, err := client.GetUser(t.Context(), connect.NewRequest(&authv1.GetUserRequest{Id: seller.ID}))
		if err != nil {
			t.Fatal(err)
		}
		u := res.Msg.GetUser()
		if u.GetId() != seller.ID || u.GetEmail() != "rpcs@example.com" || u.GetStoreName() != "Ros Goods" ||
			len(u.GetRoles()) != 1 || u.GetRoles()[0] != "seller" || u.GetCreatedAt().AsTime().IsZero() {
			t.Errorf("GetUser = %v", u)
		}

		for name, c := range map[string]struct {
			id   string
			code connect.Code
		}{
			"empty":   {"", connect.CodeInvalidArgument},
			"unknown": {"0190a0b0-0000-7000-8000-000000000000", connect.CodeNotFound},
			"junk":    {"'; DROP TABLE users; --", connect.CodeNotFound},
		} {
			_, err := client.GetUser(t.Context(), connect.NewRequest(&authv1.GetUserRequest{Id: c.id}))
			var ce *connect.Error
			if !errors.As(err, &ce) || ce.Code() != c.code {
				t.Errorf("%s: %v, want %v", name, err, c.code)
			}
		}

		many, err := client.GetUsers(t.Context(), connect.NewRequest(&authv1.GetUsersRequest{
			Ids: []string{buyer.ID, seller.ID, buyer.ID, "nope", "0190a0b0-0000-7000-8000-000000000000"}}))
		if err != nil {
			t.Fatal(err)
		}
		if len(many.Msg.GetUsers()) != 2 {
			t.Errorf("GetUsers returned %d users", len(many.Msg.GetUsers()))
		}
		for _, ids := range [][]string{nil, make([]string, MaxBatchIDs+1)} {
			_, err := client.GetUsers(t.Context(), connect.NewRequest(&authv1.GetUsersRequest{Ids: ids}))
			if connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("GetUsers(%d ids) = %v", len(ids), err)
			}
		}
	})
}
