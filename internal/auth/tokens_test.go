package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/errs"
)

const (
	testIssuer   = "https://auth.mallhive.test"
	testAudience = "mallhive-api"
)

// testClock is a settable clock shared by a key ring, a verifier and a test.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *testClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

func ringConfig(dir string, clk *testClock) KeyRingConfig {
	return KeyRingConfig{Dir: dir, Issuer: testIssuer, Audience: testAudience, Now: clk.Now}
}

func openRing(tb testing.TB, cfg KeyRingConfig) *KeyRing {
	tb.Helper()
	k, err := OpenKeyRing(cfg, nil)
	if err != nil {
		tb.Fatalf("OpenKeyRing: %v", err)
	}
	return k
}

// keyFiles lists the .pem files in dir.
func keyFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.pem"))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func kids(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

func TestKeyRingFirstStart(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "auth", "keys")
	k := openRing(t, ringConfig(dir, newTestClock()))

	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o700 {
		t.Errorf("key directory mode %04o, want 0700", perm)
	}
	files := keyFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("key files %v, want one", files)
	}
	fi, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %04o, want 0600", perm)
	}
	if want := filepath.Join(dir, k.SigningKeyID()+".pem"); files[0] != want {
		t.Errorf("key file %s, want %s", files[0], want)
	}

	set := k.JWKS()
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS has %d keys, want 1", len(set.Keys))
	}
	jwk := set.Keys[0]
	if !jwk.IsPublic() || jwk.Use != "sig" || jwk.Algorithm != "ES256" || jwk.KeyID != k.SigningKeyID() {
		t.Fatalf("JWKS key = public %v, use %q, alg %q, kid %q", jwk.IsPublic(), jwk.Use, jwk.Algorithm, jwk.KeyID)
	}
	// The kid is the RFC 7638 thumbprint.
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if want := base64.RawURLEncoding.EncodeToString(tp); jwk.KeyID != want {
		t.Fatalf("kid %q, want thumbprint %q", jwk.KeyID, want)
	}
	// The published JSON holds no private material.
	raw, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if _, leaked := doc.Keys[0]["d"]; leaked {
		t.Fatalf("JWKS leaks the private key: %s", raw)
	}
}

func TestKeyRingReloadKeepsKeys(t *testing.T) {
	t.Parallel()
	clk := newTestClock()
	dir := t.TempDir()
	first := openRing(t, ringConfig(dir, clk))
	kid := first.SigningKeyID()
	tok, _, err := first.IssueAccessToken(AccessClaims{Subject: "user-1"})
	if err != nil {
		t.Fatal(err)
	}

	clk.Advance(24 * time.Hour)
	second := openRing(t, ringConfig(dir, clk))
	if got := second.SigningKeyID(); got != kid {
		t.Fatalf("after reload the kid is %q, want %q", got, kid)
	}
	if files := keyFiles(t, dir); len(files) != 1 {
		t.Fatalf("reload created keys: %v", files)
	}
	// The reloaded key verifies what the first instance signed.
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.Claims
	if err := parsed.Claims(second.JWKS().Keys[0].Key, &c); err != nil {
		t.Fatalf("token from before the reload: %v", err)
	}
}

func TestKeyRingRotation(t *testing.T) {
	t.Parallel()
	clk := newTestClock()
	start := clk.Now()
	dir := t.TempDir()
	cfg := ringConfig(dir, clk)
	k := openRing(t, cfg)
	first := k.SigningKeyID()
	retireAfter := DefaultAccessTokenTTL + time.Hour

	steps := []struct {
		name        string
		at          time.Time
		wantRotated bool
		wantKeys    int
		wantFirst   bool // the first key is still published
	}{
		{name: "a day later nothing is due", at: start.Add(24 * time.Hour), wantKeys: 1, wantFirst: true},
		{name: "a second before the period", at: start.Add(DefaultRotationPeriod - time.Second), wantKeys: 1, wantFirst: true},
		{name: "the period is over", at: start.Add(DefaultRotationPeriod), wantRotated: true, wantKeys: 2, wantFirst: true},
		{name: "old key kept while its tokens live", at: start.Add(DefaultRotationPeriod + retireAfter - time.Second), wantKeys: 2, wantFirst: true},
		{name: "old key retired", at: start.Add(DefaultRotationPeriod + retireAfter), wantKeys: 1},
	}
	// Steps depend on each other: no t.Parallel.
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			rotated, err := k.RotateIfDue(st.at)
			if err != nil {
				t.Fatal(err)
			}
			if rotated != st.wantRotated {
				t.Fatalf("rotated = %v, want %v", rotated, st.wantRotated)
			}
			set := k.JWKS()
			if len(set.Keys) != st.wantKeys || len(keyFiles(t, dir)) != st.wantKeys {
				t.Fatalf("JWKS %v and files %v, want %d keys", kids(set), keyFiles(t, dir), st.wantKeys)
			}
			if set.Keys[0].KeyID != k.SigningKeyID() {
				t.Fatalf("JWKS is not newest first: %v, signing %s", kids(set), k.SigningKeyID())
			}
			hasFirst := strings.Contains(strings.Join(kids(set), ","), first)
			if hasFirst != st.wantFirst {
				t.Fatalf("first key published = %v, want %v", hasFirst, st.wantFirst)
			}
			if _, err := os.Stat(filepath.Join(dir, first+".pem")); os.IsNotExist(err) == st.wantFirst {
				t.Fatalf("first key file exists = %v, want %v", !os.IsNotExist(err), st.wantFirst)
			}
		})
	}
	if k.SigningKeyID() == first {
		t.Fatal("the ring still signs with the first key")
	}

	// A restart picks up the newest key for signing.
	clk.Set(start.Add(DefaultRotationPeriod + retireAfter))
	if again := openRing(t, cfg); again.SigningKeyID() != k.SigningKeyID() {
		t.Fatalf("after restart signing with %s, want %s", again.SigningKeyID(), k.SigningKeyID())
	}
}

func TestKeyRingForcedRotateKeepsPreviousPublished(t *testing.T) {
	t.Parallel()
	clk := newTestClock()
	k := openRing(t, ringConfig(t.TempDir(), clk))
	old := k.SigningKeyID()
	oldToken, _, err := k.IssueAccessToken(AccessClaims{Subject: "user-1"})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if err := k.Rotate(clk.Now()); err != nil {
		t.Fatal(err)
	}
	if k.SigningKeyID() == old {
		t.Fatal("Rotate did not change the signing key")
	}
	if got := kids(k.JWKS()); len(got) != 2 || got[1] != old {
		t.Fatalf("JWKS %v, want the new key then %s", got, old)
	}
	v := authn.NewVerifier(authn.VerifierConfig{Keys: k, Issuer: testIssuer, Audience: testAudience, Now: clk.Now})
	if _, err := v.Verify(t.Context(), oldToken); err != nil {
		t.Fatalf("token signed before the rotation: %v", err)
	}
}

func TestOpenKeyRingRefusesUntrustedFiles(t *testing.T) {
	t.Parallel()
	pkcs8 := func(tb testing.TB, key any) []byte {
		tb.Helper()
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			tb.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)

	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		wantErr string
	}{
		{"group readable", pkcs8(t, p256), 0o640, "chmod 600"},
		{"world readable", pkcs8(t, p256), 0o644, "chmod 600"},
		{"not PEM", []byte("hello"), 0o600, "PEM block"},
		{"two blocks", append(pkcs8(t, p256), pkcs8(t, p256)...), 0o600, "PEM block"},
		{"P-384", pkcs8(t, p384), 0o600, "P-256"},
		{"RSA", pkcs8(t, rsaKey), 0o600, "P-256"},
		{"bad created header", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Created": "yesterday"},
			Bytes: func() []byte { d, _ := x509.MarshalPKCS8PrivateKey(p256); return d }()}), 0o600, "Created"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "key.pem")
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := OpenKeyRing(ringConfig(dir, newTestClock()), nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestOpenKeyRingAcceptsHandPlacedKeyAndCleansTempFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	// No Created header: the file's modification time stands in.
	if err := os.WriteFile(filepath.Join(dir, "ops-provided.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".key-123.tmp"), []byte("half written"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not a key"), 0o644); err != nil {
		t.Fatal(err)
	}
	clk := newTestClock()
	clk.Set(time.Now())
	k := openRing(t, ringConfig(dir, clk))
	want, err := keyID(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if k.SigningKeyID() != want {
		t.Fatalf("signing with %s, want the hand-placed key %s", k.SigningKeyID(), want)
	}
	if _, err := os.Stat(filepath.Join(dir, ".key-123.tmp")); !os.IsNotExist(err) {
		t.Fatalf("stale temp file kept: %v", err)
	}
}

func TestKeyRingConfigValidate(t *testing.T) {
	t.Parallel()
	base := KeyRingConfig{Dir: "/tmp/x", Issuer: testIssuer, Audience: testAudience}
	tests := []struct {
		name   string
		modify func(*KeyRingConfig)
		ok     bool
	}{
		{"defaults", func(*KeyRingConfig) {}, true},
		{"no dir", func(c *KeyRingConfig) { c.Dir = "" }, false},
		{"no issuer", func(c *KeyRingConfig) { c.Issuer = "" }, false},
		{"no audience", func(c *KeyRingConfig) { c.Audience = "" }, false},
		{"TTL too short", func(c *KeyRingConfig) { c.AccessTokenTTL = time.Second }, false},
		{"rotation too often", func(c *KeyRingConfig) { c.RotationPeriod = time.Minute }, false},
		{"keys retired before their tokens expire", func(c *KeyRingConfig) { c.RetireAfter = DefaultAccessTokenTTL }, false},
		{"negative check interval", func(c *KeyRingConfig) { c.CheckEvery = -time.Second }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := base
			tt.modify(&cfg)
			if err := cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestKeyRingRunRotatesWhenDue(t *testing.T) {
	t.Parallel()
	clk := newTestClock()
	cfg := ringConfig(t.TempDir(), clk)
	cfg.CheckEvery = 5 * time.Millisecond
	k := openRing(t, cfg)
	first := k.SigningKeyID()

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	clk.Advance(DefaultRotationPeriod)

	deadline := time.Now().Add(5 * time.Second)
	for k.SigningKeyID() == first {
		if time.Now().After(deadline) {
			t.Fatal("Run did not rotate the overdue key")
		}
		time.Sleep(5 * time.Millisecond) // polling, bounded by the deadline
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}

func TestIssueAccessToken(t *testing.T) {
	t.Parallel()
	clk := newTestClock()
	k := openRing(t, ringConfig(t.TempDir(), clk))

	tok, exp, err := k.IssueAccessToken(AccessClaims{Subject: "user-7", Roles: []string{"buyer", "seller"}, Email: "u7@example.com", ClientID: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	if want := clk.Now().Add(DefaultAccessTokenTTL); !exp.Equal(want) {
		t.Fatalf("expiresAt = %s, want %s", exp, want)
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := parsed.Headers[0]
	if h.KeyID != k.SigningKeyID() || h.ExtraHeaders[jose.HeaderType] != authn.AccessTokenType {
		t.Fatalf("header kid %q typ %v", h.KeyID, h.ExtraHeaders[jose.HeaderType])
	}
	var c accessTokenClaims
	if err := parsed.Claims(k.JWKS().Keys[0].Key, &c); err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	switch {
	case c.Issuer != testIssuer, c.Subject != "user-7", !c.Audience.Contains(testAudience):
		t.Fatalf("iss/sub/aud = %q %q %v", c.Issuer, c.Subject, c.Audience)
	case !c.IssuedAt.Time().Equal(now), !c.NotBefore.Time().Equal(now), !c.Expiry.Time().Equal(exp):
		t.Fatalf("iat %v nbf %v exp %v", c.IssuedAt.Time(), c.NotBefore.Time(), c.Expiry.Time())
	case strings.Join(c.Roles, ",") != "buyer,seller", c.Email != "u7@example.com", c.ClientID != "cli":
		t.Fatalf("roles %v email %q client %q", c.Roles, c.Email, c.ClientID)
	}
	id, err := uuid.Parse(c.ID)
	if err != nil || id.Version() != 7 {
		t.Fatalf("jti %q is not a UUIDv7", c.ID)
	}
	if _, _, err := k.IssueAccessToken(AccessClaims{}); err == nil {
		t.Fatal("issued a token without a subject")
	}
}

func TestSign(t *testing.T) {
	t.Parallel()
	clk := newTestClock()
	k := openRing(t, ringConfig(t.TempDir(), clk))
	now := clk.Now()

	type idClaims struct {
		jwt.Claims
		Nonce    string `json:"nonce"`
		AuthTime int64  `json:"auth_time"`
		AZP      string `json:"azp"`
		AtHash   string `json:"at_hash"`
	}
	tests := []struct {
		name   string
		claims any
		ok     bool
	}{
		{"ID token", idClaims{
			Claims: jwt.Claims{Issuer: testIssuer, Subject: "user-1", Audience: jwt.Audience{"client-1"},
				IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour))},
			Nonce: "n-0S6_WzA2Mj", AuthTime: now.Unix(), AZP: "client-1", AtHash: AtHash("access"),
		}, true},
		{"map claims", map[string]any{"sub": "x", "exp": now.Add(time.Minute).Unix()}, true},
		{"no exp", map[string]any{"sub": "x"}, false},
		{"exp outlives the key", map[string]any{"sub": "x", "exp": now.Add(24 * time.Hour).Unix()}, false},
		{"not an object", []string{"x"}, false},
		{"not JSON", make(chan int), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok, err := k.Sign(tt.claims)
			if !tt.ok {
				if err == nil {
					t.Fatal("signed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				t.Fatal(err)
			}
			if typ := parsed.Headers[0].ExtraHeaders[jose.HeaderType]; typ != "JWT" || parsed.Headers[0].KeyID != k.SigningKeyID() {
				t.Fatalf("typ %v kid %q", typ, parsed.Headers[0].KeyID)
			}
			var got map[string]any
			if err := parsed.Claims(k.JWKS().Keys[0].Key, &got); err != nil {
				t.Fatal(err)
			}
			if got["sub"] == nil {
				t.Fatalf("claims lost: %v", got)
			}
		})
	}
}

func TestAtHash(t *testing.T) {
	t.Parallel()
	// OpenID Connect Core 1.0, appendix A.3 (SHA-256 based, as ES256 is).
	if got := AtHash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"); got != "77QmUPtjPfzWtF2AnpK9RQ" {
		t.Fatalf("AtHash = %q", got)
	}
}

func TestNewOpaqueToken(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		plain, hash := NewOpaqueToken()
		raw, err := base64.RawURLEncoding.DecodeString(plain)
		if err != nil || len(raw) != 32 {
			t.Fatalf("plain %q: %d bytes, %v", plain, len(raw), err)
		}
		if b, err := hex.DecodeString(hash); err != nil || len(b) != 32 {
			t.Fatalf("hash %q is not hex SHA-256", hash)
		}
		if hash != HashOpaqueToken(plain) || hash == HashOpaqueToken(plain+"x") {
			t.Fatal("HashOpaqueToken does not reproduce the hash")
		}
		if seen[plain] {
			t.Fatal("repeated token")
		}
		seen[plain] = true
	}
}

// TestAccessTokenVerifiesWithAuthnOverHTTP is the cross-check: a token from
// the KeyRing verifies with the authn.Verifier every service runs, fed by an
// HTTP JWKS endpoint serving KeyRing.JWKS(), across a rotation.
func TestAccessTokenVerifiesWithAuthnOverHTTP(t *testing.T) {
	t.Parallel()
	clk := newTestClock()
	k := openRing(t, ringConfig(t.TempDir(), clk))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(k.JWKS())
	}))
	t.Cleanup(srv.Close)
	v := authn.NewVerifier(authn.VerifierConfig{
		JWKSURL: srv.URL, HTTPClient: srv.Client(), Issuer: testIssuer, Audience: testAudience, Now: clk.Now,
	})
	ctx := t.Context()

	issue := func(t *testing.T, sub string) string {
		t.Helper()
		tok, _, err := k.IssueAccessToken(AccessClaims{Subject: sub, Roles: []string{authn.RoleSeller}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	before := issue(t, "user-1")
	p, err := v.Verify(ctx, before)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if p.UserID != "user-1" || !p.HasRole(authn.RoleSeller) || p.TokenID == "" {
		t.Fatalf("principal %+v", p)
	}

	// Rotation: a token from the new key verifies once the verifier may
	// refetch, and the old key's tokens keep verifying.
	clk.Advance(authn.DefaultMinRefresh)
	if err := k.Rotate(clk.Now()); err != nil {
		t.Fatal(err)
	}
	after := issue(t, "user-2")
	if p, err := v.Verify(ctx, after); err != nil || p.UserID != "user-2" {
		t.Fatalf("token from the rotated key: %+v, %v", p, err)
	}
	if _, err := v.Verify(ctx, before); err != nil {
		t.Fatalf("token from the previous key: %v", err)
	}

	// An ID token signed by the same ring is not an access token.
	idToken, err := k.Sign(map[string]any{"iss": testIssuer, "sub": "user-1", "aud": testAudience, "jti": "j",
		"iat": clk.Now().Unix(), "exp": clk.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, idToken); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("ID token accepted as an access token: %v", err)
	}

	// Expired tokens are refused.
	clk.Advance(DefaultAccessTokenTTL + authn.MaxLeeway)
	if _, err := v.Verify(ctx, after); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("expired token: %v", err)
	}
}
