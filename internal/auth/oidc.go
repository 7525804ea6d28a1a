package auth

// Sign-in with an external OpenID Connect provider (a company's identity
// provider, Google, another MallHive...). The flow is the authorization
// code flow with PKCE, a state bound to the browser by a cookie, and a
// nonce checked in the ID token. An external identity (issuer + subject)
// is linked to a MallHive account on first sign-in: to an existing account
// only when the provider vouches for the email (email_verified) and the
// account has confirmed that email too; otherwise a new buyer account with
// that verified email is created. An email the provider does not vouch for
// never links nor creates anything. Then the user is signed in as after a
// password: tokens, or the same two-factor challenge (admins still need
// their second factor).

import (
	"context"
	"crypto/subtle"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/config"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/httpx"
)

// oidcPath prefixes the external sign-in routes (and scopes its cookie).
const oidcPath = "/api/v1/auth/oidc/"

const (
	// oidcStateTTL is how long a started external sign-in may take.
	oidcStateTTL = 10 * time.Minute
	// oidcCookieName holds the state in the browser that started the
	// sign-in, so a callback URL cannot be replayed into another browser
	// (login CSRF).
	oidcCookieName = "mallhive_oidc_state"
	// oidcTimeout bounds each call to the provider.
	oidcTimeout      = 10 * time.Second
	defaultOIDCLabel = "Single sign-on"
)

// OIDCConfig configures sign-in with an external provider; it is off while
// Issuer is empty.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL; its discovery document is at
	// <Issuer>/.well-known/openid-configuration.
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is the callback registered at the provider;
	// <public URL>/api/v1/auth/oidc/callback when empty.
	RedirectURL string
	// Name labels the sign-in button.
	Name string
}

// RegisterFlags registers the settings under "auth.oidc.".
func (c *OIDCConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Issuer, "auth.oidc.issuer", "", "issuer URL of an external OpenID Connect provider to sign in with (empty: off)")
	fs.StringVar(&c.ClientID, "auth.oidc.client-id", "", "MallHive's client id at the external provider")
	fs.StringVar(&c.ClientSecret, "auth.oidc.client-secret", "", "MallHive's client secret at the external provider")
	fs.StringVar(&c.RedirectURL, "auth.oidc.redirect-url", "", "callback URL registered at the provider (default: <public-url>/api/v1/auth/oidc/callback)")
	fs.StringVar(&c.Name, "auth.oidc.name", defaultOIDCLabel, "label of the external sign-in button")
}

// Enabled reports whether an external provider is configured.
func (c OIDCConfig) Enabled() bool { return c.Issuer != "" }

// withDefaults fills the redirect URL from the public URL and the label.
func (c OIDCConfig) withDefaults(publicURL string) OIDCConfig {
	if c.Enabled() && c.RedirectURL == "" && publicURL != "" {
		c.RedirectURL = strings.TrimSuffix(publicURL, "/") + oidcPath + "callback"
	}
	if c.Name == "" {
		c.Name = defaultOIDCLabel
	}
	return c
}

// Validate reports what is wrong; nothing is checked while it is off.
func (c OIDCConfig) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var problems []string
	if u, err := url.Parse(c.Issuer); err != nil || !(u.Scheme == "https" || u.Scheme == "http" && isLoopback(u.Hostname())) ||
		u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		problems = append(problems, "oidc issuer must be an https URL (http only on loopback) without query")
	}
	if c.ClientID == "" {
		problems = append(problems, "oidc client id is required")
	}
	if c.RedirectURL != "" {
		if u, err := url.Parse(c.RedirectURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			problems = append(problems, "oidc redirect URL must be an http(s) URL")
		}
	}
	if utf8.RuneCountInString(c.Name) > 40 {
		problems = append(problems, "oidc name must be at most 40 characters")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// LogValue shows the settings with the secret masked.
func (c OIDCConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("issuer", c.Issuer), slog.String("client_id", c.ClientID),
		slog.String("client_secret", config.Masked(c.ClientSecret)), slog.String("redirect_url", c.RedirectURL), slog.String("name", c.Name))
}

// String masks the secret in fmt output too (a Config printed with %+v).
func (c OIDCConfig) String() string { return c.LogValue().String() }

func isLoopback(host string) bool { return host == "127.0.0.1" || host == "::1" || host == "localhost" }

// OIDCState is a started external sign-in; only the state's hash is kept.
type OIDCState struct {
	StateHash    string
	Nonce        string
	CodeVerifier string
	CreatedAt    time.Time
	ExpiresAt    time.Time
}

// externalOIDC is the client of the external provider. The provider is
// discovered on first use, not at start, so MallHive starts (and password
// sign-in works) while the provider is unreachable; a failed discovery is
// retried by the next sign-in.
type externalOIDC struct {
	s      *Service
	cfg    OIDCConfig
	client *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
}

func (s *Service) newExternalOIDC() *externalOIDC {
	return &externalOIDC{s: s, cfg: s.cfg.OIDC, client: &http.Client{Timeout: oidcTimeout}}
}

var errOIDCOff = errs.E(errs.NotFound, "sign-in with an external provider is not configured")

// discover returns the provider, fetching its discovery document on first
// use. Sign-ins wait on the lock while a discovery runs (bounded by
// oidcTimeout) rather than all hitting the provider at once.
func (e *externalOIDC) discover(ctx context.Context) (*oidc.Provider, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.provider != nil {
		return e.provider, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, e.client), e.cfg.Issuer)
	if err != nil {
		return nil, &errs.Error{Code: errs.Unavailable, Message: "the sign-in provider cannot be reached; try again later", Err: err}
	}
	e.provider = p
	return p, nil
}

func (e *externalOIDC) oauth2Config(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: e.cfg.ClientID, ClientSecret: e.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: e.cfg.RedirectURL, Scopes: []string{oidc.ScopeOpenID, ScopeEmail, ScopeProfile}}
}

func (e *externalOIDC) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: oidcCookieName, Value: value, Path: oidcPath, MaxAge: maxAge, HttpOnly: true,
		Secure: strings.HasPrefix(e.cfg.RedirectURL, "https://"), SameSite: http.SameSiteLaxMode}
}

// handleInfo tells the storefront whether to show the button, and its label.
func (e *externalOIDC) handleInfo(w http.ResponseWriter, r *http.Request) error {
	if !e.cfg.Enabled() {
		return errOIDCOff
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"name": e.cfg.Name, "start_url": oidcPath + "start"})
	return nil
}

// handleStart sends the browser to the provider.
func (e *externalOIDC) handleStart(w http.ResponseWriter, r *http.Request) error {
	if !e.cfg.Enabled() {
		return errOIDCOff
	}
	p, err := e.discover(r.Context())
	if err != nil {
		return err
	}
	state, stateHash := NewOpaqueToken()
	nonce, _ := NewOpaqueToken()
	verifier := oauth2.GenerateVerifier()
	now := e.s.now()
	err = e.s.store.InTx(r.Context(), func(q *Queries) error {
		return q.CreateOIDCState(r.Context(), OIDCState{StateHash: stateHash, Nonce: nonce, CodeVerifier: verifier,
			CreatedAt: now, ExpiresAt: now.Add(oidcStateTTL)})
	})
	if err != nil {
		return err
	}
	http.SetCookie(w, e.cookie(state, int(oidcStateTTL/time.Second)))
	redirect(w, r, e.oauth2Config(p).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)))
	return nil
}

var (
	errBadOIDCState = errs.E(errs.Invalid, "this sign-in was not started in this browser, or has expired; start again")
	errOIDCRefused  = errs.E(errs.Unauthenticated, "the sign-in provider did not confirm who you are; start again")
	// providerErrorRE is what a provider's error code may look like to be
	// repeated to the user.
	providerErrorRE = regexp.MustCompile(`^[a-z_]{1,64}$`)
)

// handleCallback finishes the sign-in the provider sent the browser back
// from, and answers like the password login: tokens or a challenge.
func (e *externalOIDC) handleCallback(w http.ResponseWriter, r *http.Request) error {
	if !e.cfg.Enabled() {
		return errOIDCOff
	}
	ctx, query := r.Context(), r.URL.Query()
	// A started sign-in gets one callback, whatever its outcome.
	http.SetCookie(w, e.cookie("", -1))
	state := query.Get("state")
	c, err := r.Cookie(oidcCookieName)
	if state == "" || len(state) > 256 || err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		return errBadOIDCState
	}
	st, err := e.s.store.TakeOIDCState(ctx, HashOpaqueToken(state))
	if errs.Is(err, errs.NotFound) || (err == nil && !e.s.now().Before(st.ExpiresAt)) {
		return errBadOIDCState
	}
	if err != nil {
		return err
	}
	if perr := query.Get("error"); perr != "" {
		if !providerErrorRE.MatchString(perr) {
			perr = "an error"
		}
		return errs.E(errs.Unauthenticated, "the sign-in provider answered %s; start again", perr)
	}
	code := query.Get("code")
	if code == "" {
		return errs.Field("code", "is required")
	}
	p, err := e.discover(ctx)
	if err != nil {
		return err
	}
	tok, err := e.oauth2Config(p).Exchange(context.WithValue(ctx, oauth2.HTTPClient, e.client), code, oauth2.VerifierOption(st.CodeVerifier))
	if err != nil {
		e.s.log.WarnContext(ctx, "oidc code exchange failed", "err", err)
		return errOIDCRefused
	}
	id, err := e.identity(ctx, p, tok, st.Nonce)
	if err != nil {
		e.s.log.WarnContext(ctx, "oidc id token refused", "err", err)
		return errOIDCRefused
	}
	u, err := e.s.externalUser(ctx, id)
	if err != nil {
		return err
	}
	res, err := e.s.signIn(ctx, u)
	if err != nil {
		return err
	}
	e.s.writeLogin(w, res)
	return nil
}

// externalIdentity is who the provider says signed in.
type externalIdentity struct {
	Issuer, Subject, Email, Name string
	EmailVerified                bool
}

// identity verifies the ID token (signature, issuer, audience, expiry with
// go-oidc; then the nonce and at_hash) and reads the identity from it, or
// from the userinfo endpoint when the ID token has no email.
func (e *externalOIDC) identity(ctx context.Context, p *oidc.Provider, tok *oauth2.Token, nonce string) (externalIdentity, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return externalIdentity{}, fmt.Errorf("no id_token in the token response")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: e.cfg.ClientID}).Verify(ctx, raw)
	if err != nil {
		return externalIdentity{}, err
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return externalIdentity{}, fmt.Errorf("nonce mismatch")
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return externalIdentity{}, err
		}
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified any    `json:"email_verified"`
		Name          string `json:"name"`
	}
	if err := idt.Claims(&claims); err != nil {
		return externalIdentity{}, err
	}
	id := externalIdentity{Issuer: idt.Issuer, Subject: idt.Subject, Email: claims.Email, Name: claims.Name, EmailVerified: isTrue(claims.EmailVerified)}
	if id.Email == "" && p.UserInfoEndpoint() != "" {
		info, err := p.UserInfo(oidc.ClientContext(ctx, e.client), oauth2.StaticTokenSource(tok))
		if err != nil {
			return externalIdentity{}, err
		}
		if info.Subject != idt.Subject {
			return externalIdentity{}, fmt.Errorf("userinfo is about another subject")
		}
		var more struct {
			Name string `json:"name"`
		}
		_ = info.Claims(&more)
		id.Email, id.EmailVerified, id.Name = info.Email, info.EmailVerified, more.Name
	}
	id.Email = NormalizeEmail(id.Email)
	return id, nil
}

// isTrue reads email_verified, which some providers send as a string.
func isTrue(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return strings.EqualFold(b, "true")
	}
	return false
}

var errUnverifiedEmail = errs.E(errs.Forbidden,
	"your sign-in provider has not verified your email address; verify it there, or sign in with your password")

// externalUser returns the account of an external identity, linking or
// creating it on first sign-in (see the top of the file). Errors:
// errs.Forbidden for an email the provider does not vouch for or a
// disabled account, errs.Conflict when an account with the email exists
// but never confirmed it (linking would hand it to whoever registered it
// with a password they chose).
func (s *Service) externalUser(ctx context.Context, id externalIdentity) (User, error) {
	if id.Subject == "" || len(id.Subject) > 255 || id.Issuer == "" {
		return User{}, errOIDCRefused
	}
	var (
		u       User
		created bool
	)
	err := s.store.InTx(ctx, func(q *Queries) error {
		now := s.now()
		userID, err := q.OIDCIdentityUser(ctx, id.Issuer, id.Subject)
		if err == nil {
			u, err = q.UserByID(ctx, userID)
			return err
		}
		if !errs.Is(err, errs.NotFound) {
			return err
		}
		if !id.EmailVerified || CheckEmail(id.Email) != nil {
			return errUnverifiedEmail
		}
		u, err = q.UserByEmail(ctx, id.Email)
		switch {
		case err == nil && !u.EmailVerified:
			return errs.E(errs.Conflict, "an account with this email exists but has not confirmed it; sign in with your password and verify your email, then try again")
		case errs.Is(err, errs.NotFound):
			u = User{ID: newID(), Email: id.Email, Name: externalName(id), Roles: []string{authn.RoleBuyer}, EmailVerified: true,
				Addresses: []Address{}, CreatedAt: now.UTC(), UpdatedAt: now.UTC()}
			if err := q.CreateUser(ctx, &u, ""); err != nil {
				return err
			}
			ev, err := userRegisteredEvent(ctx, u, authn.RoleBuyer)
			if err != nil {
				return err
			}
			if err := q.Enqueue(ctx, ev); err != nil {
				return err
			}
			created = true
		case err != nil:
			return err
		}
		return q.LinkOIDCIdentity(ctx, id.Issuer, id.Subject, u.ID, id.Email, now)
	})
	if err != nil {
		return User{}, err
	}
	if created {
		s.log.InfoContext(ctx, "account created from an external sign-in", "user_id", u.ID, "issuer", id.Issuer)
		s.kickRelay()
	}
	if u.Disabled {
		return User{}, errs.E(errs.Forbidden, "this account is disabled")
	}
	return u, nil
}

// externalName is the provider's name for the user, made to fit the
// profile's rules, or the email's local part.
func externalName(id externalIdentity) string {
	name := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.TrimSpace(id.Name))
	if name == "" || !utf8.ValidString(name) {
		name, _, _ = strings.Cut(id.Email, "@")
	}
	if r := []rune(name); len(r) > MaxNameLen {
		name = strings.TrimSpace(string(r[:MaxNameLen]))
	}
	return name
}

// signIn ends a sign-in whose first factor is proved (the password in
// Login, the provider's ID token here): a two-factor challenge when TOTP is on, an enrolment
// challenge for an admin without it, tokens otherwise.
func (s *Service) signIn(ctx context.Context, u User) (LoginResult, error) {
	switch {
	case u.TOTPEnabled:
		ch, err := s.challenge(ctx, u, PurposeMFALogin)
		return LoginResult{User: u, MFA: ch}, err
	case s.needsEnrollment(u):
		ch, err := s.challenge(ctx, u, PurposeMFAEnroll)
		return LoginResult{User: u, MFA: ch}, err
	}
	pair, err := s.IssueTokens(ctx, u, SessionOptions{})
	if err != nil {
		return LoginResult{}, err
	}
	return LoginResult{User: u, Tokens: &pair}, nil
}
