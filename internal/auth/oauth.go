package auth

// The OAuth 2.1 / OpenID Connect provider. Client apps that an admin has
// registered sign MallHive users in with the authorization code flow (PKCE
// with S256 required, redirect URIs matched exactly), keep them signed in
// with rotating refresh tokens (the same refresh-token families as
// MallHive's own sessions, tagged with the client id), and service
// accounts get their own tokens with client credentials. There is no
// implicit grant and no password grant.
//
// This file holds the domain: clients, authorization requests and codes,
// the grants, and the tokens they hand out. oauth_http.go has the
// endpoints, oauth_store.go the SQL.

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/errs"
)

// The grant types a client can be allowed.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// The scopes a client can ask for: OpenID Connect's identity scopes.
// offline_access asks for a refresh token.
const (
	ScopeOpenID        = "openid"
	ScopeProfile       = "profile"
	ScopeEmail         = "email"
	ScopeOfflineAccess = "offline_access"
)

var (
	supportedGrants = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials}
	// supportedScopes is also the canonical order scopes are written in.
	supportedScopes = []string{ScopeOpenID, ScopeProfile, ScopeEmail, ScopeOfflineAccess}
)

// RoleService is the only role of a client's own access token (client
// credentials grant), whose subject is "client:<client id>". No user role
// is ever given to a client acting for itself.
const RoleService = "service"

// ClientSubjectPrefix starts the subject of a client's own access token.
const ClientSubjectPrefix = "client:"

const (
	// authCodeTTL is the life of an authorization code: the client
	// exchanges it at once, and a short life narrows the window of a leak.
	authCodeTTL = 60 * time.Second
	// MaxRedirectURIs bounds the redirect URIs of one client.
	MaxRedirectURIs   = 10
	maxRedirectURILen = 2000
	maxStateLen       = 1024
	maxNonceLen       = 512
	// maxSecretLen bounds a presented client secret before it is hashed.
	maxSecretLen = 256
)

// OAuthClient is a registered client app. A public client (a native or
// browser app, which cannot keep a secret) has no SecretHash and proves
// itself with PKCE alone.
type OAuthClient struct {
	ID           string
	SecretHash   string // HashOpaqueToken of the secret; "" for a public client
	Name         string
	RedirectURIs []string
	GrantTypes   []string
	Scopes       []string
	CreatedAt    time.Time
}

// Public reports whether the client has no secret.
func (c OAuthClient) Public() bool { return c.SecretHash == "" }

// Allows reports whether the client may use a grant type.
func (c OAuthClient) Allows(grant string) bool { return slices.Contains(c.GrantTypes, grant) }

// AuthCode is an issued authorization code; only its hash is stored. Every
// field but the times is what the token request must match or inherits.
type AuthCode struct {
	Hash          string
	ClientID      string
	UserID        string
	RedirectURI   string
	CodeChallenge string
	Scope         string
	Nonce         string
	AuthTime      time.Time
	CreatedAt     time.Time
	ExpiresAt     time.Time
	UsedAt        *time.Time
	// FamilyID is the refresh-token family the exchange started, revoked
	// if the code is presented again.
	FamilyID string
}

// revokedCodeReuse is why a family dies when its authorization code is
// presented a second time.
const revokedCodeReuse = "authorization_code_reuse"

// ---- clients ----

// ClientRegistration describes a client to register. Empty GrantTypes
// default to authorization_code and refresh_token; empty Scopes to every
// scope the grants can use.
type ClientRegistration struct {
	Name         string
	RedirectURIs []string
	GrantTypes   []string
	Scopes       []string
	// Public makes a client without a secret (native and browser apps).
	Public bool
}

func (r *ClientRegistration) normalize() {
	r.Name = strings.TrimSpace(r.Name)
	if len(r.GrantTypes) == 0 {
		r.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
	}
	r.GrantTypes = canonical(r.GrantTypes, supportedGrants)
	if len(r.Scopes) == 0 && slices.Contains(r.GrantTypes, GrantAuthorizationCode) {
		r.Scopes = []string{ScopeOpenID, ScopeProfile, ScopeEmail}
		if slices.Contains(r.GrantTypes, GrantRefreshToken) {
			r.Scopes = append(r.Scopes, ScopeOfflineAccess)
		}
	}
	r.Scopes = canonical(r.Scopes, supportedScopes)
	uris := make([]string, 0, len(r.RedirectURIs))
	for _, u := range r.RedirectURIs {
		if u = strings.TrimSpace(u); !slices.Contains(uris, u) {
			uris = append(uris, u)
		}
	}
	r.RedirectURIs = uris
}

// canonical trims and deduplicates vs, putting known values in the order of
// known and unknown ones after them (so validation can name them).
func canonical(vs, known []string) []string {
	out := []string{}
	for _, k := range known {
		if slices.ContainsFunc(vs, func(v string) bool { return strings.TrimSpace(v) == k }) {
			out = append(out, k)
		}
	}
	for _, v := range vs {
		if v = strings.TrimSpace(v); !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func (r ClientRegistration) validate() error {
	f := errs.Fields{}
	checkText(f, "name", r.Name, true, MaxNameLen)
	for _, g := range r.GrantTypes {
		f.Check(slices.Contains(supportedGrants, g), "grant_types", fmt.Sprintf("unknown grant type %q: use %s", g, strings.Join(supportedGrants, ", ")))
	}
	code := slices.Contains(r.GrantTypes, GrantAuthorizationCode)
	f.Check(!(r.Public && slices.Contains(r.GrantTypes, GrantClientCredentials)), "grant_types", "client_credentials needs a confidential client (one with a secret)")
	f.Check(code || !slices.Contains(r.GrantTypes, GrantRefreshToken), "grant_types", "refresh_token comes with authorization_code")
	for _, sc := range r.Scopes {
		f.Check(slices.Contains(supportedScopes, sc), "scopes", fmt.Sprintf("unknown scope %q: use %s", sc, strings.Join(supportedScopes, ", ")))
	}
	f.Check(code || len(r.Scopes) == 0, "scopes", "scopes are for clients that sign users in (authorization_code)")
	f.Check(!slices.Contains(r.Scopes, ScopeOfflineAccess) || slices.Contains(r.GrantTypes, GrantRefreshToken), "scopes", "offline_access needs the refresh_token grant")
	switch {
	case code && len(r.RedirectURIs) == 0:
		f.Add("redirect_uris", "at least one is required for authorization_code")
	case !code && len(r.RedirectURIs) > 0:
		f.Add("redirect_uris", "only clients with authorization_code redirect")
	case len(r.RedirectURIs) > MaxRedirectURIs:
		f.Add("redirect_uris", fmt.Sprintf("at most %d", MaxRedirectURIs))
	}
	for i, u := range r.RedirectURIs {
		if problem := checkRedirectURI(u); problem != "" {
			f.Add(fmt.Sprintf("redirect_uris[%d]", i), problem)
		}
	}
	return f.Err()
}

// checkRedirectURI returns what is wrong with a redirect URI, or "". It
// follows OAuth 2.1 and RFC 8252: https; http only to the loopback
// interface (native apps); or a private-use scheme in reverse-domain form
// (com.example.app:/callback). No fragment, no credentials.
func checkRedirectURI(raw string) string {
	if raw == "" || len(raw) > maxRedirectURILen {
		return fmt.Sprintf("must be an absolute URI of at most %d characters", maxRedirectURILen)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || strings.ContainsAny(raw, " \t\r\n") {
		return "must be an absolute URI"
	}
	switch {
	case strings.Contains(raw, "#"):
		return "must not have a fragment"
	case u.User != nil:
		return "must not carry credentials"
	case u.Scheme == "https":
		if u.Host == "" {
			return "must name a host"
		}
	case u.Scheme == "http":
		if !isLoopback(u.Hostname()) {
			return "http is allowed only on the loopback interface (127.0.0.1, [::1], localhost); use https"
		}
	case !strings.Contains(u.Scheme, "."):
		return "use https, http on loopback, or a reverse-domain scheme such as com.example.app"
	}
	return ""
}

// RegisterClient validates and stores a new client, and returns it with
// its secret: shown this once, only its hash is kept ("" for a public
// client). now stamps its creation. Errors: errs.Invalid for a bad
// registration.
func (s *Store) RegisterClient(ctx context.Context, reg ClientRegistration, now time.Time) (OAuthClient, string, error) {
	reg.normalize()
	if err := reg.validate(); err != nil {
		return OAuthClient{}, "", err
	}
	c := OAuthClient{ID: newID(), Name: reg.Name, RedirectURIs: reg.RedirectURIs, GrantTypes: reg.GrantTypes,
		Scopes: reg.Scopes, CreatedAt: dbTime(now)}
	secret := ""
	if !reg.Public {
		secret, c.SecretHash = NewOpaqueToken()
	}
	if err := s.CreateOAuthClient(ctx, c); err != nil {
		return OAuthClient{}, "", err
	}
	return c, secret, nil
}

// RegisterClient registers a client app (see Store.RegisterClient).
func (s *Service) RegisterClient(ctx context.Context, reg ClientRegistration) (OAuthClient, string, error) {
	c, secret, err := s.store.RegisterClient(ctx, reg, s.now())
	if err == nil {
		s.log.InfoContext(ctx, "oauth client registered", "client_id", c.ID, "public", c.Public())
	}
	return c, secret, err
}

// ---- scopes ----

// parseScope checks a space-separated scope parameter against the scopes
// allowed and returns it deduplicated, in canonical order.
func parseScope(raw string, allowed []string) (string, bool) {
	asked := strings.Fields(raw)
	for _, sc := range asked {
		if !slices.Contains(allowed, sc) {
			return "", false
		}
	}
	return strings.Join(canonical(asked, supportedScopes), " "), true
}

func hasScope(scope, want string) bool { return slices.Contains(strings.Fields(scope), want) }

// ---- OAuth errors ----

// oauthError is an error in OAuth's own vocabulary (RFC 6749 §4.1.2.1 and
// §5.2): the authorization endpoint sends it to the client's redirect URI,
// the token endpoint answers it as JSON with Status.
type oauthError struct {
	Code        string
	Description string
	Status      int
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func oauthErr(code, format string, args ...any) *oauthError {
	status := http.StatusBadRequest
	if code == "invalid_client" {
		status = http.StatusUnauthorized
	}
	return &oauthError{Code: code, Description: fmt.Sprintf(format, args...), Status: status}
}

var (
	errBadClient = oauthErr("invalid_client", "client authentication failed")
	errBadCode   = oauthErr("invalid_grant", "the authorization code is invalid, expired or was issued to another client")
)

// ---- authorization requests ----

// authzParams are the parameters of an authorization request that the
// sign-in form carries over and its CSRF token covers.
var authzParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "prompt"}

// authzRequest is a checked authorization request.
type authzRequest struct {
	Client      OAuthClient
	RedirectURI string // "" until it is known to be the client's
	State       string
	Scope       string
	Nonce       string
	Challenge   string
	PromptNone  bool
}

// parseAuthorize checks an authorization request. Until the client and its
// redirect URI are known good it returns *errs.Error (shown to the user,
// never redirected: the redirect could be an attacker's); after that it
// returns *oauthError, which goes back to the client with req.RedirectURI.
func (s *Service) parseAuthorize(ctx context.Context, v url.Values) (authzRequest, error) {
	var req authzRequest
	clientID, redirectURI := v.Get("client_id"), v.Get("redirect_uri")
	if len(v["client_id"]) != 1 || !validID(clientID) {
		return req, errs.Field("client_id", "is missing, repeated or not a registered client")
	}
	c, err := s.store.OAuthClient(ctx, clientID)
	if errs.Is(err, errs.NotFound) {
		return req, errs.Field("client_id", "is missing, repeated or not a registered client")
	}
	if err != nil {
		return req, err
	}
	// OpenID Connect requires redirect_uri, and exact matching is what
	// keeps codes from being sent anywhere else.
	if len(v["redirect_uri"]) != 1 || !slices.Contains(c.RedirectURIs, redirectURI) {
		return req, errs.Field("redirect_uri", "is missing, repeated or not registered for this client")
	}
	req.Client, req.RedirectURI = c, redirectURI
	if len(v["state"]) > 1 || len(v.Get("state")) > maxStateLen {
		return req, oauthErr("invalid_request", "state is repeated or longer than %d characters", maxStateLen)
	}
	req.State = v.Get("state")

	for _, p := range authzParams {
		if len(v[p]) > 1 {
			return req, oauthErr("invalid_request", "%s is repeated", p)
		}
	}
	if v.Has("request") || v.Has("request_uri") {
		return req, oauthErr("request_not_supported", "request objects are not supported")
	}
	switch rt := v.Get("response_type"); rt {
	case "code":
	case "":
		return req, oauthErr("invalid_request", "response_type is required")
	default:
		return req, oauthErr("unsupported_response_type", "only response_type=code is supported (no implicit or hybrid flow)")
	}
	if !c.Allows(GrantAuthorizationCode) {
		return req, oauthErr("unauthorized_client", "this client may not use the authorization code flow")
	}
	// RFC 7636 makes a missing method mean "plain", which sends the
	// verifier itself through the browser: refused, like "plain" itself.
	if v.Get("code_challenge_method") != "S256" {
		return req, oauthErr("invalid_request", "PKCE is required with code_challenge_method=S256 (plain is not accepted)")
	}
	if req.Challenge = v.Get("code_challenge"); !validChallenge(req.Challenge) {
		return req, oauthErr("invalid_request", "code_challenge must be the base64url SHA-256 of the code verifier (43 characters)")
	}
	var ok bool
	if req.Scope, ok = parseScope(v.Get("scope"), c.Scopes); !ok {
		return req, oauthErr("invalid_scope", "the scope asks for more than this client may have: %s", strings.Join(c.Scopes, " "))
	}
	if req.Nonce = v.Get("nonce"); len(req.Nonce) > maxNonceLen {
		return req, oauthErr("invalid_request", "nonce is longer than %d characters", maxNonceLen)
	}
	req.PromptNone = slices.Contains(strings.Fields(v.Get("prompt")), "none")
	return req, nil
}

// validChallenge reports whether s can be an S256 code challenge: 32 bytes,
// base64url without padding.
func validChallenge(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// pkceMatches checks a code verifier (RFC 7636 §4.1: 43 to 128 unreserved
// characters) against an S256 challenge, in constant time.
func pkceMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for _, r := range verifier {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r)) {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

// redirectTo returns the client's redirect URI with params, the state and
// our issuer (RFC 9207, so a client talking to several providers can tell
// which one answered) added to its query.
func (req authzRequest) redirectTo(params url.Values, issuer string) string {
	u, _ := url.Parse(req.RedirectURI) // checked at registration
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	if req.State != "" {
		q.Set("state", req.State)
	}
	q.Set("iss", issuer)
	u.RawQuery = q.Encode()
	return u.String()
}

// issueCode stores a new authorization code for a signed-in user.
func (s *Service) issueCode(ctx context.Context, req authzRequest, u User, authTime time.Time) (string, error) {
	if u.Disabled {
		return "", errs.E(errs.Forbidden, "this account is disabled")
	}
	if s.needsEnrollment(u) {
		return "", errs.E(errs.Forbidden, "administrators must set up two-factor sign-in before signing in to apps")
	}
	now := s.now()
	plain, hash := NewOpaqueToken()
	err := s.store.InTx(ctx, func(q *Queries) error {
		return q.CreateAuthCode(ctx, AuthCode{Hash: hash, ClientID: req.Client.ID, UserID: u.ID, RedirectURI: req.RedirectURI,
			CodeChallenge: req.Challenge, Scope: req.Scope, Nonce: req.Nonce, AuthTime: authTime, CreatedAt: now, ExpiresAt: now.Add(authCodeTTL)})
	})
	if err != nil {
		return "", fmt.Errorf("issue authorization code: %w", err)
	}
	return plain, nil
}

// checkSecondFactor checks the TOTP or recovery code of a user signing in
// through the authorization endpoint's form, with the same throttling,
// replay protection and counting as CompleteMFA.
func (s *Service) checkSecondFactor(ctx context.Context, u User, code, addr string) error {
	if len(code) > 32 {
		return errs.E(errs.Unauthenticated, "the code is wrong or was already used")
	}
	if err := s.checkMFAThrottle(ctx, u, addr); err != nil {
		return err
	}
	ok := false
	err := s.store.InTx(ctx, func(q *Queries) error {
		now := s.now()
		st, err := q.TOTP(ctx, u.ID)
		if errs.Is(err, errs.NotFound) {
			return nil // turned off since the password step: no code is right
		}
		if err != nil {
			return err
		}
		if step, match := MatchTOTP(st.Secret, code, now); match && st.Enabled {
			ok, err = q.AdvanceTOTPStep(ctx, u.ID, step)
			return err
		}
		ok, err = s.useRecoveryCode(ctx, q, u.ID, code, now)
		return err
	})
	if err != nil {
		return err
	}
	if !ok {
		// No pending sign-in token here: wrongCode counts the throttle
		// keys only.
		return s.wrongCode(ctx, OneTimeToken{UserID: u.ID}, u.Email, addr)
	}
	return s.store.ThrottleReset(ctx, mfaKey(u.ID))
}

// ---- grants ----

// oauthTokens is a token endpoint answer (RFC 6749 §5.1, OIDC Core §3.1.3.3).
type oauthTokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// exchangeCode is the authorization_code grant. A code works once: any
// attempt by its client spends it (a wrong verifier included), and
// presenting a spent code again revokes the session its first exchange
// started (RFC 9700 §4.2.4: it was probably stolen). Access tokens already
// issued from it are JWTs and live out their AccessTTL.
func (s *Service) exchangeCode(ctx context.Context, c OAuthClient, code, redirectURI, verifier string) (oauthTokens, error) {
	if !c.Allows(GrantAuthorizationCode) {
		return oauthTokens{}, oauthErr("unauthorized_client", "this client may not use the authorization code grant")
	}
	if code == "" || redirectURI == "" || verifier == "" {
		return oauthTokens{}, oauthErr("invalid_request", "code, redirect_uri and code_verifier are required")
	}
	if len(code) > 256 {
		return oauthTokens{}, errBadCode
	}
	hash := HashOpaqueToken(code)
	var (
		res     oauthTokens
		failure error // a refusal that must still commit what it spent or revoked
	)
	err := s.store.InTx(ctx, func(q *Queries) error {
		now := s.now()
		ac, err := q.AuthCode(ctx, hash)
		if errs.Is(err, errs.NotFound) || (err == nil && ac.ClientID != c.ID) {
			failure = errBadCode
			return nil
		}
		if err != nil {
			return err
		}
		if spent, err := q.SpendAuthCode(ctx, hash, now); err != nil {
			return err
		} else if !spent {
			if ac.FamilyID != "" {
				if _, err := q.RevokeFamily(ctx, ac.FamilyID, revokedCodeReuse, now); err != nil {
					return err
				}
			}
			s.log.WarnContext(ctx, "authorization code reused: its session revoked", "client_id", c.ID, "user_id", ac.UserID, "family_id", ac.FamilyID)
			failure = oauthErr("invalid_grant", "the authorization code was already used; the tokens issued for it are revoked")
			return nil
		}
		switch {
		case !now.Before(ac.ExpiresAt):
			failure = oauthErr("invalid_grant", "the authorization code has expired")
		case ac.RedirectURI != redirectURI:
			failure = oauthErr("invalid_grant", "redirect_uri differs from the authorization request's")
		case !pkceMatches(verifier, ac.CodeChallenge):
			failure = oauthErr("invalid_grant", "code_verifier does not match the code_challenge")
		}
		if failure != nil {
			return nil
		}
		u, err := q.UserByID(ctx, ac.UserID)
		if err != nil {
			return err
		}
		if u.Disabled || s.needsEnrollment(u) {
			failure = errBadCode
			return nil
		}
		var familyID string
		if res, familyID, err = s.grantUserTokens(ctx, q, c, u, ac.Scope, ac.Nonce, ac.AuthTime); err != nil {
			return err
		}
		if familyID != "" {
			return q.SetAuthCodeFamily(ctx, hash, familyID)
		}
		return nil
	})
	if err != nil {
		return oauthTokens{}, fmt.Errorf("exchange authorization code: %w", err)
	}
	if failure != nil {
		return oauthTokens{}, failure
	}
	return res, nil
}

// grantUserTokens mints what an authorization code buys: an access token
// with the scope; a refresh token (a new family tagged with the client)
// when offline_access was granted; an ID token when openid was.
func (s *Service) grantUserTokens(ctx context.Context, q *Queries, c OAuthClient, u User, scope, nonce string, authTime time.Time) (oauthTokens, string, error) {
	access, err := s.keys.issueClientAccessToken(u, c.ID, scope)
	if err != nil {
		return oauthTokens{}, "", err
	}
	res := oauthTokens{AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(s.cfg.AccessTTL / time.Second), Scope: scope}
	familyID := ""
	if hasScope(scope, ScopeOfflineAccess) && c.Allows(GrantRefreshToken) {
		// startSession also signs a plain access token, which is dropped:
		// the client gets the scoped one above.
		pair, err := s.startSession(ctx, q, u, SessionOptions{ClientID: c.ID, Scope: scope, AuthTime: authTime})
		if err != nil {
			return oauthTokens{}, "", err
		}
		res.RefreshToken, familyID = pair.RefreshToken, pair.FamilyID
	}
	if hasScope(scope, ScopeOpenID) {
		if res.IDToken, err = s.idToken(c, u, scope, nonce, authTime, access); err != nil {
			return oauthTokens{}, "", err
		}
	}
	return res, familyID, nil
}

// refreshGrant is the refresh_token grant: Refresh rotates the token in
// the client's family (reuse revokes the family); the new access token
// keeps the scope first granted.
func (s *Service) refreshGrant(ctx context.Context, c OAuthClient, token, scope string) (oauthTokens, error) {
	if !c.Allows(GrantRefreshToken) {
		return oauthTokens{}, oauthErr("unauthorized_client", "this client may not use refresh tokens")
	}
	if token == "" {
		return oauthTokens{}, oauthErr("invalid_request", "refresh_token is required")
	}
	// A scope wider than the grant is refused before the token is spent:
	// a refused request must not cost the client its session. Narrowing
	// is not supported; the answer names the scope the token carries.
	if scope != "" && len(token) <= 256 {
		if _, f, err := s.store.RefreshToken(ctx, HashOpaqueToken(token)); err == nil && f.ClientID == c.ID {
			if _, ok := parseScope(scope, strings.Fields(f.Scope)); !ok {
				return oauthTokens{}, oauthErr("invalid_scope", "the scope is wider than the one granted: %s", f.Scope)
			}
		}
	}
	// Refresh also signs a plain access token (the user's full roles, no
	// scope), which is dropped for the delegated, scoped one below.
	pair, u, err := s.Refresh(ctx, token, c.ID)
	if errs.Is(err, errs.Unauthenticated) {
		return oauthTokens{}, oauthErr("invalid_grant", "%s", errMessage(err))
	}
	if err != nil {
		return oauthTokens{}, err
	}
	f, err := s.store.Family(ctx, pair.FamilyID)
	if err != nil {
		return oauthTokens{}, err
	}
	access, err := s.keys.issueClientAccessToken(u, c.ID, f.Scope)
	if err != nil {
		return oauthTokens{}, err
	}
	return oauthTokens{AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(s.cfg.AccessTTL / time.Second),
		RefreshToken: pair.RefreshToken, Scope: f.Scope}, nil
}

// clientCredentialsGrant gives a confidential client a token for itself:
// subject "client:<id>", role service, no refresh token (it can always ask
// again) and no scope (the identity scopes are about users).
func (s *Service) clientCredentialsGrant(c OAuthClient, scope string) (oauthTokens, error) {
	if c.Public() {
		return oauthTokens{}, oauthErr("unauthorized_client", "a public client cannot use client_credentials")
	}
	if !c.Allows(GrantClientCredentials) {
		return oauthTokens{}, oauthErr("unauthorized_client", "this client may not use client_credentials")
	}
	if scope != "" {
		return oauthTokens{}, oauthErr("invalid_scope", "client_credentials takes no scope")
	}
	access, _, err := s.keys.IssueAccessToken(AccessClaims{Subject: ClientSubjectPrefix + c.ID, Roles: []string{RoleService}, ClientID: c.ID})
	if err != nil {
		return oauthTokens{}, err
	}
	return oauthTokens{AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(s.cfg.AccessTTL / time.Second)}, nil
}

// ---- tokens ----

// delegatedRoles are the roles a client may act with for a user: theirs,
// except admin. Admin power is never handed to a third-party app; an admin
// administers through MallHive's own apps.
func delegatedRoles(roles []string) []string {
	return slices.DeleteFunc(slices.Clone(roles), func(r string) bool { return r == authn.RoleAdmin })
}

// clientAccessClaims are an access token issued to a client for a user:
// the claims of every access token plus the scope granted (RFC 9068
// §2.2.3), which the userinfo endpoint reads.
type clientAccessClaims struct {
	accessTokenClaims
	Scope string `json:"scope,omitempty"`
}

// issueClientAccessToken signs an access token (typ at+jwt, accepted by
// every service like any other) for u acting through client clientID, with
// the delegated roles and the scope.
func (k *KeyRing) issueClientAccessToken(u User, clientID, scope string) (string, error) {
	jti, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("issue access token: %w", err)
	}
	now := time.Unix(k.cfg.Now().Unix(), 0).UTC()
	claims := clientAccessClaims{
		accessTokenClaims: accessTokenClaims{
			Claims: jwt.Claims{Issuer: k.cfg.Issuer, Subject: u.ID, Audience: jwt.Audience{k.cfg.Audience},
				Expiry: jwt.NewNumericDate(now.Add(k.cfg.AccessTokenTTL)), NotBefore: jwt.NewNumericDate(now),
				IssuedAt: jwt.NewNumericDate(now), ID: jti.String()},
			Roles:    delegatedRoles(u.Roles),
			ClientID: clientID,
		},
		Scope: scope,
	}
	token, err := jwt.Signed(k.current().access).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("issue access token: %w", err)
	}
	return token, nil
}

// userClaims are the standard claims about a user that the ID token and
// userinfo carry, per the scope granted (OIDC Core §5.4).
type userClaims struct {
	Email         string `json:"email,omitempty"`
	EmailVerified *bool  `json:"email_verified,omitempty"`
	Name          string `json:"name,omitempty"`
}

func claimsFor(u User, scope string) userClaims {
	var c userClaims
	if hasScope(scope, ScopeEmail) {
		verified := u.EmailVerified
		c.Email, c.EmailVerified = u.Email, &verified
	}
	if hasScope(scope, ScopeProfile) {
		c.Name = u.Name
	}
	return c
}

type idTokenClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	Expiry   int64  `json:"exp"`
	IssuedAt int64  `json:"iat"`
	AuthTime int64  `json:"auth_time"`
	Nonce    string `json:"nonce,omitempty"`
	AZP      string `json:"azp"`
	AtHash   string `json:"at_hash"`
	userClaims
}

// idToken signs an OpenID Connect ID token (ES256, typ JWT, so it is never
// taken for an access token). It lives as long as an access token: the
// client checks it once, at sign-in.
func (s *Service) idToken(c OAuthClient, u User, scope, nonce string, authTime time.Time, accessToken string) (string, error) {
	now := s.now()
	return s.keys.Sign(idTokenClaims{
		Issuer: s.cfg.Issuer, Subject: u.ID, Audience: c.ID, AZP: c.ID,
		Expiry: now.Add(s.cfg.AccessTTL).Unix(), IssuedAt: now.Unix(), AuthTime: authTime.Unix(),
		Nonce: nonce, AtHash: AtHash(accessToken), userClaims: claimsFor(u, scope),
	})
}

// bearerClaims reads the claims of the access token that the authn
// middleware verified for this request (p is what it found): the
// signature and times are checked already, and the token id must match,
// so reading the payload without checking again is safe.
func bearerClaims(r *http.Request, p authn.Principal) (clientAccessClaims, error) {
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	var c clientAccessClaims
	if !strings.EqualFold(scheme, "Bearer") {
		return c, errors.New("no bearer token")
	}
	parsed, err := jwt.ParseSigned(strings.TrimSpace(token), []jose.SignatureAlgorithm{SigningAlgorithm})
	if err != nil {
		return c, err
	}
	if err := parsed.UnsafeClaimsWithoutVerification(&c); err != nil {
		return c, err
	}
	if c.ID != p.TokenID || c.Subject != p.UserID {
		return c, errors.New("the token is not the one the middleware verified")
	}
	return c, nil
}

// errMessage is the caller-safe message of a domain error.
func errMessage(err error) string {
	var e *errs.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "the request failed"
}
