package authn

import (
	"net/http"
	"strings"

	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/httpx"
)

// Middleware authenticates requests that carry `Authorization: Bearer <token>`:
// a valid token puts its Principal in the request context, a bad one is
// answered with a 401 problem document (503 when the keys cannot be fetched).
// Requests without the header, or with another scheme (such as Basic client
// authentication at the OAuth2 token endpoint), continue anonymous; handlers
// decide with Require.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values("Authorization")
		if len(values) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		token, bearer := bearerToken(values[0])
		if !bearer && len(values) == 1 {
			next.ServeHTTP(w, r)
			return
		}
		if len(values) > 1 {
			writeAuthError(w, r, errs.E(errs.Unauthenticated, "send one Authorization header"))
			return
		}
		p, err := v.Verify(r.Context(), token)
		if err != nil {
			writeAuthError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// bearerToken splits an Authorization value; bearer is true for the Bearer
// scheme (any case), even when the token after it is missing.
func bearerToken(header string) (token string, bearer bool) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(header), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

func writeAuthError(w http.ResponseWriter, r *http.Request, err error) {
	if errs.Is(err, errs.Unauthenticated) {
		// RFC 6750 §3: tell the client the token, not the request, is at fault.
		w.Header().Set("WWW-Authenticate", `Bearer realm="mallhive", error="invalid_token"`)
	}
	httpx.WriteError(w, r, err)
}
