package authn_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/httpx"
)

func TestMiddleware(t *testing.T) {
	t.Parallel()
	clk := newClock()
	key := newKey(t, "key-1")
	srv := newJWKSServer(t, key)
	v := newVerifier(t, srv, clk)
	valid := key.token(t, claimsAt(clk.Now()))

	// The handler reports who it saw.
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := authn.FromContext(r.Context())
		if !ok {
			_, _ = w.Write([]byte("anonymous"))
			return
		}
		_, _ = w.Write([]byte(p.UserID))
	}))

	tests := []struct {
		name       string
		headers    []string
		wantStatus int
		wantBody   string
	}{
		{name: "no header is anonymous", wantStatus: http.StatusOK, wantBody: "anonymous"},
		{name: "valid bearer token", headers: []string{"Bearer " + valid}, wantStatus: http.StatusOK, wantBody: "user-1"},
		{name: "scheme is case-insensitive", headers: []string{"bearer " + valid}, wantStatus: http.StatusOK, wantBody: "user-1"},
		{name: "other scheme passes through anonymous", headers: []string{"Basic Y2xpZW50OnNlY3JldA=="}, wantStatus: http.StatusOK, wantBody: "anonymous"},
		{name: "invalid token", headers: []string{"Bearer not-a-token"}, wantStatus: http.StatusUnauthorized},
		{name: "bearer without token", headers: []string{"Bearer"}, wantStatus: http.StatusUnauthorized},
		{name: "bearer with blank token", headers: []string{"Bearer   "}, wantStatus: http.StatusUnauthorized},
		{name: "two Authorization headers", headers: []string{"Bearer " + valid, "Bearer " + valid}, wantStatus: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodGet, "/api/v1/me", nil)
			for _, hv := range tt.headers {
				req.Header.Add("Authorization", hv)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantStatus == http.StatusOK {
				if got := rec.Body.String(); got != tt.wantBody {
					t.Fatalf("body = %q, want %q", got, tt.wantBody)
				}
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type = %q", ct)
			}
			if wa := rec.Header().Get("WWW-Authenticate"); !strings.Contains(wa, `error="invalid_token"`) {
				t.Fatalf("WWW-Authenticate = %q", wa)
			}
			var p httpx.Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatalf("problem document: %v", err)
			}
			if p.Status != http.StatusUnauthorized || p.Code != errs.Unauthenticated {
				t.Fatalf("problem = %+v", p)
			}
		})
	}
}

func TestRequire(t *testing.T) {
	t.Parallel()
	buyer := authn.Principal{UserID: "u1", Roles: []string{authn.RoleBuyer}}
	admin := authn.Principal{UserID: "u2", Roles: []string{authn.RoleBuyer, authn.RoleAdmin}}

	tests := []struct {
		name     string
		ctx      context.Context
		roles    []string
		wantCode errs.Code // "" means allowed
		wantUser string
	}{
		{name: "anonymous, any role", ctx: context.Background(), wantCode: errs.Unauthenticated},
		{name: "anonymous, admin", ctx: context.Background(), roles: []string{authn.RoleAdmin}, wantCode: errs.Unauthenticated},
		{name: "signed in, no role asked", ctx: authn.WithPrincipal(context.Background(), buyer), wantUser: "u1"},
		{name: "buyer asks buyer", ctx: authn.WithPrincipal(context.Background(), buyer), roles: []string{authn.RoleBuyer}, wantUser: "u1"},
		{name: "buyer asks admin", ctx: authn.WithPrincipal(context.Background(), buyer), roles: []string{authn.RoleAdmin}, wantCode: errs.Forbidden},
		{name: "buyer asks seller or admin", ctx: authn.WithPrincipal(context.Background(), buyer), roles: []string{authn.RoleSeller, authn.RoleAdmin}, wantCode: errs.Forbidden},
		{name: "admin asks seller or admin", ctx: authn.WithPrincipal(context.Background(), admin), roles: []string{authn.RoleSeller, authn.RoleAdmin}, wantUser: "u2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := authn.Require(tt.ctx, tt.roles...)
			if tt.wantCode != "" {
				if !errs.Is(err, tt.wantCode) {
					t.Fatalf("err = %v, want code %s", err, tt.wantCode)
				}
				return
			}
			if err != nil || p.UserID != tt.wantUser {
				t.Fatalf("Require = %+v, %v; want user %s", p, err, tt.wantUser)
			}
		})
	}
}

func TestPrincipalHasRole(t *testing.T) {
	t.Parallel()
	p := authn.Principal{Roles: []string{authn.RoleSeller}}
	if !p.HasRole(authn.RoleSeller) || p.HasRole(authn.RoleAdmin) || (authn.Principal{}).HasRole(authn.RoleBuyer) {
		t.Fatal("HasRole answers wrongly")
	}
}
