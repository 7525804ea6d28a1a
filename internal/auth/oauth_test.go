package auth

import (
	"context"
	"errors"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/httpx"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/sqldb/sqldbtest"
	"github.com/mallhive/mallhive/internal/platform/svc"
)

// These tests drive the OAuth2 / OpenID Connect provider with real client
// libraries: golang.org/x/oauth2 for the flows and coreos/go-oidc for
// discovery, ID token verification and userinfo, against the real handler
// behind the authn middleware on an HTTP server. The "browser" is an
// http.Client that does not follow redirects.

// eachOAuthEngine runs fn against a fresh provider on every engine.
func eachOAuthEngine(t *testing.T, fn func(t *testing.T, h *harness), opts ...func(*Config)) {
	t.Helper()
	sqldbtest.Each(t, ServiceName, testMigrations, func(t *testing.T, db *sqldb.DB) {
		fn(t, newOAuthHarness(t, db, nil, opts...))
	})
}

// newOAuthHarness is newHarness with the issuer at the test server's own
// URL, as OpenID Connect discovery requires; on ln when it is not nil (so
// the URL can be known before the service is configured).
func newOAuthHarness(t *testing.T, db *sqldb.DB, ln net.Listener, opts ...func(*Config)) *harness {
	t.Helper()
	var handler http.Handler
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	if ln != nil {
		srv.Listener.Close()
		srv.Listener = ln
	}
	srv.Start()
	t.Cleanup(srv.Close)
	env := &svc.Env{
		Log:       testLogger(),
		DataDir:   t.TempDir(),
		DB:        func(context.Context, string) (*sqldb.DB, error) { return db, nil },
		PublicURL: srv.URL,
		Embedded:  true,
	}
	cfg := DefaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(t.Context(), env, cfg)
	if err != nil {
		t.Fatalf("new service: %v", err)
	}
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	s.now = clk.Now
	h := &harness{t: t, svc: s, db: db, env: env, srv: srv, clock: clk}
	h.verifier = authn.NewVerifier(authn.VerifierConfig{JWKSURL: srv.URL + "/.well-known/jwks.json", Issuer: srv.URL, Audience: "mallhive", Now: clk.Now})
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	handler = httpx.ClientIPs(loopback)(h.verifier.Middleware(s.Handler()))
	return h
}

// browser is a user agent with cookies that shows redirects instead of
// following them.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// get sends a GET (with a bearer token when tok is not empty).
func get(t *testing.T, c *http.Client, u, tok string) resp {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return send(t, c, req)
}

func postForm(t *testing.T, c *http.Client, u string, form url.Values) resp {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return send(t, c, req)
}

func send(t *testing.T, c *http.Client, req *http.Request) resp {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp{Status: res.StatusCode, Header: res.Header, Body: body}
}

// location parses the redirect of r, which must be one.
func location(t *testing.T, r resp) *url.URL {
	t.Helper()
	if r.Status != http.StatusFound && r.Status != http.StatusSeeOther {
		t.Fatalf("status %d, want a redirect: %s", r.Status, r.Body)
	}
	u, err := url.Parse(r.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// verifiedUser registers a buyer, confirms their email and signs them in.
func (h *harness) verifiedUser(email, name string) (userView, loginResp) {
	h.t.Helper()
	u := h.register(email, pw1, name)
	expect(h.t, h.do("POST", "/api/v1/auth/verify-email", map[string]string{"token": h.verificationToken(u.ID)}), http.StatusNoContent, "verify "+email)
	return u, h.login(email, pw1)
}

// client registers a client app directly (the admin REST route is tested
// in TestOAuthClientRegistration).
func (h *harness) client(reg ClientRegistration) (OAuthClient, string) {
	h.t.Helper()
	c, secret, err := h.svc.RegisterClient(context.Background(), reg)
	if err != nil {
		h.t.Fatalf("register client: %v", err)
	}
	return c, secret
}

// oauthConfig is what a client app configures, from discovery.
func oauthConfig(p *oidc.Provider, c OAuthClient, secret string, scopes ...string) *oauth2.Config {
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	if secret == "" {
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{ClientID: c.ID, ClientSecret: secret, Endpoint: ep, RedirectURL: c.RedirectURIs[0], Scopes: scopes}
}

// authorize runs the browser's part of the flow for a user signed in with
// a MallHive access token, and returns the code.
func authorize(t *testing.T, h *harness, conf *oauth2.Config, verifier, state, nonce, userToken string) string {
	t.Helper()
	loc := location(t, get(t, browser(t), conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), userToken))
	q := loc.Query()
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != conf.RedirectURL || q.Get("state") != state || q.Get("iss") != h.srv.URL || q.Get("error") != "" {
		t.Fatalf("authorize redirected to %s", loc)
	}
	return q.Get("code")
}

// tokenRequest posts to the token endpoint as a client authenticating with
// HTTP Basic, for what x/oauth2 cannot send.
func tokenRequest(t *testing.T, h *harness, clientID, secret string, form url.Values) resp {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	return send(t, http.DefaultClient, req)
}

// oauthErrorCode is the RFC 6749 error an x/oauth2 call failed with.
func oauthErrorCode(t *testing.T, err error) string {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not a token endpoint error", err)
	}
	return re.ErrorCode
}

// expired returns a copy of tok that x/oauth2 will refresh.
func expired(tok *oauth2.Token) *oauth2.Token {
	c := *tok
	c.Expiry = time.Now().Add(-time.Hour)
	return &c
}

func TestOAuthAuthorizationCodeFlow(t *testing.T) {
	eachOAuthEngine(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		provider, err := oidc.NewProvider(ctx, h.srv.URL)
		if err != nil {
			t.Fatalf("discovery: %v", err)
		}
		var disco struct {
			Grants   []string `json:"grant_types_supported"`
			PKCE     []string `json:"code_challenge_methods_supported"`
			Response []string `json:"response_types_supported"`
			Auth     []string `json:"token_endpoint_auth_methods_supported"`
		}
		if err := provider.Claims(&disco); err != nil {
			t.Fatal(err)
		}
		if strings.Join(disco.Grants, " ") != "authorization_code refresh_token client_credentials" || strings.Join(disco.PKCE, " ") != "S256" ||
			strings.Join(disco.Response, " ") != "code" || len(disco.Auth) != 3 {
			t.Errorf("discovery %+v", disco)
		}

		ana, l := h.verifiedUser("ana@example.com", "Ana")
		app, secret := h.client(ClientRegistration{Name: "Shop App", RedirectURIs: []string{"https://app.example/cb"}})
		conf := oauthConfig(provider, app, secret, ScopeOpenID, ScopeProfile, ScopeEmail, ScopeOfflineAccess)

		verifier, nonce := oauth2.GenerateVerifier(), "n-0S6_WzA2Mj"
		code := authorize(t, h, conf, verifier, "st-1", nonce, l.AccessToken)
		tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if tok.TokenType != "Bearer" || tok.RefreshToken == "" || tok.Extra("scope") != "openid profile email offline_access" {
			t.Errorf("token %+v scope %v", tok, tok.Extra("scope"))
		}

		// The ID token, checked like any relying party would.
		raw, _ := tok.Extra("id_token").(string)
		idt, err := provider.Verifier(&oidc.Config{ClientID: app.ID}).Verify(ctx, raw)
		if err != nil {
			t.Fatalf("verify id token: %v", err)
		}
		if idt.Subject != ana.ID || idt.Nonce != nonce || idt.Issuer != h.srv.URL {
			t.Errorf("id token %+v", idt)
		}
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Errorf("at_hash: %v", err)
		}
		var claims struct {
			Email         string `json:"email"`
			EmailVerified bool   `json:"email_verified"`
			Name          string `json:"name"`
			AZP           string `json:"azp"`
			AuthTime      int64  `json:"auth_time"`
		}
		if err := idt.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		if claims.Email != "ana@example.com" || !claims.EmailVerified || claims.Name != "Ana" || claims.AZP != app.ID || claims.AuthTime == 0 {
			t.Errorf("id token claims %+v", claims)
		}

		// Userinfo through go-oidc.
		info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatalf("userinfo: %v", err)
		}
		var more struct {
			Name string `json:"name"`
		}
		_ = info.Claims(&more)
		if info.Subject != ana.ID || info.Email != "ana@example.com" || !info.EmailVerified || more.Name != "Ana" {
			t.Errorf("userinfo %+v %+v", info, more)
		}

		// The access token works across MallHive, without admin powers
		// and with the client named.
		p, err := h.verifier.Verify(ctx, tok.AccessToken)
		if err != nil || p.UserID != ana.ID || strings.Join(p.Roles, ",") != "buyer" {
			t.Errorf("access token %+v %v", p, err)
		}
		expect(t, h.do("GET", "/api/v1/users/me", nil, bearer(tok.AccessToken)), http.StatusOK, "me with a client's token")

		// Refresh through x/oauth2's TokenSource: a new pair; the scope
		// stays (userinfo still answers).
		fresh, err := conf.TokenSource(ctx, expired(tok)).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if fresh.RefreshToken == tok.RefreshToken || fresh.AccessToken == tok.AccessToken || fresh.Extra("scope") != tok.Extra("scope") {
			t.Errorf("refreshed %+v", fresh)
		}
		if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(fresh)); err != nil {
			t.Errorf("userinfo after refresh: %v", err)
		}
		// A wider scope is refused before the token is spent (x/oauth2
		// sends no scope when refreshing, hence the raw request).
		r := tokenRequest(t, h, app.ID, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {fresh.RefreshToken}, "scope": {"openid admin"}})
		if r.Status != http.StatusBadRequest || r.m(t)["error"] != "invalid_scope" {
			t.Errorf("wider scope on refresh: %d %s", r.Status, r.Body)
		}
		if fresh, err = conf.TokenSource(ctx, expired(fresh)).Token(); err != nil {
			t.Fatalf("refresh after a refused scope: %v", err)
		}
		// Replaying the spent refresh token revokes the family.
		if _, err := conf.TokenSource(ctx, expired(tok)).Token(); oauthErrorCode(t, err) != "invalid_grant" {
			t.Errorf("spent refresh token: %v", err)
		}
		if _, err := conf.TokenSource(ctx, expired(fresh)).Token(); oauthErrorCode(t, err) != "invalid_grant" {
			t.Errorf("refresh after reuse: %v", err)
		}
		// A client's refresh token is not a first-party one, nor the other way round.
		expect(t, h.refresh(fresh.RefreshToken), http.StatusUnauthorized, "client refresh token at the first-party endpoint")
		first := expired(&oauth2.Token{AccessToken: l.AccessToken, RefreshToken: l.RefreshToken})
		if _, err := conf.TokenSource(ctx, first).Token(); oauthErrorCode(t, err) != "invalid_grant" {
			t.Errorf("first-party refresh token at the token endpoint: %v", err)
		}

		// Without offline_access: no refresh token; without openid: no
		// ID token, and userinfo refuses the token.
		plain := oauthConfig(provider, app, secret, ScopeEmail)
		v2 := oauth2.GenerateVerifier()
		tok2, err := plain.Exchange(ctx, authorize(t, h, plain, v2, "st-2", "", l.AccessToken), oauth2.VerifierOption(v2))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if tok2.RefreshToken != "" || tok2.Extra("id_token") != nil || tok2.Extra("scope") != "email" {
			t.Errorf("email-only token %+v", tok2)
		}
		if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok2)); err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("userinfo without openid: %v", err)
		}
		expect(t, h.do("GET", "/oauth2/userinfo", nil), http.StatusUnauthorized, "userinfo without a token")

		// An app's token cannot authorize apps (it could widen its own scope).
		r = get(t, browser(t), conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v2)), tok2.AccessToken)
		expect(t, r, http.StatusForbidden, "authorize with an app's token")
	})
}

func TestOAuthAdminUsers(t *testing.T) {
	eachOAuthEngine(t, func(t *testing.T, h *harness) {
		// An admin's delegated token carries no admin role, and admin
		// routes refuse it.
		admin, _ := h.createAdmin("root@example.com")
		provider, err := oidc.NewProvider(t.Context(), h.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		app, secret := h.client(ClientRegistration{Name: "Ops App", RedirectURIs: []string{"https://ops.example/cb"}})
		conf := oauthConfig(provider, app, secret, ScopeOpenID, ScopeOfflineAccess)
		v := oauth2.GenerateVerifier()
		tok, err := conf.Exchange(t.Context(), authorize(t, h, conf, v, "s", "", admin.AccessToken), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		p, err := h.verifier.Verify(t.Context(), tok.AccessToken)
		if err != nil || p.HasRole(authn.RoleAdmin) {
			t.Errorf("delegated admin token %+v %v", p, err)
		}
		expect(t, h.do("GET", "/api/v1/admin/users", nil, bearer(tok.AccessToken)), http.StatusForbidden, "admin route with a delegated token")
		fresh, err := conf.TokenSource(t.Context(), expired(tok)).Token()
		if err != nil {
			t.Fatal(err)
		}
		if p, err := h.verifier.Verify(t.Context(), fresh.AccessToken); err != nil || p.HasRole(authn.RoleAdmin) {
			t.Errorf("refreshed delegated admin token %+v %v", p, err)
		}
	})
}

func TestOAuthClientCredentials(t *testing.T) {
	eachOAuthEngine(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		svcClient, secret := h.client(ClientRegistration{Name: "Indexer", GrantTypes: []string{GrantClientCredentials}})
		cc := clientcredentials.Config{ClientID: svcClient.ID, ClientSecret: secret, TokenURL: h.srv.URL + "/oauth2/token"}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("client credentials: %v", err)
		}
		if tok.RefreshToken != "" || tok.Extra("id_token") != nil {
			t.Errorf("client credentials token %+v", tok)
		}
		p, err := h.verifier.Verify(ctx, tok.AccessToken)
		if err != nil || p.UserID != "client:"+svcClient.ID || strings.Join(p.Roles, ",") != RoleService {
			t.Errorf("service token %+v %v", p, err)
		}
		expect(t, h.do("GET", "/api/v1/users/me", nil, bearer(tok.AccessToken)), http.StatusUnauthorized, "a service token is no user")
		expect(t, h.do("GET", "/oauth2/userinfo", nil, bearer(tok.AccessToken)), http.StatusForbidden, "userinfo with a service token")

		// Client secret in the body works too (client_secret_post).
		cc.AuthStyle = oauth2.AuthStyleInParams
		if _, err := cc.Token(ctx); err != nil {
			t.Errorf("client_secret_post: %v", err)
		}
		cc.Scopes = []string{"openid"}
		if _, err := cc.Token(ctx); oauthErrorCode(t, err) != "invalid_scope" {
			t.Errorf("client credentials with a scope: %v", err)
		}
	})
}

// TestOAuthSignInForm: a browser without a MallHive token signs in on the
// provider's own form, CSRF-protected, with a second factor when the user
// has one; a public client completes with PKCE alone.
func TestOAuthSignInForm(t *testing.T) {
	eachOAuthEngine(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		provider, err := oidc.NewProvider(ctx, h.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		bea, _ := h.verifiedUser("bea@example.com", "Bea")
		app, _ := h.client(ClientRegistration{Name: "Pocket <App>", Public: true, RedirectURIs: []string{"http://127.0.0.1:8765/callback"}})
		conf := oauthConfig(provider, app, "", ScopeOpenID, ScopeEmail)
		verifier := oauth2.GenerateVerifier()
		authURL := conf.AuthCodeURL("st&<x>", oauth2.S256ChallengeOption(verifier), oidc.Nonce("nonce-1"))

		b := browser(t)
		page := get(t, b, authURL, "")
		if page.Status != http.StatusOK || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") ||
			page.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(page.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Fatalf("sign-in page: %d %v", page.Status, page.Header)
		}
		if !strings.Contains(string(page.Body), "Pocket &lt;App&gt;") {
			t.Errorf("the page does not name the client safely: %s", page.Body)
		}
		form := formFields(t, page)
		if form.Get("csrf_token") == "" || form.Get("state") != "st&<x>" || form.Get("client_id") != app.ID {
			t.Fatalf("form fields %v", form)
		}
		signIn := func(b *http.Client, f url.Values, email, password, code string) resp {
			f = cloneValues(f)
			f.Set("email", email)
			f.Set("password", password)
			f.Set("code", code)
			return postForm(t, b, h.srv.URL+"/oauth2/authorize", f)
		}

		// CSRF: the token is needed, must fit the request, and must come
		// with the browser's cookie.
		noToken := cloneValues(form)
		noToken.Del("csrf_token")
		expect(t, signIn(b, noToken, "bea@example.com", pw1, ""), http.StatusForbidden, "no CSRF token")
		otherState := cloneValues(form)
		otherState.Set("state", "attacker")
		expect(t, signIn(b, otherState, "bea@example.com", pw1, ""), http.StatusForbidden, "CSRF token of another request")
		expect(t, signIn(browser(t), form, "bea@example.com", pw1, ""), http.StatusForbidden, "CSRF token without the cookie")
		forged := cloneValues(form)
		forged.Set("csrf_token", strings.Repeat("A", 43))
		expect(t, signIn(b, forged, "bea@example.com", pw1, ""), http.StatusForbidden, "forged CSRF token")

		// A wrong password shows the form again.
		r := signIn(b, form, "bea@example.com", pw2, "")
		if r.Status != http.StatusUnauthorized || !strings.Contains(string(r.Body), "the email or password is wrong") || formFields(t, r).Get("email") != "bea@example.com" {
			t.Fatalf("wrong password: %d %s", r.Status, r.Body)
		}

		loc := location(t, signIn(b, form, "bea@example.com", pw1, ""))
		if loc.Query().Get("state") != "st&<x>" || loc.Query().Get("iss") != h.srv.URL {
			t.Fatalf("redirect %s", loc)
		}
		tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("public client exchange: %v", err)
		}
		idt, err := provider.Verifier(&oidc.Config{ClientID: app.ID}).Verify(ctx, tok.Extra("id_token").(string))
		if err != nil || idt.Subject != bea.ID || idt.Nonce != "nonce-1" {
			t.Fatalf("id token %+v %v", idt, err)
		}

		// A user with TOTP needs the code too.
		_, l := h.verifiedUser("tom@example.com", "Tom")
		secret := h.enableTOTP(l.AccessToken)
		h.clock.Advance(30 * time.Second)
		page = get(t, b, authURL, "")
		form = formFields(t, page)
		r = signIn(b, form, "tom@example.com", pw1, "")
		if r.Status != http.StatusUnauthorized || !strings.Contains(string(r.Body), "authenticator app") {
			t.Fatalf("TOTP user without a code: %d %s", r.Status, r.Body)
		}
		if r = signIn(b, form, "tom@example.com", pw1, "000000"); r.Status != http.StatusUnauthorized {
			t.Fatalf("TOTP user with a wrong code: %d %s", r.Status, r.Body)
		}
		loc = location(t, signIn(b, form, "tom@example.com", pw1, h.totpCode(secret)))
		if loc.Query().Get("code") == "" {
			t.Fatalf("TOTP sign-in redirected to %s", loc)
		}
	})
}

// TestOAuthSignInFormThrottle: a throttled sign-in shows the form again,
// with 429 and Retry-After, as the JSON login answers a problem document.
func TestOAuthSignInFormThrottle(t *testing.T) {
	eachOAuthEngine(t, func(t *testing.T, h *harness) {
		provider, err := oidc.NewProvider(t.Context(), h.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		h.verifiedUser("bea@example.com", "Bea")
		app, _ := h.client(ClientRegistration{Name: "Pocket App", Public: true, RedirectURIs: []string{"http://127.0.0.1:8765/callback"}})
		conf := oauthConfig(provider, app, "", ScopeOpenID)
		b := browser(t)
		form := formFields(t, get(t, b, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), ""))
		signIn := func(password string) resp {
			f := cloneValues(form)
			f.Set("email", "bea@example.com")
			f.Set("password", password)
			return postForm(t, b, h.srv.URL+"/oauth2/authorize", f)
		}
		for i := range h.svc.cfg.Throttle.PairFree + 1 {
			if r := signIn("guess-" + strconv.Itoa(i)); r.Status != http.StatusUnauthorized {
				t.Fatalf("wrong password %d: %d %s", i, r.Status, r.Body)
			}
		}
		r := signIn(pw1)
		if r.Status != http.StatusTooManyRequests || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(string(r.Body), "try again in 1 seconds") || formFields(t, r).Get("csrf_token") == "" {
			t.Fatalf("throttled sign-in: %d %v %s", r.Status, r.Header, r.Body)
		}
		if ra := r.Header.Get("Retry-After"); ra != "1" {
			t.Errorf("Retry-After %q, want 1", ra)
		}
		h.clock.Advance(time.Second)
		if loc := location(t, signIn(pw1)); loc.Query().Get("code") == "" {
			t.Fatalf("sign-in after the delay redirected to %s", loc)
		}
	})
}

// enableTOTP turns two-factor sign-in on for the holder of tok and returns
// the secret.
func (h *harness) enableTOTP(tok string) string {
	h.t.Helper()
	r := h.do("POST", "/api/v1/users/me/2fa/totp", nil, bearer(tok))
	expect(h.t, r, http.StatusOK, "enrol")
	var e enrollmentView
	r.decode(h.t, &e)
	expect(h.t, h.do("POST", "/api/v1/users/me/2fa/totp/confirm", map[string]string{"code": h.totpCode(e.Secret)}, bearer(tok)), http.StatusOK, "confirm")
	return e.Secret
}

var hiddenRE = regexp.MustCompile(`<input (?:type="hidden" )?(?:id="[a-z]+" )?name="([a-z_]+)"[^>]*? value="([^"]*)"`)

// formFields reads the named inputs (and their values) of the sign-in page.
func formFields(t *testing.T, r resp) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(string(r.Body), -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

func cloneValues(v url.Values) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = slices.Clone(vs)
	}
	return c
}

// TestOAuthAttacks: requests a provider must refuse, each the way OAuth
// says.
func TestOAuthAttacks(t *testing.T) {
	eachOAuthEngine(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		provider, err := oidc.NewProvider(ctx, h.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		_, l := h.verifiedUser("eve@example.com", "Eve")
		a, aSecret := h.client(ClientRegistration{Name: "A", RedirectURIs: []string{"https://a.example/cb", "https://a.example/other"}})
		bc, bSecret := h.client(ClientRegistration{Name: "B", RedirectURIs: []string{"https://b.example/cb"}})
		pub, _ := h.client(ClientRegistration{Name: "P", Public: true, RedirectURIs: []string{"com.example.app:/cb"}})
		confA := oauthConfig(provider, a, aSecret, ScopeOpenID, ScopeOfflineAccess)
		confB := oauthConfig(provider, bc, bSecret, ScopeOpenID)

		// Authorization requests. Errors about the client or its redirect
		// URI are shown, never redirected; the rest go to the client.
		authz := func(mut func(q url.Values)) resp {
			u, _ := url.Parse(confA.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			q := u.Query()
			mut(q)
			u.RawQuery = q.Encode()
			return get(t, browser(t), u.String(), l.AccessToken)
		}
		for _, c := range []struct {
			name string
			mut  func(q url.Values)
		}{
			{"wrong redirect_uri", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }},
			{"redirect_uri of another client", func(q url.Values) { q.Set("redirect_uri", "https://b.example/cb") }},
			{"redirect_uri with a suffix", func(q url.Values) { q.Set("redirect_uri", "https://a.example/cb/../x") }},
			{"no redirect_uri", func(q url.Values) { q.Del("redirect_uri") }},
			{"unknown client", func(q url.Values) { q.Set("client_id", newID()) }},
			{"repeated client_id", func(q url.Values) { q.Add("client_id", bc.ID) }},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := authz(c.mut)
				expect(t, r, http.StatusBadRequest, c.name)
				if r.Header.Get("Location") != "" {
					t.Errorf("redirected to %s", r.Header.Get("Location"))
				}
			})
		}
		for _, c := range []struct {
			name, want string
			mut        func(q url.Values)
		}{
			{"missing PKCE", "invalid_request", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }},
			{"plain PKCE", "invalid_request", func(q url.Values) { q.Set("code_challenge_method", "plain") }},
			{"challenge without method", "invalid_request", func(q url.Values) { q.Del("code_challenge_method") }},
			{"malformed challenge", "invalid_request", func(q url.Values) { q.Set("code_challenge", "short") }},
			{"implicit grant", "unsupported_response_type", func(q url.Values) { q.Set("response_type", "token") }},
			{"hybrid flow", "unsupported_response_type", func(q url.Values) { q.Set("response_type", "code id_token") }},
			{"unknown scope", "invalid_scope", func(q url.Values) { q.Set("scope", "openid admin") }},
			{"repeated state", "invalid_request", func(q url.Values) { q.Add("state", "x") }},
			{"request object", "request_not_supported", func(q url.Values) { q.Set("request", "eyJ...") }},
		} {
			t.Run(c.name, func(t *testing.T) {
				loc := location(t, authz(c.mut))
				if got := loc.Query().Get("error"); got != c.want || loc.Host != "a.example" || loc.Query().Get("code") != "" {
					t.Errorf("redirected to %s, want error %s", loc, c.want)
				}
				if c.name != "repeated state" && loc.Query().Get("state") != "st" {
					t.Errorf("state not passed back: %s", loc)
				}
			})
		}
		t.Run("prompt=none without a session", func(t *testing.T) {
			u := confA.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "none"))
			if loc := location(t, get(t, browser(t), u, "")); loc.Query().Get("error") != "login_required" {
				t.Errorf("redirected to %s", loc)
			}
		})

		// Token requests.
		codeFor := func(conf *oauth2.Config, verifier string) string {
			return authorize(t, h, conf, verifier, "st", "", l.AccessToken)
		}
		t.Run("wrong verifier", func(t *testing.T) {
			v := oauth2.GenerateVerifier()
			code := codeFor(confA, v)
			if _, err := confA.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); oauthErrorCode(t, err) != "invalid_grant" {
				t.Errorf("wrong verifier: %v", err)
			}
			// One try per code: the right verifier comes too late.
			if _, err := confA.Exchange(ctx, code, oauth2.VerifierOption(v)); oauthErrorCode(t, err) != "invalid_grant" {
				t.Errorf("after a wrong verifier: %v", err)
			}
		})
		t.Run("no verifier", func(t *testing.T) {
			if _, err := confA.Exchange(ctx, codeFor(confA, oauth2.GenerateVerifier())); oauthErrorCode(t, err) != "invalid_request" {
				t.Errorf("no verifier: %v", err)
			}
		})
		t.Run("code reuse revokes", func(t *testing.T) {
			v := oauth2.GenerateVerifier()
			code := codeFor(confA, v)
			tok, err := confA.Exchange(ctx, code, oauth2.VerifierOption(v))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := confA.Exchange(ctx, code, oauth2.VerifierOption(v)); oauthErrorCode(t, err) != "invalid_grant" {
				t.Errorf("reused code: %v", err)
			}
			if _, err := confA.TokenSource(ctx, expired(tok)).Token(); oauthErrorCode(t, err) != "invalid_grant" {
				t.Errorf("refresh token of a reused code still works: %v", err)
			}
		})
		t.Run("code for another client", func(t *testing.T) {
			v := oauth2.GenerateVerifier()
			code := codeFor(confA, v)
			stolen := *confB
			stolen.RedirectURL = confA.RedirectURL
			if _, err := stolen.Exchange(ctx, code, oauth2.VerifierOption(v)); oauthErrorCode(t, err) != "invalid_grant" {
				t.Errorf("another client's code: %v", err)
			}
			if _, err := confA.Exchange(ctx, code, oauth2.VerifierOption(v)); err != nil {
				t.Errorf("the rightful client after the attempt: %v", err)
			}
		})
		t.Run("other redirect_uri", func(t *testing.T) {
			v := oauth2.GenerateVerifier()
			code := codeFor(confA, v)
			other := *confA
			other.RedirectURL = "https://a.example/other"
			if _, err := other.Exchange(ctx, code, oauth2.VerifierOption(v)); oauthErrorCode(t, err) != "invalid_grant" {
				t.Errorf("redirect_uri differs: %v", err)
			}
		})
		t.Run("expired code", func(t *testing.T) {
			v := oauth2.GenerateVerifier()
			code := codeFor(confA, v)
			h.clock.Advance(authCodeTTL + time.Second)
			if _, err := confA.Exchange(ctx, code, oauth2.VerifierOption(v)); oauthErrorCode(t, err) != "invalid_grant" {
				t.Errorf("expired code: %v", err)
			}
		})
		t.Run("bad client secret", func(t *testing.T) {
			v := oauth2.GenerateVerifier()
			code := codeFor(confA, v)
			bad := *confA
			bad.ClientSecret = "not-the-secret"
			_, err := bad.Exchange(ctx, code, oauth2.VerifierOption(v))
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != "invalid_client" || re.Response.StatusCode != http.StatusUnauthorized {
				t.Errorf("bad secret: %v", err)
			}
			// Without any secret, a confidential client is not authenticated.
			none := *confA
			none.ClientSecret = ""
			none.Endpoint.AuthStyle = oauth2.AuthStyleInParams
			if _, err := none.Exchange(ctx, code, oauth2.VerifierOption(v)); oauthErrorCode(t, err) != "invalid_client" {
				t.Errorf("confidential client without a secret: %v", err)
			}
			if _, err := confA.Exchange(ctx, code, oauth2.VerifierOption(v)); err != nil {
				t.Errorf("the code after failed client authentication: %v", err)
			}
		})
		t.Run("public client doing client_credentials", func(t *testing.T) {
			cc := clientcredentials.Config{ClientID: pub.ID, TokenURL: h.srv.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}
			if _, err := cc.Token(ctx); oauthErrorCode(t, err) != "unauthorized_client" {
				t.Errorf("public client credentials: %v", err)
			}
		})
		t.Run("client_credentials not allowed", func(t *testing.T) {
			cc := clientcredentials.Config{ClientID: a.ID, ClientSecret: aSecret, TokenURL: h.srv.URL + "/oauth2/token"}
			if _, err := cc.Token(ctx); oauthErrorCode(t, err) != "unauthorized_client" {
				t.Errorf("client credentials for a user-facing client: %v", err)
			}
		})
		t.Run("password grant", func(t *testing.T) {
			if _, err := confA.PasswordCredentialsToken(ctx, "eve@example.com", pw1); oauthErrorCode(t, err) != "unsupported_grant_type" {
				t.Errorf("password grant: %v", err)
			}
		})
		t.Run("token endpoint answers", func(t *testing.T) {
			r := postForm(t, http.DefaultClient, h.srv.URL+"/oauth2/token", url.Values{"grant_type": {"implicit"}, "client_id": {pub.ID}})
			if r.Status != http.StatusBadRequest || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Cache-Control") != "no-store" ||
				r.m(t)["error"] != "unsupported_grant_type" || r.m(t)["error_description"] == "" {
				t.Errorf("token error: %d %v %s", r.Status, r.Header, r.Body)
			}
			r = postForm(t, http.DefaultClient, h.srv.URL+"/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {newID()}, "code": {"x"}})
			if r.Status != http.StatusUnauthorized || r.m(t)["error"] != "invalid_client" || r.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("unknown client: %d %v %s", r.Status, r.Header, r.Body)
			}
			r = h.do("POST", "/oauth2/token", map[string]string{"grant_type": "client_credentials"})
			if r.Status != http.StatusBadRequest || r.m(t)["error"] != "invalid_request" {
				t.Errorf("JSON body: %d %s", r.Status, r.Body)
			}
			r = postForm(t, http.DefaultClient, h.srv.URL+"/oauth2/token", url.Values{"grant_type": {"refresh_token", "refresh_token"}})
			if r.Status != http.StatusBadRequest || r.m(t)["error"] != "invalid_request" {
				t.Errorf("repeated parameter: %d %s", r.Status, r.Body)
			}
			expect(t, h.do("GET", "/oauth2/token", nil), http.StatusMethodNotAllowed, "GET token")
		})
	})
}

func TestOAuthClientRegistration(t *testing.T) {
	eachOAuthEngine(t, func(t *testing.T, h *harness) {
		admin, _ := h.createAdmin("root@example.com")
		_, buyer := h.verifiedUser("bob@example.com", "Bob")
		body := map[string]any{"name": "Shop App", "redirect_uris": []string{"https://app.example/cb", "com.example.shop:/cb"}}
		expect(t, h.do("POST", "/api/v1/admin/oauth-clients", body), http.StatusUnauthorized, "anonymous")
		expect(t, h.do("POST", "/api/v1/admin/oauth-clients", body, bearer(buyer.AccessToken)), http.StatusForbidden, "buyer")

		r := h.do("POST", "/api/v1/admin/oauth-clients", body, bearer(admin.AccessToken))
		expect(t, r, http.StatusCreated, "register")
		var c clientView
		r.decode(t, &c)
		if !validID(c.ClientID) || len(c.ClientSecret) < 40 || c.TokenEndpointAuthMethod != "client_secret_basic" ||
			strings.Join(c.GrantTypes, " ") != "authorization_code refresh_token" || strings.Join(c.Scopes, " ") != "openid profile email offline_access" {
			t.Fatalf("registered %+v", c)
		}
		r = h.do("POST", "/api/v1/admin/oauth-clients", map[string]any{"name": "Cron", "grant_types": []string{"client_credentials"}}, bearer(admin.AccessToken))
		expect(t, r, http.StatusCreated, "register a service account")

		r = h.do("GET", "/api/v1/admin/oauth-clients?limit=1", nil, bearer(admin.AccessToken))
		expect(t, r, http.StatusOK, "list")
		var page struct {
			Items []clientView `json:"items"`
			Next  string       `json:"next_cursor"`
		}
		r.decode(t, &page)
		if len(page.Items) != 1 || page.Items[0].Name != "Cron" || page.Next == "" || strings.Contains(string(r.Body), c.ClientSecret) || strings.Contains(string(r.Body), "secret\"") {
			t.Fatalf("list %s", r.Body)
		}
		r = h.do("GET", "/api/v1/admin/oauth-clients?cursor="+page.Next, nil, bearer(admin.AccessToken))
		r.decode(t, &page)
		if len(page.Items) != 1 || page.Items[0].ClientID != c.ClientID || page.Next != "" {
			t.Fatalf("second page %s", r.Body)
		}
		expect(t, h.do("GET", "/api/v1/admin/oauth-clients", nil, bearer(buyer.AccessToken)), http.StatusForbidden, "buyer lists")

		for name, c := range map[string]struct {
			body  map[string]any
			field string
		}{
			"no name":               {map[string]any{"redirect_uris": []string{"https://a.example/cb"}}, "name"},
			"no redirect":           {map[string]any{"name": "X"}, "redirect_uris"},
			"http redirect":         {map[string]any{"name": "X", "redirect_uris": []string{"http://a.example/cb"}}, "redirect_uris[0]"},
			"fragment":              {map[string]any{"name": "X", "redirect_uris": []string{"https://a.example/cb#x"}}, "redirect_uris[0]"},
			"relative":              {map[string]any{"name": "X", "redirect_uris": []string{"/cb"}}, "redirect_uris[0]"},
			"bare custom scheme":    {map[string]any{"name": "X", "redirect_uris": []string{"myapp:/cb"}}, "redirect_uris[0]"},
			"implicit grant":        {map[string]any{"name": "X", "redirect_uris": []string{"https://a.example/cb"}, "grant_types": []string{"implicit"}}, "grant_types"},
			"password grant":        {map[string]any{"name": "X", "redirect_uris": []string{"https://a.example/cb"}, "grant_types": []string{"password"}}, "grant_types"},
			"public service":        {map[string]any{"name": "X", "public": true, "grant_types": []string{"client_credentials"}}, "grant_types"},
			"unknown scope":         {map[string]any{"name": "X", "redirect_uris": []string{"https://a.example/cb"}, "scopes": []string{"admin"}}, "scopes"},
			"offline, no refresh":   {map[string]any{"name": "X", "redirect_uris": []string{"https://a.example/cb"}, "grant_types": []string{"authorization_code"}, "scopes": []string{"openid", "offline_access"}}, "scopes"},
			"service with redirect": {map[string]any{"name": "X", "redirect_uris": []string{"https://a.example/cb"}, "grant_types": []string{"client_credentials"}}, "redirect_uris"},
		} {
			t.Run(name, func(t *testing.T) {
				r := h.do("POST", "/api/v1/admin/oauth-clients", c.body, bearer(admin.AccessToken))
				expect(t, r, http.StatusBadRequest, name)
				errsMap, _ := r.m(t)["errors"].(map[string]any)
				if _, ok := errsMap[c.field]; !ok {
					t.Errorf("problem does not name %q: %s", c.field, r.Body)
				}
			})
		}
	})
}

func TestCheckRedirectURI(t *testing.T) {
	for uri, ok := range map[string]bool{
		"https://app.example/cb":          true,
		"https://app.example:8443/cb?x=1": true,
		"http://127.0.0.1:8765/cb":        true,
		"http://[::1]/cb":                 true,
		"http://localhost:3000/cb":        true,
		"com.example.app:/oauth2redirect": true,
		"http://app.example/cb":           false,
		"https://app.example/cb#frag":     false,
		"https://user:pw@app.example/cb":  false,
		"https:///cb":                     false,
		"javascript:alert(1)":             false,
		"data:text/html,x":                false,
		"/relative":                       false,
		"":                                false,
		"https://app.example/" + strings.Repeat("a", maxRedirectURILen): false,
	} {
		if got := checkRedirectURI(uri) == ""; got != ok {
			t.Errorf("checkRedirectURI(%q) ok = %v, want %v (%s)", uri, got, ok, checkRedirectURI(uri))
		}
	}
}

func TestPKCE(t *testing.T) {
	v := oauth2.GenerateVerifier()
	challenge := oauth2.S256ChallengeFromVerifier(v)
	if !validChallenge(challenge) || !pkceMatches(v, challenge) {
		t.Fatal("x/oauth2's verifier and challenge are refused")
	}
	for _, bad := range []string{"", v[:42], v + strings.Repeat("a", 100), v[:42] + "+", oauth2.GenerateVerifier()} {
		if pkceMatches(bad, challenge) {
			t.Errorf("verifier %q accepted", bad)
		}
	}
	if validChallenge(v[:40]) || validChallenge(challenge+"=") {
		t.Error("malformed challenge accepted")
	}
}

func TestOAuthStore(t *testing.T) {
	sqldbtest.Each(t, ServiceName, testMigrations, func(t *testing.T, db *sqldb.DB) {
		ctx, st := t.Context(), NewStore(db)
		c, secret, err := st.RegisterClient(ctx, ClientRegistration{Name: " App ", RedirectURIs: []string{"https://a.example/cb", "https://a.example/cb"},
			Scopes: []string{"email", "openid", "email"}}, t0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := st.OAuthClient(ctx, c.ID)
		if err != nil || got.Name != "App" || strings.Join(got.RedirectURIs, " ") != "https://a.example/cb" || strings.Join(got.Scopes, " ") != "openid email" ||
			got.SecretHash != HashOpaqueToken(secret) || !got.CreatedAt.Equal(dbTime(t0)) || got.Public() {
			t.Fatalf("client %+v %v", got, err)
		}
		if _, err := st.OAuthClient(ctx, newID()); !errs.Is(err, errs.NotFound) {
			t.Errorf("unknown client: %v", err)
		}

		u := mustUser(t, st.Queries, "ana@example.com", "buyer")
		code := AuthCode{Hash: "h1", ClientID: c.ID, UserID: u.ID, RedirectURI: "https://a.example/cb", CodeChallenge: "x", Scope: "openid",
			AuthTime: t0, CreatedAt: t0, ExpiresAt: t0.Add(authCodeTTL)}
		if err := st.CreateAuthCode(ctx, code); err != nil {
			t.Fatal(err)
		}
		for i, want := range []bool{true, false} {
			if ok, err := st.SpendAuthCode(ctx, "h1", t0); err != nil || ok != want {
				t.Errorf("spend #%d = %v, %v", i+1, ok, err)
			}
		}
		if err := st.SetAuthCodeFamily(ctx, "h1", "fam"); err != nil {
			t.Fatal(err)
		}
		if ac, err := st.AuthCode(ctx, "h1"); err != nil || ac.UsedAt == nil || ac.FamilyID != "fam" || ac.Scope != "openid" {
			t.Errorf("code %+v %v", ac, err)
		}
		// The next code sweeps codes expired for a day.
		later := code
		later.Hash, later.CreatedAt, later.ExpiresAt = "h2", t0.Add(keepSpent+time.Hour), t0.Add(keepSpent+time.Hour+authCodeTTL)
		if err := st.CreateAuthCode(ctx, later); err != nil {
			t.Fatal(err)
		}
		if _, err := st.AuthCode(ctx, "h1"); !errs.Is(err, errs.NotFound) {
			t.Errorf("old code not swept: %v", err)
		}

		// A sign-in state is taken once; expired ones go with the next start.
		s1 := OIDCState{StateHash: "s1", Nonce: "n", CodeVerifier: "v", CreatedAt: t0, ExpiresAt: t0.Add(oidcStateTTL)}
		if err := st.CreateOIDCState(ctx, s1); err != nil {
			t.Fatal(err)
		}
		if got, err := st.TakeOIDCState(ctx, "s1"); err != nil || got.Nonce != "n" || got.CodeVerifier != "v" || !got.ExpiresAt.Equal(dbTime(s1.ExpiresAt)) {
			t.Errorf("take %+v %v", got, err)
		}
		if _, err := st.TakeOIDCState(ctx, "s1"); !errs.Is(err, errs.NotFound) {
			t.Errorf("taken twice: %v", err)
		}
		s2, s3 := s1, s1
		s2.StateHash = "s2"
		s3.StateHash, s3.CreatedAt, s3.ExpiresAt = "s3", t0.Add(time.Hour), t0.Add(time.Hour+oidcStateTTL)
		if err := st.CreateOIDCState(ctx, s2); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateOIDCState(ctx, s3); err != nil {
			t.Fatal(err)
		}
		if _, err := st.TakeOIDCState(ctx, "s2"); !errs.Is(err, errs.NotFound) {
			t.Errorf("expired state not swept: %v", err)
		}

		if err := st.LinkOIDCIdentity(ctx, "https://id.example", "sub-1", u.ID, u.Email, t0); err != nil {
			t.Fatal(err)
		}
		if id, err := st.OIDCIdentityUser(ctx, "https://id.example", "sub-1"); err != nil || id != u.ID {
			t.Errorf("identity %q %v", id, err)
		}
		if _, err := st.OIDCIdentityUser(ctx, "https://other.example", "sub-1"); !errs.Is(err, errs.NotFound) {
			t.Errorf("a subject of another issuer: %v", err)
		}
		if err := st.LinkOIDCIdentity(ctx, "https://id.example", "sub-1", u.ID, u.Email, t0); !errs.Is(err, errs.Conflict) {
			t.Errorf("linked twice: %v", err)
		}
	})
}
