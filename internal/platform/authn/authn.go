// Package authn verifies the access tokens that the auth service issues and
// carries the resulting Principal through request contexts. Every service
// uses it to authenticate callers locally, from a cached copy of the auth
// service's JWKS, without a round trip per request.
//
// Access tokens are ES256-signed JWTs with a `kid` header and the `typ`
// "at+jwt" (RFC 9068), which keeps ID tokens signed by the same keys from
// being accepted as access tokens.
package authn

import (
	"context"
	"slices"
	"time"

	"github.com/mallhive/mallhive/internal/platform/errs"
)

// The roles a Principal can hold.
const (
	RoleBuyer  = "buyer"
	RoleSeller = "seller"
	RoleAdmin  = "admin"
)

// Principal is the authenticated caller, as stated by a verified access token.
type Principal struct {
	UserID    string
	Roles     []string
	TokenID   string
	ExpiresAt time.Time
}

// HasRole reports whether the principal holds role r.
func (p Principal) HasRole(r string) bool { return slices.Contains(p.Roles, r) }

type ctxKey struct{}

// WithPrincipal returns a context that carries p. The middleware uses it after
// verifying a token; tests and RPC interceptors use it directly.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal stored in ctx; ok is false for anonymous
// requests.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// Require returns the principal in ctx when it holds at least one of roles
// (any principal when roles is empty). It returns an errs.Unauthenticated
// error for anonymous callers and an errs.Forbidden error when no role matches.
func Require(ctx context.Context, roles ...string) (Principal, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return Principal{}, errs.E(errs.Unauthenticated, "sign in required")
	}
	if len(roles) == 0 {
		return p, nil
	}
	for _, r := range roles {
		if p.HasRole(r) {
			return p, nil
		}
	}
	return Principal{}, errs.E(errs.Forbidden, "you are not allowed to do this")
}
