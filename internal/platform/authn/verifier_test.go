package authn_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/errs"
)

const (
	testIssuer   = "https://auth.mallhive.test"
	testAudience = "mallhive-api"
)

// clock is a settable time source shared by a verifier and its test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testKey is an ES256 signing key named by kid.
type testKey struct {
	kid  string
	priv *ecdsa.PrivateKey
}

func newKey(tb testing.TB, kid string) testKey {
	tb.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return testKey{kid: kid, priv: priv}
}

func (k testKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Use: "sig", Algorithm: string(jose.ES256)}
}

// sign signs claims with k; the kid header is headerKID (k.kid when
// headerKID is nil, none when it is "").
func (k testKey) sign(tb testing.TB, claims map[string]any, headerKID *string, typ string) string {
	tb.Helper()
	kid := k.kid
	if headerKID != nil {
		kid = *headerKID
	}
	var key any = k.priv
	if kid != "" {
		key = jose.JSONWebKey{Key: k.priv, KeyID: kid}
	}
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		tb.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func (k testKey) token(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	return k.sign(tb, claims, nil, authn.AccessTokenType)
}

// claimsAt are the claims of a valid access token issued at now.
func claimsAt(now time.Time) map[string]any {
	return map[string]any{
		"iss":   testIssuer,
		"aud":   []string{testAudience},
		"sub":   "user-1",
		"jti":   "token-1",
		"roles": []string{"buyer", "seller"},
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(15 * time.Minute).Unix(),
	}
}

func with(c map[string]any, kv ...any) map[string]any {
	out := maps.Clone(c)
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func without(c map[string]any, keys ...string) map[string]any {
	out := maps.Clone(c)
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

var b64 = base64.RawURLEncoding

// rawToken assembles a compact JWS by hand, for tokens no honest library makes.
func rawToken(tb testing.TB, header, claims map[string]any, sign func(input []byte) []byte) string {
	tb.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + b64.EncodeToString(sig)
}

func hs256(key []byte) func([]byte) []byte {
	return func(input []byte) []byte {
		m := hmac.New(sha256.New, key)
		m.Write(input)
		return m.Sum(nil)
	}
}

func es256(tb testing.TB, priv *ecdsa.PrivateKey) func([]byte) []byte {
	return func(input []byte) []byte {
		digest := sha256.Sum256(input)
		r, sig, err := ecdsa.Sign(rand.Reader, priv, digest[:])
		if err != nil {
			tb.Fatal(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		sig.FillBytes(out[32:])
		return out
	}
}

// jwksServer serves a JWKS that tests can swap, and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu   sync.Mutex
	set  jose.JSONWebKeySet
	down bool
	hits atomic.Int64
}

func newJWKSServer(tb testing.TB, keys ...testKey) *jwksServer {
	tb.Helper()
	s := &jwksServer{}
	s.publish(keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		set, down := s.set, s.down
		s.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	tb.Cleanup(s.Close)
	return s
}

func (s *jwksServer) publish(keys ...testKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set = jose.JSONWebKeySet{}
	for _, k := range keys {
		s.set.Keys = append(s.set.Keys, k.jwk())
	}
}

func (s *jwksServer) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func newVerifier(tb testing.TB, srv *jwksServer, clk *clock) *authn.Verifier {
	tb.Helper()
	cfg := authn.VerifierConfig{
		JWKSURL:    srv.URL,
		HTTPClient: srv.Client(),
		Issuer:     testIssuer,
		Audience:   testAudience,
		Now:        clk.Now,
	}
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	return authn.NewVerifier(cfg)
}

func ptr(s string) *string { return &s }

func TestVerifyRefusesAttacks(t *testing.T) {
	t.Parallel()
	clk := newClock()
	now := clk.Now()
	known := newKey(t, "key-1")
	srv := newJWKSServer(t, known)
	v := newVerifier(t, srv, clk)

	// Sanity: the fixture accepts an honest token, so each refusal below is
	// caused by the one thing its case changes.
	if _, err := v.Verify(t.Context(), known.token(t, claimsAt(now))); err != nil {
		t.Fatalf("valid token refused: %v", err)
	}

	pubDER, err := x509.MarshalPKIXPublicKey(&known.priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	pubJWK, err := json.Marshal(known.jwk())
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaSigner, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: rsaKey, KeyID: known.kid}},
		(&jose.SignerOptions{}).WithType(authn.AccessTokenType))
	if err != nil {
		t.Fatal(err)
	}
	rsaPayload, _ := json.Marshal(claimsAt(now))
	rsaJWS, err := rsaSigner.Sign(rsaPayload)
	if err != nil {
		t.Fatal(err)
	}
	rsaToken, _ := rsaJWS.CompactSerialize()

	es384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	es384Signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: jose.JSONWebKey{Key: es384, KeyID: known.kid}},
		(&jose.SignerOptions{}).WithType(authn.AccessTokenType))
	if err != nil {
		t.Fatal(err)
	}
	es384JWS, err := es384Signer.Sign(rsaPayload)
	if err != nil {
		t.Fatal(err)
	}
	es384Token, _ := es384JWS.CompactSerialize()

	attacker := newKey(t, known.kid)
	// The attacker's key rides along in a jwk header, hoping the verifier
	// trusts keys that tokens bring with them.
	embedHeader := map[string]any{"alg": "ES256", "kid": known.kid, "typ": authn.AccessTokenType, "jwk": attacker.jwk()}
	embedToken := rawToken(t, embedHeader, claimsAt(now), es256(t, attacker.priv))

	valid := known.token(t, claimsAt(now))
	parts := strings.Split(valid, ".")
	tamperedClaims := with(claimsAt(now), "sub", "admin-1", "roles", []string{"admin"})
	tamperedPayload, _ := json.Marshal(tamperedClaims)
	tampered := parts[0] + "." + b64.EncodeToString(tamperedPayload) + "." + parts[2]

	esHeader := map[string]any{"alg": "ES256", "kid": known.kid, "typ": authn.AccessTokenType}
	// Hand-made tokens verify when honestly signed, so their refusals below
	// are not an artefact of rawToken.
	if _, err := v.Verify(t.Context(), rawToken(t, esHeader, claimsAt(now), es256(t, known.priv))); err != nil {
		t.Fatalf("hand-made valid token refused: %v", err)
	}

	tests := []struct {
		name  string
		token string
		cause string // in the logged error: refused for this reason, not another
	}{
		{"alg none", rawToken(t, map[string]any{"alg": "none", "kid": known.kid, "typ": authn.AccessTokenType}, claimsAt(now), nil), `unexpected signature algorithm`},
		{"alg None mixed case", rawToken(t, map[string]any{"alg": "None", "kid": known.kid, "typ": authn.AccessTokenType}, claimsAt(now), nil), `unexpected signature algorithm`},
		{"HS256 keyed with the public key PEM", rawToken(t, map[string]any{"alg": "HS256", "kid": known.kid, "typ": authn.AccessTokenType}, claimsAt(now), hs256(pubPEM)), `unexpected signature algorithm`},
		{"HS256 keyed with the public key JWK JSON", rawToken(t, map[string]any{"alg": "HS256", "kid": known.kid, "typ": authn.AccessTokenType}, claimsAt(now), hs256(pubJWK)), `unexpected signature algorithm`},
		{"RS256 token", rsaToken, `unexpected signature algorithm`},
		{"ES384 token", es384Token, `unexpected signature algorithm`},
		{"expired", known.token(t, with(claimsAt(now), "iat", now.Add(-time.Hour).Unix(), "nbf", now.Add(-time.Hour).Unix(), "exp", now.Add(-time.Minute).Unix())), `token is expired`},
		{"no exp", known.token(t, without(claimsAt(now), "exp")), `no exp`},
		{"nbf in the future", known.token(t, with(claimsAt(now), "nbf", now.Add(5*time.Minute).Unix())), `not valid yet`},
		{"iat in the future", known.token(t, with(claimsAt(now), "iat", now.Add(5*time.Minute).Unix())), `issued in the future`},
		{"no iat", known.token(t, without(claimsAt(now), "iat")), `no iat`},
		{"no sub", known.token(t, without(claimsAt(now), "sub")), `no sub`},
		{"no jti", known.token(t, without(claimsAt(now), "jti")), `no jti`},
		{"no iss", known.token(t, without(claimsAt(now), "iss")), `invalid issuer`},
		{"wrong iss", known.token(t, with(claimsAt(now), "iss", "https://evil.example")), `invalid issuer`},
		{"no aud", known.token(t, without(claimsAt(now), "aud")), `invalid audience`},
		{"wrong aud", known.token(t, with(claimsAt(now), "aud", []string{"other-api"})), `invalid audience`},
		{"wrong aud as string", known.token(t, with(claimsAt(now), "aud", "other-api")), `invalid audience`},
		{"roles of the wrong type", known.token(t, with(claimsAt(now), "roles", "admin")), `cannot unmarshal`},
		{"ID token type", known.sign(t, claimsAt(now), nil, "JWT"), `token type "JWT"`},
		{"no typ", known.sign(t, claimsAt(now), nil, ""), `token type ""`},
		{"unknown kid", known.sign(t, claimsAt(now), ptr("key-unknown"), authn.AccessTokenType), `unknown kid "key-unknown"`},
		{"hostile kid path traversal", known.sign(t, claimsAt(now), ptr("../../etc/passwd"), authn.AccessTokenType), `missing or malformed kid`},
		{"hostile kid very long", known.sign(t, claimsAt(now), ptr(strings.Repeat("k", 4000)), authn.AccessTokenType), `missing or malformed kid`},
		{"hostile kid SQL", known.sign(t, claimsAt(now), ptr("key-1' OR '1'='1"), authn.AccessTokenType), `missing or malformed kid`},
		{"hostile kid NUL", known.sign(t, claimsAt(now), ptr("key-1\x00"), authn.AccessTokenType), `missing or malformed kid`},
		{"missing kid", known.sign(t, claimsAt(now), ptr(""), authn.AccessTokenType), `missing or malformed kid`},
		{"tampered payload", tampered, `cryptographic primitive`},
		{"signed by another key claiming a known kid", attacker.token(t, claimsAt(now)), `cryptographic primitive`},
		{"attacker key embedded as jwk header", embedToken, `cryptographic primitive`},
		{"ES256 header with a zero signature", rawToken(t, esHeader, claimsAt(now), func([]byte) []byte { return make([]byte, 64) }), `cryptographic primitive`},
		{"ES256 header with no signature", rawToken(t, esHeader, claimsAt(now), nil), `cryptographic primitive`},
		{"two parts", parts[0] + "." + parts[1], `three parts`},
		{"four parts", valid + ".x", `three parts`},
		{"bad base64", parts[0] + ".!!!not-base64!!!." + parts[2], `illegal base64`},
		{"header not JSON", b64.EncodeToString([]byte("hello")) + "." + parts[1] + "." + parts[2], `invalid protected header`},
		{"empty", "", `missing access token`},
		{"dots only", "..", `unexpected signature algorithm`},
		{"JWS JSON serialization", `{"payload":"` + parts[1] + `","signatures":[{"protected":"` + parts[0] + `","signature":"` + parts[2] + `"}]}`, `three parts`},
		{"too large", known.token(t, with(claimsAt(now), "pad", strings.Repeat("x", authn.MaxTokenBytes))), `token too large`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := v.Verify(t.Context(), tt.token)
			if err == nil {
				t.Fatalf("accepted, principal %+v", p)
			}
			if code := errs.CodeOf(err); code != errs.Unauthenticated {
				t.Fatalf("code = %s, want %s (err %v)", code, errs.Unauthenticated, err)
			}
			if !strings.Contains(err.Error(), tt.cause) {
				t.Fatalf("refused for the wrong reason: %v (want %q)", err, tt.cause)
			}
			// The caller sees a short fixed message; the detail is for logs.
			var e *errs.Error
			if !errors.As(err, &e) || (e.Message != "invalid access token" && e.Message != "access token expired" && e.Message != "missing access token") {
				t.Fatalf("message of %v is not one of the fixed safe messages", err)
			}
		})
	}
}

func TestVerifyAcceptsValidTokens(t *testing.T) {
	t.Parallel()
	clk := newClock()
	now := clk.Now()
	key := newKey(t, "key-1")
	srv := newJWKSServer(t, key)
	v := newVerifier(t, srv, clk)

	tests := []struct {
		name   string
		claims map[string]any
		typ    string
		want   authn.Principal
	}{
		{
			name:   "full token",
			claims: claimsAt(now),
			typ:    authn.AccessTokenType,
			want:   authn.Principal{UserID: "user-1", Roles: []string{"buyer", "seller"}, TokenID: "token-1", ExpiresAt: now.Add(15 * time.Minute)},
		},
		{
			name:   "audience among others, as media type",
			claims: with(claimsAt(now), "aud", []string{"other", testAudience}),
			typ:    "application/at+jwt",
			want:   authn.Principal{UserID: "user-1", Roles: []string{"buyer", "seller"}, TokenID: "token-1", ExpiresAt: now.Add(15 * time.Minute)},
		},
		{
			name:   "audience as a string, no roles, no nbf",
			claims: without(with(claimsAt(now), "aud", testAudience), "roles", "nbf"),
			typ:    authn.AccessTokenType,
			want:   authn.Principal{UserID: "user-1", TokenID: "token-1", ExpiresAt: now.Add(15 * time.Minute)},
		},
		{
			name:   "expired within the leeway",
			claims: with(claimsAt(now), "exp", now.Add(-10*time.Second).Unix()),
			typ:    authn.AccessTokenType,
			want:   authn.Principal{UserID: "user-1", Roles: []string{"buyer", "seller"}, TokenID: "token-1", ExpiresAt: now.Add(-10 * time.Second)},
		},
		{
			name:   "issued slightly in the future (clock skew)",
			claims: with(claimsAt(now), "iat", now.Add(20*time.Second).Unix(), "nbf", now.Add(20*time.Second).Unix()),
			typ:    "AT+JWT",
			want:   authn.Principal{UserID: "user-1", Roles: []string{"buyer", "seller"}, TokenID: "token-1", ExpiresAt: now.Add(15 * time.Minute)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := v.Verify(t.Context(), key.sign(t, tt.claims, nil, tt.typ))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.UserID != tt.want.UserID || got.TokenID != tt.want.TokenID || !got.ExpiresAt.Equal(tt.want.ExpiresAt) ||
				strings.Join(got.Roles, ",") != strings.Join(tt.want.Roles, ",") {
				t.Fatalf("principal = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestVerifyLeewayIsBounded(t *testing.T) {
	t.Parallel()
	clk := newClock()
	now := clk.Now()
	key := newKey(t, "key-1")
	srv := newJWKSServer(t, key)
	v := authn.NewVerifier(authn.VerifierConfig{
		JWKSURL: srv.URL, HTTPClient: srv.Client(), Issuer: testIssuer, Audience: testAudience,
		Leeway: time.Hour, Now: clk.Now,
	})
	_, err := v.Verify(t.Context(), key.token(t, with(claimsAt(now), "exp", now.Add(-2*time.Minute).Unix())))
	if !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("token expired 2 minutes ago with a 1h leeway configured: err = %v, want unauthenticated", err)
	}
	if cfgErr := (authn.VerifierConfig{JWKSURL: "x", Issuer: "i", Audience: "a", Leeway: time.Hour}).Validate(); cfgErr == nil {
		t.Fatal("Validate accepted a 1h leeway")
	}
}

func TestVerifyKeyRotation(t *testing.T) {
	t.Parallel()
	clk := newClock()
	oldKey, newKey_ := newKey(t, "key-old"), newKey(t, "key-new")
	srv := newJWKSServer(t, oldKey)
	v := newVerifier(t, srv, clk)
	ctx := t.Context()

	verify := func(t *testing.T, k testKey) error {
		t.Helper()
		_, err := v.Verify(ctx, k.token(t, claimsAt(clk.Now())))
		return err
	}

	if err := verify(t, oldKey); err != nil {
		t.Fatalf("old key before rotation: %v", err)
	}
	if hits := srv.hits.Load(); hits != 1 {
		t.Fatalf("first verification fetched %d times, want 1", hits)
	}

	// Auth rotates: the new key signs, the old one stays published.
	srv.publish(newKey_, oldKey)
	clk.Advance(authn.DefaultMinRefresh)
	if err := verify(t, newKey_); err != nil {
		t.Fatalf("new key after rotation: %v", err)
	}
	if hits := srv.hits.Load(); hits != 2 {
		t.Fatalf("unknown kid fetched %d times in total, want 2", hits)
	}
	if err := verify(t, oldKey); err != nil {
		t.Fatalf("old key still published: %v", err)
	}

	// Auth retires the old key; once the cached set is stale, the verifier
	// refetches and stops trusting it.
	srv.publish(newKey_)
	clk.Advance(authn.DefaultMaxAge)
	if err := verify(t, oldKey); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("retired key: err = %v, want unauthenticated", err)
	}
	if err := verify(t, newKey_); err != nil {
		t.Fatalf("new key after retirement of the old: %v", err)
	}
}

func TestVerifyRefetchIsRateLimited(t *testing.T) {
	t.Parallel()
	clk := newClock()
	key, rotated := newKey(t, "key-1"), newKey(t, "key-2")
	srv := newJWKSServer(t, key)
	v := newVerifier(t, srv, clk)
	ctx := t.Context()

	if _, err := v.Verify(ctx, key.token(t, claimsAt(clk.Now()))); err != nil {
		t.Fatal(err)
	}
	// A flood of unknown and hostile kids right after a fetch fetches nothing.
	for _, kid := range []string{"nope-1", "nope-2", "../../etc/passwd", strings.Repeat("z", 500)} {
		if _, err := v.Verify(ctx, key.sign(t, claimsAt(clk.Now()), ptr(kid), authn.AccessTokenType)); !errs.Is(err, errs.Unauthenticated) {
			t.Fatalf("kid %.20q: err = %v, want unauthenticated", kid, err)
		}
	}
	if hits := srv.hits.Load(); hits != 1 {
		t.Fatalf("fetched %d times, want 1", hits)
	}

	// A newly published key is picked up once the rate limit allows.
	srv.publish(key, rotated)
	tok := rotated.token(t, claimsAt(clk.Now()))
	if _, err := v.Verify(ctx, tok); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("within MinRefresh: err = %v, want unauthenticated", err)
	}
	clk.Advance(authn.DefaultMinRefresh)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("after MinRefresh: %v", err)
	}

	// Hostile kids never trigger a fetch, even when one is due.
	clk.Advance(authn.DefaultMinRefresh)
	before := srv.hits.Load()
	if _, err := v.Verify(ctx, key.sign(t, claimsAt(clk.Now()), ptr("../../etc/passwd"), authn.AccessTokenType)); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("err = %v, want unauthenticated", err)
	}
	if hits := srv.hits.Load(); hits != before {
		t.Fatalf("hostile kid caused %d fetches", hits-before)
	}
}

func TestVerifyConcurrentUnknownKidFetchesOnce(t *testing.T) {
	t.Parallel()
	clk := newClock()
	key := newKey(t, "key-1")
	srv := newJWKSServer(t, key)
	v := newVerifier(t, srv, clk)
	tok := key.token(t, claimsAt(clk.Now()))

	var wg sync.WaitGroup
	errCh := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			if _, err := v.Verify(t.Context(), tok); err != nil {
				errCh <- err
			}
		})
	}
	wg.Wait()
	close(errCh)
	for err := range errCh {
		t.Errorf("Verify: %v", err)
	}
	if hits := srv.hits.Load(); hits != 1 {
		t.Fatalf("32 concurrent first verifications fetched %d times, want 1", hits)
	}
}

func TestVerifyJWKSUnavailable(t *testing.T) {
	t.Parallel()
	clk := newClock()
	key := newKey(t, "key-1")
	srv := newJWKSServer(t, key)
	srv.setDown(true)
	v := newVerifier(t, srv, clk)
	tok := key.token(t, claimsAt(clk.Now()))

	if _, err := v.Verify(t.Context(), tok); !errs.Is(err, errs.Unavailable) {
		t.Fatalf("JWKS down on first use: err = %v, want unavailable", err)
	}
	if err := v.Refresh(t.Context()); err == nil {
		t.Fatal("Refresh succeeded against a failing JWKS")
	}
	srv.setDown(false)
	clk.Advance(time.Second) // a cold verifier retries quickly
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("after JWKS recovered: %v", err)
	}

	// A stale set is kept when the refresh fails.
	srv.setDown(true)
	clk.Advance(authn.DefaultMaxAge)
	tok = key.token(t, claimsAt(clk.Now()))
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("stale keys with JWKS down: %v", err)
	}
}

func TestVerifyStaticKeySource(t *testing.T) {
	t.Parallel()
	clk := newClock()
	key := newKey(t, "key-1")
	other := newKey(t, "key-2")
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		// Unusable entries are skipped, not fatal.
		{Key: &other.priv.PublicKey, KeyID: other.kid, Use: "enc"},
		{Key: []byte("secret"), KeyID: "hmac", Algorithm: "HS256"},
		// A private key published by mistake is used for its public half only.
		{Key: key.priv, KeyID: key.kid},
	}}
	v := authn.NewVerifier(authn.VerifierConfig{
		Keys:     authn.KeySourceFunc(func(context.Context) (jose.JSONWebKeySet, error) { return set, nil }),
		Issuer:   testIssuer,
		Audience: testAudience,
		Now:      clk.Now,
	})
	if _, err := v.Verify(t.Context(), key.token(t, claimsAt(clk.Now()))); err != nil {
		t.Fatalf("valid token: %v", err)
	}
	if _, err := v.Verify(t.Context(), other.token(t, claimsAt(clk.Now()))); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("key published for encryption: err = %v, want unauthenticated", err)
	}
}

func TestVerifyMisconfigured(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  authn.VerifierConfig
	}{
		{"no key source", authn.VerifierConfig{Issuer: testIssuer, Audience: testAudience}},
		{"no issuer", authn.VerifierConfig{JWKSURL: "http://127.0.0.1:1/jwks", Audience: testAudience}},
		{"no audience", authn.VerifierConfig{JWKSURL: "http://127.0.0.1:1/jwks", Issuer: testIssuer}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.cfg.Validate(); err == nil {
				t.Fatal("Validate accepted the config")
			}
			if _, err := authn.NewVerifier(tt.cfg).Verify(t.Context(), "a.b.c"); !errs.Is(err, errs.Internal) {
				t.Fatalf("err = %v, want internal", err)
			}
		})
	}
}
