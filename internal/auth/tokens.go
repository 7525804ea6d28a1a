package auth

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/mallhive/mallhive/internal/platform/authn"
)

// Defaults of KeyRingConfig.
const (
	DefaultRotationPeriod = 30 * 24 * time.Hour
	DefaultAccessTokenTTL = 15 * time.Minute
	DefaultKeyCheckEvery  = time.Hour
	// defaultRetireMargin is added to the access-token TTL to make the default
	// RetireAfter: it covers ID tokens (which live up to an hour) and the
	// verifiers' leeway.
	defaultRetireMargin = time.Hour
)

// SigningAlgorithm is the only algorithm the ring signs with and the
// verifiers accept.
const SigningAlgorithm = jose.ES256

const (
	keyFileExt      = ".pem"
	keyPEMType      = "PRIVATE KEY" // PKCS #8
	keyCreatedField = "Created"
	keyTempPattern  = ".key-*.tmp"
)

// KeyRingConfig configures the token signing keys.
type KeyRingConfig struct {
	// Dir holds one PEM file per key (mode 0600, the directory 0700), e.g.
	// <data-dir>/auth/keys. Keys are generated there on first start and kept.
	Dir string
	// Issuer and Audience go into every access token's iss and aud.
	Issuer   string
	Audience string
	// AccessTokenTTL is the lifetime of access tokens (DefaultAccessTokenTTL).
	AccessTokenTTL time.Duration
	// RotationPeriod is how long a key signs before a new one replaces it
	// (DefaultRotationPeriod).
	RotationPeriod time.Duration
	// RetireAfter is how long a replaced key stays published so the tokens
	// it signed still verify; then its file is deleted. It must exceed the
	// lifetime of any token the ring signs plus the verifiers' leeway
	// (default AccessTokenTTL + 1h).
	RetireAfter time.Duration
	// CheckEvery is how often Run checks whether rotation is due
	// (DefaultKeyCheckEvery).
	CheckEvery time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (c KeyRingConfig) withDefaults() KeyRingConfig {
	if c.AccessTokenTTL == 0 {
		c.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if c.RotationPeriod == 0 {
		c.RotationPeriod = DefaultRotationPeriod
	}
	if c.RetireAfter == 0 {
		c.RetireAfter = c.AccessTokenTTL + defaultRetireMargin
	}
	if c.CheckEvery == 0 {
		c.CheckEvery = DefaultKeyCheckEvery
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports what is missing or inconsistent.
func (c KeyRingConfig) Validate() error {
	c = c.withDefaults()
	var problems []string
	if c.Dir == "" {
		problems = append(problems, "key directory is required")
	}
	if c.Issuer == "" || c.Audience == "" {
		problems = append(problems, "issuer and audience are required")
	}
	if c.AccessTokenTTL < time.Minute || c.AccessTokenTTL > 24*time.Hour {
		problems = append(problems, "access token TTL must be between 1m and 24h")
	}
	if c.RotationPeriod < time.Hour {
		problems = append(problems, "rotation period must be at least 1h")
	}
	if c.RetireAfter < c.AccessTokenTTL+authn.MaxLeeway {
		problems = append(problems, "retire-after must exceed the access token TTL plus the verifiers' leeway")
	}
	if c.CheckEvery <= 0 {
		problems = append(problems, "check interval must be positive")
	}
	if len(problems) > 0 {
		return fmt.Errorf("key ring config: %s", strings.Join(problems, "; "))
	}
	return nil
}

// signingKey is one ES256 key of the ring.
type signingKey struct {
	kid     string
	created time.Time
	priv    *ecdsa.PrivateKey
	path    string
	access  jose.Signer // typ at+jwt
	generic jose.Signer // typ JWT
}

// KeyRing holds the auth service's token signing keys: it signs with the
// newest, publishes the newest and the recently replaced ones as a JWKS, and
// rotates on a schedule. It is safe for concurrent use.
type KeyRing struct {
	cfg KeyRingConfig
	log *slog.Logger

	mu   sync.RWMutex
	keys []*signingKey // oldest first
}

// OpenKeyRing loads the keys in cfg.Dir, creating the directory and a first
// key when there is none, then rotates or retires keys if due (a failed
// rotation with a key to sign with is logged, not fatal). Key files
// readable by group or others, unparseable, or not P-256 are refused: the
// ring does not start on keys it cannot trust.
func OpenKeyRing(cfg KeyRingConfig, log *slog.Logger) (*KeyRing, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &KeyRing{cfg: cfg.withDefaults(), log: log}
	if err := os.MkdirAll(k.cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("open key ring: %w", err)
	}
	keys, err := loadKeys(k.cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("open key ring: %w", err)
	}
	k.keys = keys
	if _, err := k.RotateIfDue(k.cfg.Now()); err != nil {
		if len(k.keys) == 0 {
			return nil, fmt.Errorf("open key ring: %w", err)
		}
		// An overdue rotation is no reason not to start: the old key still
		// signs, and Run retries.
		log.Error("signing key rotation failed", "err", err)
	}
	return k, nil
}

func loadKeys(dir string) ([]*signingKey, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read key directory: %w", err)
	}
	var keys []*signingKey
	seen := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if ok, _ := filepath.Match(keyTempPattern, name); ok {
			// Left by a crash between write and rename; never a live key.
			_ = os.Remove(filepath.Join(dir, name))
			continue
		}
		if e.IsDir() || !strings.HasSuffix(name, keyFileExt) {
			continue
		}
		key, err := loadKeyFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if seen[key.kid] {
			continue
		}
		seen[key.kid] = true
		keys = append(keys, key)
	}
	sortKeys(keys)
	return keys, nil
}

func sortKeys(keys []*signingKey) {
	slices.SortStableFunc(keys, func(a, b *signingKey) int {
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		return strings.Compare(a.kid, b.kid)
	})
}

func loadKeyFile(path string) (*signingKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("load key %s: not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("load key %s: mode %04o lets others read it; chmod 600 it", path, perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != keyPEMType || len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("load key %s: want one %q PEM block", path, keyPEMType)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("load key %s: not a P-256 ECDSA key", path)
	}
	created := info.ModTime()
	if v, ok := block.Headers[keyCreatedField]; ok {
		if created, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return nil, fmt.Errorf("load key %s: bad %s header: %w", path, keyCreatedField, err)
		}
	}
	return newSigningKey(priv, created, path)
}

func newSigningKey(priv *ecdsa.PrivateKey, created time.Time, path string) (*signingKey, error) {
	kid, err := keyID(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	jwk := jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: string(SigningAlgorithm), Use: "sig"}
	access, err := jose.NewSigner(jose.SigningKey{Algorithm: SigningAlgorithm, Key: jwk},
		(&jose.SignerOptions{}).WithType(authn.AccessTokenType))
	if err != nil {
		return nil, fmt.Errorf("new signer: %w", err)
	}
	generic, err := jose.NewSigner(jose.SigningKey{Algorithm: SigningAlgorithm, Key: jwk},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("new signer: %w", err)
	}
	return &signingKey{kid: kid, created: created.UTC(), priv: priv, path: path, access: access, generic: generic}, nil
}

// keyID is the RFC 7638 SHA-256 thumbprint of the public key, base64url.
func keyID(pub *ecdsa.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// writeKeyFile stores priv as <dir>/<kid>.pem, mode 0600, atomically: a
// crash leaves either no file or a complete one.
func writeKeyFile(dir string, key *signingKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key.priv)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{
		Type:    keyPEMType,
		Headers: map[string]string{keyCreatedField: key.created.Format(time.RFC3339Nano)},
		Bytes:   der,
	})
	f, err := os.CreateTemp(dir, keyTempPattern) // created 0600
	if err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write key: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if err := os.Rename(tmp, key.path); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable where the OS allows
		d.Close()
	}
	return nil
}

// Rotate creates a new signing key stamped now, makes it the one that signs,
// and retires keys replaced more than RetireAfter ago (deleting their files).
func (k *KeyRing) Rotate(now time.Time) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.rotateLocked(now)
}

func (k *KeyRing) rotateLocked(now time.Time) error {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("rotate: generate key: %w", err)
	}
	key, err := newSigningKey(priv, now, "")
	if err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	key.path = filepath.Join(k.cfg.Dir, key.kid+keyFileExt)
	if err := writeKeyFile(k.cfg.Dir, key); err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	k.keys = append(k.keys, key)
	sortKeys(k.keys)
	k.log.Info("signing key created", "kid", key.kid)
	return k.retireLocked(now)
}

// RotateIfDue rotates when the newest key is older than RotationPeriod (or
// there is none), and otherwise only retires expired keys. It reports whether
// it rotated.
func (k *KeyRing) RotateIfDue(now time.Time) (rotated bool, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.keys) == 0 || !now.Before(k.keys[len(k.keys)-1].created.Add(k.cfg.RotationPeriod)) {
		return true, k.rotateLocked(now)
	}
	return false, k.retireLocked(now)
}

// retireLocked drops every key whose successor was created at least
// RetireAfter ago: the last token it signed has expired everywhere by then.
func (k *KeyRing) retireLocked(now time.Time) error {
	keep := k.keys[:0:0]
	var firstErr error
	for i, key := range k.keys {
		if i < len(k.keys)-1 && now.Sub(k.keys[i+1].created) >= k.cfg.RetireAfter {
			if err := os.Remove(key.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				// Keep it published rather than lose track of a file on disk.
				firstErr = cmp.Or(firstErr, fmt.Errorf("retire key %s: %w", key.kid, err))
				keep = append(keep, key)
				continue
			}
			k.log.Info("signing key retired", "kid", key.kid)
			continue
		}
		keep = append(keep, key)
	}
	k.keys = keep
	return firstErr
}

// Run checks every CheckEvery whether a key is due for rotation or
// retirement, until ctx ends. Failures are logged and retried on the next
// check; it returns nil when ctx ends.
func (k *KeyRing) Run(ctx context.Context) error {
	t := time.NewTicker(k.cfg.CheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := k.RotateIfDue(k.cfg.Now()); err != nil {
				k.log.ErrorContext(ctx, "signing key rotation failed", "err", err)
			}
		}
	}
}

func (k *KeyRing) current() *signingKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.keys[len(k.keys)-1]
}

// SigningKeyID returns the kid of the key that signs now.
func (k *KeyRing) SigningKeyID() string { return k.current().kid }

// JWKS returns the public halves of the published keys, newest first, each
// with use "sig" and alg "ES256".
func (k *KeyRing) JWKS() jose.JSONWebKeySet {
	k.mu.RLock()
	defer k.mu.RUnlock()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(k.keys))}
	for i := len(k.keys) - 1; i >= 0; i-- {
		key := k.keys[i]
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key:       &key.priv.PublicKey,
			KeyID:     key.kid,
			Algorithm: string(SigningAlgorithm),
			Use:       "sig",
		})
	}
	return set
}

// Keys returns JWKS; it makes the ring an authn.KeySource, so the auth
// service verifies its own tokens without an HTTP round trip.
func (k *KeyRing) Keys(context.Context) (jose.JSONWebKeySet, error) { return k.JWKS(), nil }

// AccessClaims says whom an access token is for.
type AccessClaims struct {
	Subject string   // the user id
	Roles   []string // buyer, seller, admin
	Email   string   // optional
	// ClientID names the OAuth2 client the token was issued to; empty for
	// MallHive's own web and mobile sessions.
	ClientID string
}

type accessTokenClaims struct {
	jwt.Claims
	Roles    []string `json:"roles,omitempty"`
	Email    string   `json:"email,omitempty"`
	ClientID string   `json:"client_id,omitempty"`
}

// IssueAccessToken signs an access token (typ at+jwt) for p with the current
// key: iss, sub, aud, exp, iat, nbf, a UUIDv7 jti, roles and the optional
// email and client_id. It fails when p has no subject.
func (k *KeyRing) IssueAccessToken(p AccessClaims) (token string, expiresAt time.Time, err error) {
	if p.Subject == "" {
		return "", time.Time{}, errors.New("issue access token: no subject")
	}
	jti, err := uuid.NewV7()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issue access token: %w", err)
	}
	now := time.Unix(k.cfg.Now().Unix(), 0).UTC() // NumericDate has whole seconds
	expiresAt = now.Add(k.cfg.AccessTokenTTL)
	claims := accessTokenClaims{
		Claims: jwt.Claims{
			Issuer:    k.cfg.Issuer,
			Subject:   p.Subject,
			Audience:  jwt.Audience{k.cfg.Audience},
			Expiry:    jwt.NewNumericDate(expiresAt),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti.String(),
		},
		Roles:    p.Roles,
		Email:    p.Email,
		ClientID: p.ClientID,
	}
	token, err = jwt.Signed(k.current().access).Claims(claims).Serialize()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issue access token: %w", err)
	}
	return token, expiresAt, nil
}

// Sign signs any JSON-encodable claims with the current key as a JWT of typ
// "JWT", for the OIDC provider's ID tokens (nonce, auth_time, azp, at_hash
// are the caller's). The claims must hold an exp that expires before the
// signing key can be retired; anything else is refused.
func (k *KeyRing) Sign(claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	var exp struct {
		Expiry *jwt.NumericDate `json:"exp"`
	}
	if err := json.Unmarshal(payload, &exp); err != nil {
		return "", fmt.Errorf("sign: claims must be a JSON object with a numeric exp: %w", err)
	}
	if exp.Expiry == nil {
		return "", errors.New("sign: claims have no exp")
	}
	if latest := k.cfg.Now().Add(k.cfg.RetireAfter - authn.MaxLeeway); exp.Expiry.Time().After(latest) {
		return "", fmt.Errorf("sign: exp is later than %s, when the signing key may be retired", latest.Format(time.RFC3339))
	}
	jws, err := k.current().generic.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return jws.CompactSerialize()
}

// AtHash returns the OIDC at_hash of an access token for ES256 ID tokens:
// the base64url left half of its SHA-256.
func AtHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// opaqueTokenBytes is the entropy of opaque tokens.
const opaqueTokenBytes = 32

// NewOpaqueToken returns a random token for refresh tokens, email
// verification, password reset and authorization codes: plain (32 random
// bytes, base64url) goes to the user, hash (HashOpaqueToken) is stored.
func NewOpaqueToken() (plain, hash string) {
	b := make([]byte, opaqueTokenBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	plain = base64.RawURLEncoding.EncodeToString(b)
	return plain, HashOpaqueToken(plain)
}

// HashOpaqueToken returns the hex SHA-256 of an opaque token, the form in
// which it is stored and looked up. A plain hash suffices: the tokens carry
// 256 bits of entropy, so there is nothing to brute-force.
func HashOpaqueToken(plain string) string {
	sum := sha256.Sum256([]byte(plain))
	return hex.EncodeToString(sum[:])
}
