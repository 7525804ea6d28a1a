package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mallhive/mallhive/internal/platform/errs"
)

// Defaults and bounds of VerifierConfig.
const (
	DefaultLeeway     = 30 * time.Second
	MaxLeeway         = 60 * time.Second
	DefaultMinRefresh = 30 * time.Second
	DefaultMaxAge     = 15 * time.Minute

	// MaxTokenBytes bounds the size of a token before any parsing.
	MaxTokenBytes = 8 << 10
	// maxKIDLen bounds the kid header; auth's kids are 43-character thumbprints.
	maxKIDLen = 128
	// coldRetry is how often a verifier that has never obtained a key set
	// retries, so a service that starts before auth recovers quickly.
	coldRetry = time.Second
)

// AccessTokenType is the `typ` header of access tokens (RFC 9068).
const AccessTokenType = "at+jwt"

// VerifierConfig configures a Verifier. Either Keys or JWKSURL names where
// the public keys come from.
type VerifierConfig struct {
	// JWKSURL is the auth service's JWKS document, fetched with HTTPClient.
	JWKSURL    string
	HTTPClient *http.Client
	// Keys, when set, is used instead of JWKSURL (in-process and tests).
	Keys KeySource
	// Issuer must equal the token's iss; Audience must be one of its aud.
	Issuer   string
	Audience string
	// Leeway tolerates clock skew on exp, nbf and iat: DefaultLeeway when 0,
	// at most MaxLeeway.
	Leeway time.Duration
	// MinRefresh is the least time between two fetches of the key set when a
	// token names an unknown kid (DefaultMinRefresh when 0). The first fetch
	// is immediate.
	MinRefresh time.Duration
	// MaxAge is how long a fetched key set is used before it is fetched
	// again, so retired keys stop being trusted (DefaultMaxAge when 0). A
	// failed refresh keeps the old set.
	MaxAge time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Validate reports what is missing from the configuration.
func (c VerifierConfig) Validate() error {
	var problems []string
	if c.JWKSURL == "" && c.Keys == nil {
		problems = append(problems, "a JWKS URL or a key source is required")
	}
	if c.Issuer == "" {
		problems = append(problems, "issuer is required")
	}
	if c.Audience == "" {
		problems = append(problems, "audience is required")
	}
	if c.Leeway < 0 || c.Leeway > MaxLeeway {
		problems = append(problems, fmt.Sprintf("leeway must be between 0 and %s", MaxLeeway))
	}
	if c.MinRefresh < 0 || c.MaxAge < 0 {
		problems = append(problems, "refresh intervals must not be negative")
	}
	if len(problems) > 0 {
		return fmt.Errorf("authn verifier config: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Verifier checks access tokens against the auth service's published keys.
// It is safe for concurrent use.
type Verifier struct {
	cfg VerifierConfig
	src KeySource

	// fetching is a one-slot semaphore: one fetch at a time, and waiting for
	// it respects the caller's context.
	fetching chan struct{}

	mu          sync.Mutex
	keys        map[string]*ecdsa.PublicKey
	fetchedAt   time.Time // last successful fetch
	attemptedAt time.Time // last fetch, successful or not
	attempts    uint64    // counts fetches, so waiters can tell one happened
}

// NewVerifier builds a Verifier; it fetches nothing until the first Verify
// (call Refresh to warm it). Configuration mistakes (see Validate) make every
// Verify fail with an errs.Internal error.
func NewVerifier(cfg VerifierConfig) *Verifier {
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	cfg.Leeway = min(cfg.Leeway, MaxLeeway)
	if cfg.MinRefresh == 0 {
		cfg.MinRefresh = DefaultMinRefresh
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	src := cfg.Keys
	if src == nil && cfg.JWKSURL != "" {
		src = HTTPKeySource{URL: cfg.JWKSURL, Client: cfg.HTTPClient}
	}
	return &Verifier{cfg: cfg, src: src, fetching: make(chan struct{}, 1)}
}

// tokenClaims is what an access token states.
type tokenClaims struct {
	jwt.Claims
	Roles []string `json:"roles"`
}

func unauthenticated(msg string, cause error) error {
	return &errs.Error{Code: errs.Unauthenticated, Message: msg, Err: cause}
}

const invalidToken = "invalid access token"

// Verify checks token and returns the principal it names. Only ES256 tokens
// of type at+jwt, signed by a published key named by their kid, with exp,
// iat, iss, aud, sub and jti, are accepted; nbf is honoured.
//
// It returns an errs.Unauthenticated error for any bad token, errs.Unavailable
// when the signing keys cannot be fetched, and errs.Internal when the
// verifier is misconfigured.
func (v *Verifier) Verify(ctx context.Context, token string) (Principal, error) {
	if err := v.cfg.Validate(); err != nil {
		return Principal{}, &errs.Error{Code: errs.Internal, Message: "token verification is not configured", Err: err}
	}
	if token == "" {
		return Principal{}, unauthenticated("missing access token", nil)
	}
	if len(token) > MaxTokenBytes {
		return Principal{}, unauthenticated(invalidToken, errors.New("token too large"))
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return Principal{}, unauthenticated(invalidToken, err)
	}
	if len(tok.Headers) != 1 {
		return Principal{}, unauthenticated(invalidToken, errors.New("want exactly one signature"))
	}
	h := tok.Headers[0]
	if h.Algorithm != string(jose.ES256) {
		return Principal{}, unauthenticated(invalidToken, fmt.Errorf("algorithm %q not allowed", h.Algorithm))
	}
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !isAccessTokenType(typ) {
		return Principal{}, unauthenticated(invalidToken, fmt.Errorf("token type %q is not %s", typ, AccessTokenType))
	}
	if !validKID(h.KeyID) {
		return Principal{}, unauthenticated(invalidToken, errors.New("missing or malformed kid"))
	}
	key, err := v.key(ctx, h.KeyID)
	if err != nil {
		return Principal{}, err
	}

	var c tokenClaims
	if err := tok.Claims(key, &c); err != nil {
		return Principal{}, unauthenticated(invalidToken, err)
	}
	switch {
	case c.Expiry == nil:
		return Principal{}, unauthenticated(invalidToken, errors.New("no exp"))
	case c.IssuedAt == nil:
		return Principal{}, unauthenticated(invalidToken, errors.New("no iat"))
	case c.Subject == "":
		return Principal{}, unauthenticated(invalidToken, errors.New("no sub"))
	case c.ID == "":
		return Principal{}, unauthenticated(invalidToken, errors.New("no jti"))
	}
	err = c.ValidateWithLeeway(jwt.Expected{
		Issuer:      v.cfg.Issuer,
		AnyAudience: jwt.Audience{v.cfg.Audience},
		Time:        v.cfg.Now(),
	}, v.cfg.Leeway)
	if errors.Is(err, jwt.ErrExpired) {
		return Principal{}, unauthenticated("access token expired", err)
	}
	if err != nil {
		return Principal{}, unauthenticated(invalidToken, err)
	}
	return Principal{
		UserID:    c.Subject,
		Roles:     c.Roles,
		TokenID:   c.ID,
		ExpiresAt: c.Expiry.Time(),
	}, nil
}

func isAccessTokenType(typ string) bool {
	return strings.EqualFold(typ, AccessTokenType) || strings.EqualFold(typ, "application/"+AccessTokenType)
}

// validKID accepts the base64url and dotted names key ids are made of, and
// refuses anything else before it reaches a lookup or a log line.
func validKID(kid string) bool {
	if kid == "" || len(kid) > maxKIDLen {
		return false
	}
	for _, c := range kid {
		if !(c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// key returns the public key named kid, fetching the key set when it has
// never been fetched, is older than MaxAge, or lacks kid (rate limited).
func (v *Verifier) key(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	now := v.cfg.Now()
	v.mu.Lock()
	k, known := v.keys[kid]
	stale := v.fetchedAt.IsZero() || now.Sub(v.fetchedAt) >= v.cfg.MaxAge
	due := v.fetchDue(now)
	attempts := v.attempts
	v.mu.Unlock()

	if known && !stale {
		return k, nil
	}
	if !due {
		if known {
			return k, nil // stale but a refresh failed recently: keep serving
		}
		return nil, unauthenticated(invalidToken, fmt.Errorf("unknown kid %q", kid))
	}
	fetchErr := v.refresh(ctx, attempts)

	v.mu.Lock()
	k, known = v.keys[kid]
	v.mu.Unlock()
	switch {
	case known:
		return k, nil
	case fetchErr != nil:
		// The key may be a new one we cannot see yet: a 503 tells the client
		// to retry, where a 401 would make it drop a good token.
		return nil, &errs.Error{Code: errs.Unavailable, Message: "cannot verify access tokens right now", Err: fetchErr}
	default:
		return nil, unauthenticated(invalidToken, fmt.Errorf("unknown kid %q", kid))
	}
}

// fetchDue reports whether a fetch may start now; v.mu must be held.
func (v *Verifier) fetchDue(now time.Time) bool {
	if v.attemptedAt.IsZero() {
		return true
	}
	wait := v.cfg.MinRefresh
	if len(v.keys) == 0 {
		wait = min(wait, coldRetry)
	}
	return now.Sub(v.attemptedAt) >= wait
}

// Refresh fetches the key set now, whatever the rate limit; use it to warm
// the cache at start-up or in a readiness check. It returns the fetch error.
func (v *Verifier) Refresh(ctx context.Context) error {
	v.mu.Lock()
	attempts := v.attempts
	v.mu.Unlock()
	return v.refresh(ctx, attempts)
}

// refresh fetches the key set unless another fetch completed since the caller
// read attempts (then the caller uses that one's result).
func (v *Verifier) refresh(ctx context.Context, attempts uint64) error {
	if v.src == nil {
		return errors.New("no key source")
	}
	select {
	case v.fetching <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("wait for jwks fetch: %w", ctx.Err())
	}
	defer func() { <-v.fetching }()

	v.mu.Lock()
	fetchedMeanwhile := v.attempts != attempts
	v.mu.Unlock()
	if fetchedMeanwhile {
		return nil
	}

	set, err := v.src.Keys(ctx)
	var keys map[string]*ecdsa.PublicKey
	if err == nil {
		keys = usableKeys(set)
		if len(keys) == 0 {
			err = errors.New("jwks holds no usable ES256 signing key")
		}
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	v.attempts++
	v.attemptedAt = v.cfg.Now()
	if err != nil {
		return fmt.Errorf("refresh signing keys: %w", err)
	}
	v.keys = keys
	v.fetchedAt = v.attemptedAt
	return nil
}

// usableKeys keeps the P-256 signature keys with a valid kid; when a kid
// repeats, the first key wins. Private halves, if a misconfigured source
// published any, are reduced to their public keys.
func usableKeys(set jose.JSONWebKeySet) map[string]*ecdsa.PublicKey {
	keys := make(map[string]*ecdsa.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		if !validKID(k.KeyID) || (k.Use != "" && k.Use != "sig") ||
			(k.Algorithm != "" && k.Algorithm != string(jose.ES256)) {
			continue
		}
		var pub *ecdsa.PublicKey
		switch key := k.Key.(type) {
		case *ecdsa.PublicKey:
			pub = key
		case *ecdsa.PrivateKey:
			pub = &key.PublicKey
		default:
			continue
		}
		if pub.Curve != elliptic.P256() {
			continue
		}
		if _, dup := keys[k.KeyID]; !dup {
			keys[k.KeyID] = pub
		}
	}
	return keys
}
