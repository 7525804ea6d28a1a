package auth

// The OAuth 2.1 / OpenID Connect endpoints (see oauth.go).
//
// Error formats differ by endpoint, on purpose:
//   - /oauth2/token answers RFC 6749 §5.2 JSON ({"error": "invalid_grant",
//     "error_description": ...}, 400, or 401 for invalid_client), not
//     problem documents: that is what every OAuth client library parses.
//   - /oauth2/authorize sends errors to the client's redirect URI
//     (error, error_description, state, iss) once the client and redirect
//     URI are known good; before that (unknown client, unregistered
//     redirect URI) it shows a problem document and never redirects.
//   - /oauth2/userinfo, discovery and the admin routes answer problem
//     documents, with RFC 6750's WWW-Authenticate on 401 and 403.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"html/template"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/httpx"
)

// maxFormBody bounds the form bodies of /oauth2/authorize and /oauth2/token.
const maxFormBody = 16 << 10

// route registers a handler on the service's mux (see Handler).
type route func(method, path string, h httpx.HandlerFunc)

// oauthRoutes registers the provider's endpoints, the admin's client
// registration, and sign-in with an external provider (oidc.go).
func (s *Service) oauthRoutes(handle route) {
	handle(http.MethodGet, "/.well-known/openid-configuration", s.handleDiscovery)
	handle(http.MethodGet, "/oauth2/authorize", s.handleAuthorize)
	handle(http.MethodPost, "/oauth2/authorize", s.handleAuthorizePost)
	handle(http.MethodPost, "/oauth2/token", s.handleToken)
	handle(http.MethodGet, "/oauth2/userinfo", s.handleUserInfo)
	handle(http.MethodPost, "/oauth2/userinfo", s.handleUserInfo)
	handle(http.MethodGet, "/api/v1/admin/oauth-clients", s.handleListClients)
	handle(http.MethodPost, "/api/v1/admin/oauth-clients", s.handleCreateClient)

	ext := s.newExternalOIDC()
	handle(http.MethodGet, "/api/v1/auth/oidc", ext.handleInfo)
	handle(http.MethodGet, oidcPath+"start", ext.handleStart)
	handle(http.MethodGet, oidcPath+"callback", ext.handleCallback)
}

// ---- discovery ----

func (s *Service) handleDiscovery(w http.ResponseWriter, r *http.Request) error {
	iss := s.cfg.Issuer
	w.Header().Set("Cache-Control", "public, max-age=300")
	httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                iss + "/oauth2/authorize",
		"token_endpoint":                        iss + "/oauth2/token",
		"userinfo_endpoint":                     iss + "/oauth2/userinfo",
		"jwks_uri":                              iss + "/.well-known/jwks.json",
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query"},
		"grant_types_supported":                 supportedGrants,
		"code_challenge_methods_supported":      []string{"S256"},
		"id_token_signing_alg_values_supported": []string{string(SigningAlgorithm)},
		"scopes_supported":                      supportedScopes,
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "none"},
		"subject_types_supported":               []string{"public"},
		"claims_supported": []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash",
			"email", "email_verified", "name"},
		"authorization_response_iss_parameter_supported": true,
	})
	return nil
}

// ---- authorization endpoint ----

func (s *Service) handleAuthorize(w http.ResponseWriter, r *http.Request) error {
	return s.authorize(w, r, r.URL.Query())
}

// handleAuthorizePost takes the sign-in form, or an authorization request
// sent as a form (OIDC Core §3.1.2.1 lets clients POST it).
func (s *Service) handleAuthorizePost(w http.ResponseWriter, r *http.Request) error {
	form, err := readForm(w, r)
	if err != nil {
		return err
	}
	if form.Has("csrf_token") || form.Has("email") {
		return s.signInForm(w, r, form)
	}
	return s.authorize(w, r, form)
}

// authorize answers an authorization request: with a code for a caller
// signed in with a MallHive access token, and with the sign-in form for a
// browser without one.
func (s *Service) authorize(w http.ResponseWriter, r *http.Request, params url.Values) error {
	req, err := s.parseAuthorize(r.Context(), params)
	if err != nil {
		return s.authorizeError(w, r, req, err)
	}
	p, signedIn := authn.FromContext(r.Context())
	if !signedIn {
		if req.PromptNone {
			return s.authorizeError(w, r, req, oauthErr("login_required", "the user is not signed in"))
		}
		return s.renderSignIn(w, r, params, req, signInPage{}, http.StatusOK)
	}
	claims, err := bearerClaims(r, p)
	if err != nil {
		return errs.E(errs.Unauthenticated, "sign in again")
	}
	// Only MallHive's own sessions sign users in to apps: otherwise one
	// app's token could fetch a code, and wider scopes, for itself.
	if claims.ClientID != "" {
		return errs.E(errs.Forbidden, "an access token issued to an app cannot authorize apps; use a MallHive session")
	}
	u, err := s.currentUser(r)
	if err != nil {
		return err
	}
	// The access token does not say when the user last proved a
	// credential; its issue time is the closest bound this request has.
	return s.approve(w, r, req, u, claims.IssuedAt.Time())
}

// approve issues a code to a signed-in user and sends it to the client.
// There is no consent screen: clients are registered by MallHive's admins,
// so they are first-party or vetted partners.
func (s *Service) approve(w http.ResponseWriter, r *http.Request, req authzRequest, u User, authTime time.Time) error {
	code, err := s.issueCode(r.Context(), req, u, authTime)
	if err != nil {
		return err
	}
	redirect(w, r, req.redirectTo(url.Values{"code": {code}}, s.cfg.Issuer))
	return nil
}

// authorizeError sends an *oauthError to the client's redirect URI, and
// returns anything else for the caller to show as a problem document.
func (s *Service) authorizeError(w http.ResponseWriter, r *http.Request, req authzRequest, err error) error {
	var oe *oauthError
	if !errors.As(err, &oe) || req.RedirectURI == "" {
		return err
	}
	redirect(w, r, req.redirectTo(url.Values{"error": {oe.Code}, "error_description": {oe.Description}}, s.cfg.Issuer))
	return nil
}

// redirect answers 302 to a GET, 303 to a POST (so the browser follows
// with a GET and does not resend the form).
func redirect(w http.ResponseWriter, r *http.Request, to string) {
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, status)
}

// readForm reads a bounded application/x-www-form-urlencoded body; only
// body parameters count, never the query.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errs.E(errs.Unsupported, "the body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errs.E(errs.TooLarge, "the body is larger than %d bytes", maxFormBody)
		}
		return nil, errs.E(errs.Invalid, "the body is not a valid form")
	}
	return r.PostForm, nil
}

// ---- the sign-in form ----

// signInForm checks the form's CSRF token, the request it carries, and the
// credentials, then approves. Credential problems show the form again.
func (s *Service) signInForm(w http.ResponseWriter, r *http.Request, form url.Values) error {
	params := url.Values{}
	for _, p := range authzParams {
		if vs, ok := form[p]; ok {
			params[p] = vs
		}
	}
	if !s.checkCSRF(r, params, form.Get("csrf_token")) {
		return errs.E(errs.Forbidden, "the sign-in form has expired or did not come from MallHive; go back to the app and try again")
	}
	req, err := s.parseAuthorize(r.Context(), params)
	if err != nil {
		return s.authorizeError(w, r, req, err)
	}
	email, password, code := strings.TrimSpace(form.Get("email")), form.Get("password"), strings.TrimSpace(form.Get("code"))
	page := signInPage{Email: email}
	again := func(status int, msg string) error {
		page.Error = msg
		return s.renderSignIn(w, r, params, req, page, status)
	}
	if email == "" || password == "" || len(email) > MaxEmailLen || len(password) > MaxPasswordBytes {
		return again(http.StatusBadRequest, "Enter your email and password.")
	}
	addr := s.clientAddr(r)
	u, err := s.Authenticate(r.Context(), email, password, addr)
	if err == nil && s.needsEnrollment(u) {
		err = errs.E(errs.Forbidden, "Administrators must set up two-factor sign-in in MallHive before signing in to apps.")
	}
	if err == nil && u.TOTPEnabled {
		if code == "" {
			return again(http.StatusUnauthorized, "Enter the code from your authenticator app, or a recovery code.")
		}
		err = s.checkSecondFactor(r.Context(), u, code, addr)
	}
	if err != nil {
		// The form is shown again instead of a problem document, so
		// httpx.WriteError, which sets Retry-After, is not called.
		var t *tooManyAttempts
		if errors.As(err, &t) {
			w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(t.RetryAfter()), 10))
		}
		switch c := errs.CodeOf(err); c {
		case errs.Unauthenticated, errs.Forbidden, errs.TooManyRequests, errs.Invalid:
			return again(httpx.StatusOf(c), errMessage(err))
		}
		return err
	}
	return s.approve(w, r, req, u, s.now())
}

// signInPage is what the form shows besides the request it carries.
type signInPage struct {
	ClientName string
	Email      string
	Error      string
	Hidden     []hiddenField
	CSRF       string
}

type hiddenField struct{ Name, Value string }

// signInTemplate is the sign-in form; html/template escapes every value.
var signInTemplate = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · MallHive</title>
<style>body{font-family:system-ui,sans-serif;max-width:24rem;margin:3rem auto;padding:0 1rem}label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;box-sizing:border-box}button{margin-top:1.2rem;padding:.6rem 1.2rem}.error{color:#b00020}</style>
</head><body>
<h1>Sign in to MallHive</h1>
<p>to continue to <strong>{{.ClientName}}</strong></p>
{{with .Error}}<p class="error" role="alert">{{.}}</p>{{end}}
<form method="post" action="/oauth2/authorize">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required value="{{.Email}}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<label for="code">Two-factor code (if you use one)</label><input id="code" name="code" autocomplete="one-time-code">
<button type="submit">Sign in</button>
</form></body></html>
`))

func (s *Service) renderSignIn(w http.ResponseWriter, r *http.Request, params url.Values, req authzRequest, page signInPage, status int) error {
	page.ClientName = req.Client.Name
	page.CSRF = csrfToken(s.csrfSecret(w, r), params)
	for _, p := range authzParams {
		if params.Has(p) {
			page.Hidden = append(page.Hidden, hiddenField{p, params.Get(p)})
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// No form-action: browsers apply it to the redirect that follows the
	// post, which goes to the client's redirect URI.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	return signInTemplate.Execute(w, page)
}

// CSRF protection of the form: a random secret in a cookie (which another
// site can neither read nor, with the __Host- prefix, set), and in the form
// an HMAC of the request's parameters under that secret. A forged post
// lacks the secret; a token lifted from one form does not fit a request
// with other parameters.
const csrfCookieName = "mallhive_oauth_csrf"

func (s *Service) secureCookies() bool { return strings.HasPrefix(s.cfg.Issuer, "https://") }

func (s *Service) csrfCookie() string {
	if s.secureCookies() {
		return "__Host-" + csrfCookieName
	}
	return csrfCookieName
}

// csrfSecret returns the browser's CSRF secret, setting a new one when it
// has none. An existing one is kept, so forms open in two tabs both work.
func (s *Service) csrfSecret(w http.ResponseWriter, r *http.Request) []byte {
	if c, err := r.Cookie(s.csrfCookie()); err == nil {
		if b, err := base64.RawURLEncoding.DecodeString(c.Value); err == nil && len(b) == 32 {
			return b
		}
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	http.SetCookie(w, &http.Cookie{Name: s.csrfCookie(), Value: base64.RawURLEncoding.EncodeToString(b), Path: "/",
		MaxAge: int(time.Hour / time.Second), HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode})
	return b
}

func csrfToken(secret []byte, params url.Values) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("mallhive oauth2 sign-in\n" + params.Encode()))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (s *Service) checkCSRF(r *http.Request, params url.Values, token string) bool {
	c, err := r.Cookie(s.csrfCookie())
	if err != nil || token == "" {
		return false
	}
	secret, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(secret) != 32 {
		return false
	}
	return hmac.Equal([]byte(token), []byte(csrfToken(secret, params)))
}

// ---- token endpoint ----

func (s *Service) handleToken(w http.ResponseWriter, r *http.Request) error {
	res, err := s.token(w, r)
	if err != nil {
		s.writeOAuthError(w, r, err)
		return nil
	}
	writeTokens(w, res)
	return nil
}

func (s *Service) token(w http.ResponseWriter, r *http.Request) (oauthTokens, error) {
	form, err := readForm(w, r)
	if err != nil {
		return oauthTokens{}, oauthErr("invalid_request", "%s", errMessage(err))
	}
	for k, vs := range form {
		if len(vs) > 1 {
			return oauthTokens{}, oauthErr("invalid_request", "%s is repeated", k)
		}
	}
	grant := form.Get("grant_type")
	switch grant {
	case GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials:
	case "":
		return oauthTokens{}, oauthErr("invalid_request", "grant_type is required")
	default:
		return oauthTokens{}, oauthErr("unsupported_grant_type", "use authorization_code, refresh_token or client_credentials (there is no password grant)")
	}
	c, err := s.authenticateClient(r, form)
	if err != nil {
		return oauthTokens{}, err
	}
	ctx := r.Context()
	switch grant {
	case GrantAuthorizationCode:
		return s.exchangeCode(ctx, c, form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier"))
	case GrantRefreshToken:
		return s.refreshGrant(ctx, c, form.Get("refresh_token"), form.Get("scope"))
	default:
		return s.clientCredentialsGrant(c, form.Get("scope"))
	}
}

// authenticateClient identifies the client of a token request: HTTP Basic
// (client_secret_basic, id and secret form-urlencoded per RFC 6749
// §2.3.1), client_id and client_secret in the body (client_secret_post),
// or client_id alone for a public client (none). One method per request.
func (s *Service) authenticateClient(r *http.Request, form url.Values) (OAuthClient, error) {
	id, secret := form.Get("client_id"), form.Get("client_secret")
	if bid, bsecret, ok := r.BasicAuth(); ok {
		if form.Has("client_secret") {
			return OAuthClient{}, oauthErr("invalid_request", "authenticate the client one way only")
		}
		var err1, err2 error
		if bid, err1 = url.QueryUnescape(bid); err1 != nil {
			return OAuthClient{}, errBadClient
		}
		if bsecret, err2 = url.QueryUnescape(bsecret); err2 != nil {
			return OAuthClient{}, errBadClient
		}
		if id != "" && id != bid {
			return OAuthClient{}, oauthErr("invalid_request", "client_id differs from the authenticated client")
		}
		id, secret = bid, bsecret
	}
	if !validID(id) || len(secret) > maxSecretLen {
		return OAuthClient{}, errBadClient
	}
	c, err := s.store.OAuthClient(r.Context(), id)
	if errs.Is(err, errs.NotFound) {
		return OAuthClient{}, errBadClient
	}
	if err != nil {
		return OAuthClient{}, err
	}
	if c.Public() {
		// A public client has nothing to prove; one that sends a secret is
		// confused about what it is. (Basic with an empty password is the
		// same as none: some libraries send it.)
		if secret != "" {
			return OAuthClient{}, errBadClient
		}
		return c, nil
	}
	if secret == "" || subtle.ConstantTimeCompare([]byte(HashOpaqueToken(secret)), []byte(c.SecretHash)) != 1 {
		return OAuthClient{}, errBadClient
	}
	return c, nil
}

// writeOAuthError answers a token request per RFC 6749 §5.2.
func (s *Service) writeOAuthError(w http.ResponseWriter, r *http.Request, err error) {
	var oe *oauthError
	if !errors.As(err, &oe) {
		s.log.ErrorContext(r.Context(), "token request failed", "err", err)
		oe = &oauthError{Code: "server_error", Description: "an unexpected error occurred", Status: http.StatusInternalServerError}
		if errs.Is(err, errs.Unavailable) {
			oe.Code, oe.Status = "temporarily_unavailable", http.StatusServiceUnavailable
		}
	}
	if oe.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="mallhive"`)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	httpx.WriteJSON(w, oe.Status, map[string]string{"error": oe.Code, "error_description": oe.Description})
}

// ---- userinfo ----

func (s *Service) handleUserInfo(w http.ResponseWriter, r *http.Request) error {
	p, ok := authn.FromContext(r.Context())
	if !ok {
		return errs.E(errs.Unauthenticated, "send the access token as a Bearer token")
	}
	claims, err := bearerClaims(r, p)
	if err != nil {
		return errs.E(errs.Unauthenticated, "send the access token as a Bearer token")
	}
	if !hasScope(claims.Scope, ScopeOpenID) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mallhive", error="insufficient_scope", scope="openid"`)
		return errs.E(errs.Forbidden, "the access token was not granted the openid scope")
	}
	u, err := s.currentUser(r)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, struct {
		Subject string `json:"sub"`
		userClaims
	}{u.ID, claimsFor(u, claims.Scope)})
	return nil
}

// ---- admin: client registration ----

// clientView is the JSON of a client; the secret appears only in the
// answer that registers it.
type clientView struct {
	ClientID                string    `json:"client_id"`
	ClientSecret            string    `json:"client_secret,omitempty"`
	Name                    string    `json:"name"`
	RedirectURIs            []string  `json:"redirect_uris"`
	GrantTypes              []string  `json:"grant_types"`
	Scopes                  []string  `json:"scopes"`
	TokenEndpointAuthMethod string    `json:"token_endpoint_auth_method"`
	CreatedAt               time.Time `json:"created_at"`
}

func viewClient(c OAuthClient) clientView {
	v := clientView{ClientID: c.ID, Name: c.Name, RedirectURIs: c.RedirectURIs, GrantTypes: c.GrantTypes, Scopes: c.Scopes,
		TokenEndpointAuthMethod: "client_secret_basic", CreatedAt: c.CreatedAt}
	if c.Public() {
		v.TokenEndpointAuthMethod = "none"
	}
	for _, l := range []*[]string{&v.RedirectURIs, &v.GrantTypes, &v.Scopes} {
		if *l == nil {
			*l = []string{}
		}
	}
	return v
}

func (s *Service) handleCreateClient(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.requireAdmin(r); err != nil {
		return err
	}
	var body struct {
		Name         string   `json:"name"`
		RedirectURIs []string `json:"redirect_uris"`
		GrantTypes   []string `json:"grant_types"`
		Scopes       []string `json:"scopes"`
		Public       bool     `json:"public"`
	}
	if err := httpx.DecodeJSON(w, r, &body, profileBody); err != nil {
		return err
	}
	c, secret, err := s.RegisterClient(r.Context(), ClientRegistration(body))
	if err != nil {
		return err
	}
	v := viewClient(c)
	v.ClientSecret = secret
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Service) handleListClients(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.requireAdmin(r); err != nil {
		return err
	}
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLimit {
			return errs.Field("limit", "must be a number between 1 and 100")
		}
		limit = n
	}
	cs, next, err := s.store.ListOAuthClients(r.Context(), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	items := make([]clientView, len(cs))
	for i, c := range cs {
		items[i] = viewClient(c)
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": items, "next_cursor": next})
	return nil
}
