// Package auth is MallHive's identity service: accounts and their roles,
// seller profiles, passwords, sign-in sessions (refresh-token families),
// email verification, password reset, two-factor sign-in, login throttling,
// the JWKS of the access-token signing keys, and the internal user lookup.
//
// The files read in this order: auth.go (domain types, configuration, the
// Service and its operations: sessions, sign-up and sign-in, two-factor,
// profile, verification and reset), store.go (SQL, one code path for SQLite
// and PostgreSQL), throttle.go (login throttling and client addresses),
// admin.go (admin operations and the CLI's CreateAdmin), http.go (REST),
// rpc.go (connect), events.go (outbox events). password.go, tokens.go and
// totp.go hold the credential primitives: argon2id hashing, the signing key
// ring, TOTP and recovery codes.
package auth

import (
	"cmp"
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/mail"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/svc"
)

// ServiceName is the service's name: its database, its flag prefix, and its
// events' source ("mallhive/auth").
const ServiceName = "auth"

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations are the auth service's own tables (beside events.Migrations).
var Migrations = sqldb.Embedded(ServiceName, migrationsFS, "migrations")

// Roles an account can hold. Registration gives buyer or seller; admin is
// granted by another admin or by `mallhive users create-admin`.
var allRoles = []string{authn.RoleBuyer, authn.RoleSeller, authn.RoleAdmin}

// User is an account. Email is normalised (trimmed, lower-case). Seller is
// set when the account has a shop; TOTPEnabled when two-factor sign-in is on.
type User struct {
	ID            string
	Email         string
	Name          string
	Phone         string
	Roles         []string
	Disabled      bool
	EmailVerified bool
	Addresses     []Address
	Seller        *SellerProfile
	TOTPEnabled   bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// HasRole reports whether the user holds role r.
func (u User) HasRole(r string) bool { return slices.Contains(u.Roles, r) }

// SellerProfile is a seller's shop as buyers see it.
type SellerProfile struct {
	StoreName string    `json:"store_name"`
	Slug      string    `json:"slug"`
	CreatedAt time.Time `json:"-"`
}

// Address is one entry of a user's shipping book. Country is an ISO 3166-1
// alpha-2 code.
type Address struct {
	Label      string `json:"label,omitempty"`
	Name       string `json:"name"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city"`
	Region     string `json:"region,omitempty"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
	Phone      string `json:"phone,omitempty"`
	Default    bool   `json:"default,omitempty"`
}

// Family is one sign-in session: the chain of refresh tokens issued from one
// login. ClientID is "" for MallHive's own apps and the OAuth2 client id
// otherwise; AuthTime is when the user last presented a credential.
type Family struct {
	ID            string
	UserID        string
	ClientID      string
	Scope         string
	AuthTime      time.Time
	CreatedAt     time.Time
	ExpiresAt     time.Time
	LastUsedAt    time.Time
	RevokedAt     *time.Time
	RevokedReason string
}

// Active reports whether the family can still mint tokens at now.
func (f Family) Active(now time.Time) bool { return f.RevokedAt == nil && now.Before(f.ExpiresAt) }

// RefreshToken is one link of a family; only its hash is stored. UsedAt is
// set once it has been exchanged: presenting it again is reuse.
type RefreshToken struct {
	Hash      string
	FamilyID  string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// Purpose says what a one-time token is for.
type Purpose string

// The purposes of one-time tokens.
const (
	PurposeVerifyEmail   Purpose = "verify_email"
	PurposePasswordReset Purpose = "password_reset"
	// PurposeMFALogin is a sign-in that passed the password and owes a
	// second factor.
	PurposeMFALogin Purpose = "mfa_login"
	// PurposeMFAEnroll is an admin's sign-in that passed the password but
	// must enrol TOTP before it can get tokens.
	PurposeMFAEnroll Purpose = "mfa_enroll"
)

// OneTimeToken is a single-use, expiring secret; only its hash is stored.
type OneTimeToken struct {
	Hash      string
	UserID    string
	Purpose   Purpose
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
	Attempts  int
}

// TOTPState is a user's authenticator secret. Enabled is false while an
// enrolment waits for its first code; LastStep is the highest time step
// accepted, so a code is never accepted twice.
type TOTPState struct {
	Secret   string
	Enabled  bool
	LastStep int64
}

// UserFilter selects users for the admin list. Email matches a substring of
// the address; Cursor is the NextCursor of the previous page.
type UserFilter struct {
	Role   string
	Email  string
	Cursor string
	Limit  int
}

// Config configures the auth service. Zero values take the defaults of
// DefaultConfig; Issuer and KeysDir default from the process's Env.
type Config struct {
	// AccessTTL is the life of an access token, and so the longest a
	// disabled user's tokens keep working elsewhere.
	AccessTTL time.Duration
	// RefreshTTL is the absolute life of a sign-in session.
	RefreshTTL time.Duration
	// Issuer is the iss of access tokens; Env.PublicURL when empty.
	Issuer string
	// Audience is the aud of access tokens.
	Audience string
	// KeysDir holds the signing keys; <DataDir>/auth/keys when empty.
	KeysDir string
	// KeyRotation is how often a new signing key is made.
	KeyRotation time.Duration
	// HashConcurrency caps simultaneous argon2id hashes (0: one per CPU).
	HashConcurrency int
	// RequireAdmin2FA makes admins enrol TOTP before they get tokens.
	RequireAdmin2FA bool
	// VerifyEmailTTL, ResetTTL and MFATTL are the lives of the emailed
	// verification and reset links and of a pending second-factor sign-in.
	VerifyEmailTTL time.Duration
	ResetTTL       time.Duration
	MFATTL         time.Duration
	// Throttle tunes login throttling (see throttle.go).
	Throttle ThrottleConfig
	// OIDC configures sign-in with an external provider (see oidc.go).
	OIDC OIDCConfig
}

// DefaultConfig returns the defaults; RegisterFlags starts from them.
func DefaultConfig() Config {
	return Config{
		AccessTTL:       10 * time.Minute,
		RefreshTTL:      30 * 24 * time.Hour,
		Audience:        "mallhive",
		KeyRotation:     30 * 24 * time.Hour,
		RequireAdmin2FA: true,
		VerifyEmailTTL:  48 * time.Hour,
		ResetTTL:        time.Hour,
		MFATTL:          5 * time.Minute,
		Throttle:        DefaultThrottleConfig(),
	}
}

// RegisterFlags registers the configuration under the "auth." prefix, with
// the defaults of DefaultConfig.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.DurationVar(&c.AccessTTL, "auth.access-ttl", d.AccessTTL, "life of an access token (and the longest a disabled user's tokens keep working)")
	fs.DurationVar(&c.RefreshTTL, "auth.refresh-ttl", d.RefreshTTL, "absolute life of a sign-in session (refresh-token family)")
	fs.StringVar(&c.Issuer, "auth.issuer", "", "iss of access tokens (default: the public URL)")
	fs.StringVar(&c.Audience, "auth.audience", d.Audience, "aud of access tokens")
	fs.StringVar(&c.KeysDir, "auth.keys-dir", "", "directory of the token signing keys (default: <data-dir>/auth/keys)")
	fs.DurationVar(&c.KeyRotation, "auth.key-rotation", d.KeyRotation, "how often a new signing key is made")
	fs.IntVar(&c.HashConcurrency, "auth.hash-concurrency", 0, "most argon2id password hashes at once (0: one per CPU)")
	fs.BoolVar(&c.RequireAdmin2FA, "auth.require-admin-2fa", d.RequireAdmin2FA, "admins must enrol TOTP before they get tokens")
	fs.DurationVar(&c.VerifyEmailTTL, "auth.verify-email-ttl", d.VerifyEmailTTL, "life of an email verification link")
	fs.DurationVar(&c.ResetTTL, "auth.password-reset-ttl", d.ResetTTL, "life of a password reset link")
	fs.DurationVar(&c.MFATTL, "auth.mfa-ttl", d.MFATTL, "time to complete a two-factor sign-in")
	c.Throttle.RegisterFlags(fs)
	c.OIDC.RegisterFlags(fs)
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.AccessTTL == 0 {
		c.AccessTTL = d.AccessTTL
	}
	if c.RefreshTTL == 0 {
		c.RefreshTTL = d.RefreshTTL
	}
	if c.Audience == "" {
		c.Audience = d.Audience
	}
	if c.KeyRotation == 0 {
		c.KeyRotation = d.KeyRotation
	}
	if c.VerifyEmailTTL == 0 {
		c.VerifyEmailTTL = d.VerifyEmailTTL
	}
	if c.ResetTTL == 0 {
		c.ResetTTL = d.ResetTTL
	}
	if c.MFATTL == 0 {
		c.MFATTL = d.MFATTL
	}
	c.Throttle = c.Throttle.withDefaults()
	return c
}

// Validate reports every problem with the configuration at once; zero
// fields stand for their defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	var problems []string
	check := func(ok bool, msg string) {
		if !ok {
			problems = append(problems, msg)
		}
	}
	check(c.AccessTTL >= time.Minute && c.AccessTTL <= time.Hour, "access token TTL must be between 1m and 1h")
	check(c.RefreshTTL >= time.Hour && c.RefreshTTL <= 365*24*time.Hour, "refresh token TTL must be between 1h and 365 days")
	check(c.RefreshTTL > c.AccessTTL, "refresh token TTL must be longer than the access token TTL")
	check(c.Issuer == "" || strings.HasPrefix(c.Issuer, "https://") || strings.HasPrefix(c.Issuer, "http://"), "issuer must be an http(s) URL")
	check(c.Audience != "", "audience is required")
	// The previous key stays published until its tokens expire, so a
	// rotation period shorter than a few token lives would pile keys up.
	check(c.KeyRotation >= time.Hour, "key rotation period must be at least 1h")
	check(c.HashConcurrency >= 0 && c.HashConcurrency <= 1024, "hash concurrency must be between 0 and 1024")
	check(c.VerifyEmailTTL >= time.Minute && c.VerifyEmailTTL <= 30*24*time.Hour, "verify-email TTL must be between 1m and 30 days")
	check(c.ResetTTL >= time.Minute && c.ResetTTL <= 24*time.Hour, "password reset TTL must be between 1m and 24h")
	check(c.MFATTL >= 30*time.Second && c.MFATTL <= time.Hour, "MFA TTL must be between 30s and 1h")
	if err := c.Throttle.Validate(); err != nil {
		problems = append(problems, err.Error())
	}
	if err := c.OIDC.Validate(); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return fmt.Errorf("auth config: %s", strings.Join(problems, "; "))
	}
	return nil
}

// ---- domain rules ----

// Bounds of profile fields, in characters.
const (
	MaxEmailLen      = 254
	MaxNameLen       = 100
	MaxStoreNameLen  = 80
	MaxAddresses     = 10
	maxAddressField  = 200
	maxPhoneLen      = 32
	minPhoneDigits   = 6
	maxPhoneDigits   = 15
	maxSlugLen       = 60
	maxRolesInUpdate = 3
)

// NormalizeEmail trims and lower-cases an address. Lower-casing the local
// part is technically lossy, but no real mail provider distinguishes case,
// and one account per spelling would be worse.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// CheckEmail reports whether a normalised address is acceptable: a bare
// addr-spec (no display name), at most MaxEmailLen characters.
func CheckEmail(email string) error {
	if email == "" {
		return errs.Field("email", "is required")
	}
	if len(email) > MaxEmailLen {
		return errs.Field("email", fmt.Sprintf("must be at most %d characters", MaxEmailLen))
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" || strings.ContainsAny(email, " \t\r\n<>\"") {
		return errs.Field("email", "must be an email address such as ana@example.com")
	}
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" || domain == "" || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return errs.Field("email", "must be an email address such as ana@example.com")
	}
	return nil
}

// checkText validates a required or optional single-line text field.
func checkText(f errs.Fields, field, v string, required bool, maxLen int) {
	if v == "" {
		f.Check(!required, field, "is required")
		return
	}
	if !utf8.ValidString(v) {
		f.Add(field, "must be valid text")
		return
	}
	if utf8.RuneCountInString(v) > maxLen {
		f.Add(field, fmt.Sprintf("must be at most %d characters", maxLen))
		return
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			f.Add(field, "must not contain control characters")
			return
		}
	}
}

// checkPhone accepts international numbers as people type them: digits,
// spaces, dashes, dots and parentheses, an optional leading "+", 6 to 15
// digits in all.
func checkPhone(f errs.Fields, field, v string) {
	if v == "" {
		return
	}
	if len(v) > maxPhoneLen {
		f.Add(field, fmt.Sprintf("must be at most %d characters", maxPhoneLen))
		return
	}
	digits := 0
	for i, r := range v {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0, r == ' ', r == '-', r == '.', r == '(', r == ')':
		default:
			f.Add(field, "must be a phone number such as +44 20 7946 0958")
			return
		}
	}
	f.Check(digits >= minPhoneDigits && digits <= maxPhoneDigits, field, "must be a phone number such as +44 20 7946 0958")
}

// checkAddresses validates a whole shipping book, with problems named by
// index ("addresses[1].city").
func checkAddresses(f errs.Fields, addrs []Address) {
	if len(addrs) > MaxAddresses {
		f.Add("addresses", fmt.Sprintf("at most %d addresses", MaxAddresses))
		return
	}
	defaults := 0
	for i, a := range addrs {
		p := fmt.Sprintf("addresses[%d].", i)
		checkText(f, p+"label", a.Label, false, 40)
		checkText(f, p+"name", a.Name, true, MaxNameLen)
		checkText(f, p+"line1", a.Line1, true, maxAddressField)
		checkText(f, p+"line2", a.Line2, false, maxAddressField)
		checkText(f, p+"city", a.City, true, 100)
		checkText(f, p+"region", a.Region, false, 100)
		checkText(f, p+"postal_code", a.PostalCode, false, 20)
		f.Check(len(a.Country) == 2 && isUpperASCII(a.Country), p+"country", "must be an ISO 3166-1 alpha-2 code such as GB")
		checkPhone(f, p+"phone", a.Phone)
		if a.Default {
			defaults++
		}
	}
	f.Check(defaults <= 1, "addresses", "at most one address can be the default")
}

func isUpperASCII(s string) bool {
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// trimAddresses trims every field and upper-cases country codes.
func trimAddresses(addrs []Address) []Address {
	out := make([]Address, len(addrs))
	for i, a := range addrs {
		out[i] = Address{
			Label: strings.TrimSpace(a.Label), Name: strings.TrimSpace(a.Name),
			Line1: strings.TrimSpace(a.Line1), Line2: strings.TrimSpace(a.Line2),
			City: strings.TrimSpace(a.City), Region: strings.TrimSpace(a.Region),
			PostalCode: strings.TrimSpace(a.PostalCode), Country: strings.ToUpper(strings.TrimSpace(a.Country)),
			Phone: strings.TrimSpace(a.Phone), Default: a.Default,
		}
	}
	return out
}

// checkRoles validates a role set given by an admin.
func checkRoles(f errs.Fields, roles []string) {
	if len(roles) == 0 {
		f.Add("roles", "at least one role is required")
		return
	}
	if len(roles) > maxRolesInUpdate {
		f.Add("roles", "too many roles")
		return
	}
	for _, r := range roles {
		if !slices.Contains(allRoles, r) {
			f.Add("roles", fmt.Sprintf("unknown role %q: use buyer, seller or admin", r))
			return
		}
	}
}

// sortRoles returns roles deduplicated, in the order buyer, seller, admin.
func sortRoles(roles []string) []string {
	out := make([]string, 0, len(roles))
	for _, r := range allRoles {
		if slices.Contains(roles, r) {
			out = append(out, r)
		}
	}
	return out
}

// slugify makes a URL-safe shop address from a store name: lower-case ASCII
// letters and digits separated by single dashes; "store" when nothing is
// left (a name in a non-Latin script).
func slugify(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
		if b.Len() >= maxSlugLen {
			break
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > maxSlugLen {
		s = strings.Trim(s[:maxSlugLen], "-")
	}
	if s == "" {
		return "store"
	}
	return s
}

func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Cursors are opaque to clients: base64url of the last id of a page.
func encodeCursor(lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(lastID))
}

func decodeCursor(c string) (string, error) {
	if len(c) > 128 {
		return "", errs.Field("cursor", "is not a cursor from this list")
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", errs.Field("cursor", "is not a cursor from this list")
	}
	if _, err := uuid.Parse(string(b)); err != nil {
		return "", errs.Field("cursor", "is not a cursor from this list")
	}
	return string(b), nil
}

// newID returns a fresh UUIDv7.
func newID() string { return uuid.Must(uuid.NewV7()).String() }

// validID reports whether s looks like one of our ids, so junk never
// reaches a query.
func validID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// ---- the service ----

// Service is the auth service. It implements svc.Service.
type Service struct {
	cfg    Config
	log    *slog.Logger
	db     *sqldb.DB
	store  *Store
	hasher *Hasher
	keys   *KeyRing
	bus    *events.Bus
	relay  *events.Relay
	// rpcOpts build the connect handler (the process's shared interceptors).
	rpcOpts []connect.HandlerOption
	// now is the clock; tests replace it.
	now func() time.Time
}

var _ svc.Service = (*Service)(nil)

// New opens the auth database (migrating it), the signing key ring and the
// password hasher. Empty Issuer and KeysDir default to env.PublicURL and
// <env.DataDir>/auth/keys.
func New(ctx context.Context, env *svc.Env, cfg Config) (*Service, error) {
	cfg, err := resolveConfig(env, cfg)
	if err != nil {
		return nil, err
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("service", ServiceName)
	s := &Service{cfg: cfg, log: log, bus: env.Bus, rpcOpts: env.RPCHandlerOptions, now: time.Now}

	if s.hasher, err = NewHasher(HasherConfig{MaxConcurrent: cfg.HashConcurrency}); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	s.keys, err = OpenKeyRing(KeyRingConfig{
		Dir:            cfg.KeysDir,
		Issuer:         cfg.Issuer,
		Audience:       cfg.Audience,
		AccessTokenTTL: cfg.AccessTTL,
		RotationPeriod: cfg.KeyRotation,
		Now:            func() time.Time { return s.now() },
	}, log)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if env.DB == nil {
		return nil, errors.New("auth: the environment has no database")
	}
	if s.db, err = env.DB(ctx, ServiceName); err != nil {
		return nil, fmt.Errorf("auth: open database: %w", err)
	}
	if err := s.db.Migrate(ctx, events.Migrations, Migrations); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("auth: %w", err)
	}
	s.store = NewStore(s.db)
	if env.Bus != nil {
		s.relay = events.NewRelay(ServiceName, s.db, env.Bus, log, env.RelayMetrics)
	}
	return s, nil
}

// resolveConfig fills defaults, derives what comes from the environment and
// validates.
func resolveConfig(env *svc.Env, cfg Config) (Config, error) {
	cfg = cfg.withDefaults()
	if cfg.Issuer == "" {
		cfg.Issuer = strings.TrimSuffix(env.PublicURL, "/")
	}
	if cfg.Issuer == "" {
		return cfg, errors.New("auth config: no issuer: set auth.issuer or the public URL")
	}
	if cfg.KeysDir == "" {
		if env.DataDir == "" {
			return cfg, errors.New("auth config: no keys dir: set auth.keys-dir or the data dir")
		}
		cfg.KeysDir = filepath.Join(env.DataDir, "auth", "keys")
	}
	cfg.OIDC = cfg.OIDC.withDefaults(cmp.Or(env.PublicURL, cfg.Issuer))
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Config returns the effective configuration.
func (s *Service) Config() Config { return s.cfg }

// Store returns the service's store.
func (s *Service) Store() *Store { return s.store }

// KeyRing returns the token signing keys.
func (s *Service) KeyRing() *KeyRing { return s.keys }

// Hasher returns the password hasher.
func (s *Service) Hasher() *Hasher { return s.hasher }

// Run publishes the outbox, rotates signing keys when due and sweeps expired
// state until ctx ends; then it flushes the outbox and returns nil.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if s.relay != nil {
		wg.Go(func() { s.relay.Run(ctx) })
	}
	wg.Go(func() { _ = s.keys.Run(ctx) })
	wg.Go(func() { s.sweep(ctx) })
	wg.Wait()
	return nil
}

const sweepEvery = 10 * time.Minute

func (s *Service) sweep(ctx context.Context) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := s.now()
			if n, err := s.store.Sweep(ctx, now, now.Add(-s.cfg.Throttle.Window)); err != nil {
				if ctx.Err() == nil {
					s.log.WarnContext(ctx, "sweep", "err", err)
				}
			} else if n > 0 {
				s.log.DebugContext(ctx, "swept expired state", "rows", n)
			}
		}
	}
}

// kickRelay publishes freshly committed events without waiting for the
// relay's next tick.
func (s *Service) kickRelay() {
	if s.relay != nil {
		s.relay.Kick()
	}
}

// Ready reports whether the database and the event bus answer.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.db.Ping(ctx); err != nil {
		return fmt.Errorf("auth database: %w", err)
	}
	if s.bus != nil {
		if err := s.bus.Ping(ctx); err != nil {
			return fmt.Errorf("auth events: %w", err)
		}
	}
	return nil
}

// Close closes the database.
func (s *Service) Close() error { return s.db.Close() }

// ---- sessions ----

// TokenPair is what a successful sign-in or refresh hands out.
type TokenPair struct {
	AccessToken     string
	AccessExpiresAt time.Time
	RefreshToken    string
	// ExpiresIn is the access token's life in seconds.
	ExpiresIn int64
	// FamilyID names the session the refresh token belongs to.
	FamilyID string
}

// SessionOptions describe the session IssueTokens starts.
type SessionOptions struct {
	// ClientID is the OAuth2 client ("" for MallHive's own apps); Refresh
	// then only accepts the family's tokens from the same client.
	ClientID string
	Scope    string
	// AuthTime is when the user proved a credential (now when zero).
	AuthTime time.Time
}

// IssueTokens starts a session for u: a new refresh-token family with its
// first token, and an access token. It must not be called for a disabled
// user (errs.Forbidden).
func (s *Service) IssueTokens(ctx context.Context, u User, opt SessionOptions) (TokenPair, error) {
	var pair TokenPair
	err := s.store.InTx(ctx, func(q *Queries) error {
		var err error
		pair, err = s.startSession(ctx, q, u, opt)
		return err
	})
	return pair, err
}

// startSession is IssueTokens inside the caller's transaction.
func (s *Service) startSession(ctx context.Context, q *Queries, u User, opt SessionOptions) (TokenPair, error) {
	if u.Disabled {
		return TokenPair{}, errs.E(errs.Forbidden, "this account is disabled")
	}
	now := s.now()
	if opt.AuthTime.IsZero() {
		opt.AuthTime = now
	}
	f := Family{ID: newID(), UserID: u.ID, ClientID: opt.ClientID, Scope: opt.Scope, AuthTime: opt.AuthTime,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTTL), LastUsedAt: now}
	if err := q.CreateFamily(ctx, f); err != nil {
		return TokenPair{}, err
	}
	return s.mintPair(ctx, q, u, f)
}

// mintPair adds a refresh token to family f and signs an access token.
func (s *Service) mintPair(ctx context.Context, q *Queries, u User, f Family) (TokenPair, error) {
	now := s.now()
	plain, hash := NewOpaqueToken()
	if err := q.AddRefreshToken(ctx, RefreshToken{Hash: hash, FamilyID: f.ID, CreatedAt: now, ExpiresAt: f.ExpiresAt}); err != nil {
		return TokenPair{}, err
	}
	access, exp, err := s.keys.IssueAccessToken(AccessClaims{Subject: u.ID, Roles: u.Roles, ClientID: f.ClientID})
	if err != nil {
		return TokenPair{}, fmt.Errorf("start session: %w", err)
	}
	return TokenPair{AccessToken: access, AccessExpiresAt: exp, RefreshToken: plain,
		ExpiresIn: int64(s.cfg.AccessTTL / time.Second), FamilyID: f.ID}, nil
}

// Why a session ended, as recorded in refresh_families.revoked_reason.
const (
	revokedLogout         = "logout"
	revokedReuse          = "refresh_token_reuse"
	revokedPasswordChange = "password_changed"
	revokedPasswordReset  = "password_reset"
	revokedDisabled       = "user_disabled"
	revokedNeeds2FA       = "admin_requires_2fa"
)

var errBadRefresh = errs.E(errs.Unauthenticated, "the refresh token is invalid or expired; sign in again")

// Refresh exchanges a refresh token for a new pair. The presented token is
// spent; presenting a spent token again (a sign that it was stolen) revokes
// its whole family. clientID must be the family's client ("" for first
// party). The user's current roles go into the new access token.
//
// It returns an errs.Unauthenticated error for an unknown, spent, expired or
// revoked token, a disabled user, another client's token, and an admin who
// must enrol two-factor sign-in first.
func (s *Service) Refresh(ctx context.Context, refreshToken, clientID string) (TokenPair, User, error) {
	if refreshToken == "" || len(refreshToken) > 256 {
		return TokenPair{}, User{}, errBadRefresh
	}
	hash := HashOpaqueToken(refreshToken)
	var (
		pair    TokenPair
		u       User
		failure error // a refusal that must still commit what it revoked
	)
	err := s.store.InTx(ctx, func(q *Queries) error {
		now := s.now()
		t, f, err := q.RefreshToken(ctx, hash)
		if errs.Is(err, errs.NotFound) {
			failure = errBadRefresh
			return nil
		}
		if err != nil {
			return err
		}
		if f.ClientID != clientID {
			// Not revoked: the caller may simply have mixed up its tokens,
			// and did not prove it holds this client's session.
			failure = errBadRefresh
			return nil
		}
		if !f.Active(now) || !now.Before(t.ExpiresAt) {
			failure = errBadRefresh
			return nil
		}
		spent, err := q.SpendRefreshToken(ctx, hash, now)
		if err != nil {
			return err
		}
		if !spent {
			if _, err := q.RevokeFamily(ctx, f.ID, revokedReuse, now); err != nil {
				return err
			}
			s.log.WarnContext(ctx, "refresh token reused: session revoked", "user_id", f.UserID, "family_id", f.ID)
			failure = errs.E(errs.Unauthenticated, "this refresh token was already used; the session has been ended for safety, sign in again")
			return nil
		}
		if u, err = q.UserByID(ctx, f.UserID); err != nil {
			return err
		}
		if u.Disabled {
			if _, err := q.RevokeFamily(ctx, f.ID, revokedDisabled, now); err != nil {
				return err
			}
			failure = errBadRefresh
			return nil
		}
		if s.needsEnrollment(u) {
			if _, err := q.RevokeFamily(ctx, f.ID, revokedNeeds2FA, now); err != nil {
				return err
			}
			failure = errs.E(errs.Unauthenticated, "administrators must set up two-factor sign-in; sign in again")
			return nil
		}
		if err := q.TouchFamily(ctx, f.ID, now); err != nil {
			return err
		}
		pair, err = s.mintPair(ctx, q, u, f)
		return err
	})
	if err != nil {
		return TokenPair{}, User{}, fmt.Errorf("refresh: %w", err)
	}
	if failure != nil {
		return TokenPair{}, User{}, failure
	}
	return pair, u, nil
}

// Logout ends the session of a refresh token, spent or not. Unknown tokens
// are ignored: logging out twice is not an error.
func (s *Service) Logout(ctx context.Context, refreshToken string) error {
	if refreshToken == "" || len(refreshToken) > 256 {
		return nil
	}
	return s.store.InTx(ctx, func(q *Queries) error {
		_, f, err := q.RefreshToken(ctx, HashOpaqueToken(refreshToken))
		if errs.Is(err, errs.NotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("logout: %w", err)
		}
		_, err = q.RevokeFamily(ctx, f.ID, revokedLogout, s.now())
		return err
	})
}

// needsEnrollment reports whether u may not get tokens before enrolling TOTP.
func (s *Service) needsEnrollment(u User) bool {
	return s.cfg.RequireAdmin2FA && u.HasRole(authn.RoleAdmin) && !u.TOTPEnabled
}

// ---- registration and sign-in ----

// Registration is a sign-up request.
type Registration struct {
	Email     string
	Password  string
	Name      string
	Role      string // buyer (default) or seller
	StoreName string // required for sellers
}

func (r *Registration) normalize() {
	r.Email = NormalizeEmail(r.Email)
	r.Name = strings.TrimSpace(r.Name)
	r.Role = strings.TrimSpace(r.Role)
	r.StoreName = strings.TrimSpace(r.StoreName)
	if r.Role == "" {
		r.Role = authn.RoleBuyer
	}
}

func (r Registration) validate() error {
	f := errs.Fields{}
	if err := CheckEmail(r.Email); err != nil {
		f.Add("email", err.(*errs.Error).Fields["email"])
	}
	checkText(f, "name", r.Name, true, MaxNameLen)
	switch r.Role {
	case authn.RoleBuyer:
		f.Check(r.StoreName == "", "store_name", "only sellers have a store")
	case authn.RoleSeller:
		checkText(f, "store_name", r.StoreName, true, MaxStoreNameLen)
	default:
		f.Add("role", `must be "buyer" or "seller"`)
	}
	if r.Password == "" {
		f.Add("password", "is required")
	} else if err := CheckPassword(r.Password, r.Email, r.Name); err != nil {
		var e *errs.Error
		if !errors.As(err, &e) || e.Fields == nil {
			return err
		}
		f.Add("password", e.Fields["password"])
	}
	return f.Err()
}

// Register creates an account and sends (through events) the welcome and
// the email verification link.
//
// To reveal nothing about which emails are registered, registering an
// existing email answers exactly like a new one: the same work is done (the
// password is hashed, the insert attempted) and a user-shaped result with
// a fresh id comes back, but nothing is stored and no event is emitted. The
// owner of the address is not told (a "someone tried to register with your
// address" mail needs an event type the events proto does not have yet).
// Errors: errs.Invalid for bad fields.
func (s *Service) Register(ctx context.Context, in Registration) (User, error) {
	in.normalize()
	if err := in.validate(); err != nil {
		return User{}, err
	}
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return User{}, err
	}
	now := s.now().UTC()
	u := User{ID: newID(), Email: in.Email, Name: in.Name, Roles: []string{in.Role}, Addresses: []Address{},
		CreatedAt: now, UpdatedAt: now}
	if in.Role == authn.RoleSeller {
		u.Seller = &SellerProfile{StoreName: in.StoreName, CreatedAt: now}
	}
	err = s.store.InTx(ctx, func(q *Queries) error {
		if err := q.CreateUser(ctx, &u, hash); err != nil {
			return err
		}
		ev, err := userRegisteredEvent(ctx, u, in.Role)
		if err != nil {
			return err
		}
		if err := q.Enqueue(ctx, ev); err != nil {
			return err
		}
		_, err = s.issueVerification(ctx, q, u)
		return err
	})
	if errors.Is(err, ErrEmailTaken) {
		s.log.InfoContext(ctx, "registration with a registered email answered generically")
		fake := u
		fake.ID = newID()
		if fake.Seller != nil {
			fake.Seller = &SellerProfile{StoreName: in.StoreName, Slug: slugify(in.StoreName), CreatedAt: now}
		}
		return fake, nil
	}
	if err != nil {
		return User{}, fmt.Errorf("register: %w", err)
	}
	s.kickRelay()
	return u, nil
}

// issueVerification stores a new email verification token and enqueues the
// event that mails it; it returns the plain token.
func (s *Service) issueVerification(ctx context.Context, q *Queries, u User) (string, error) {
	now := s.now()
	plain, hash := NewOpaqueToken()
	t := OneTimeToken{Hash: hash, UserID: u.ID, Purpose: PurposeVerifyEmail, CreatedAt: now, ExpiresAt: now.Add(s.cfg.VerifyEmailTTL)}
	if err := q.CreateOneTimeToken(ctx, t); err != nil {
		return "", err
	}
	ev, err := emailVerificationEvent(ctx, u, plain, t.ExpiresAt)
	if err != nil {
		return "", err
	}
	return plain, q.Enqueue(ctx, ev)
}

var errBadCredentials = errs.E(errs.Unauthenticated, "the email or password is wrong")

// Authenticate checks an email and password, with login throttling keyed
// on the email and the client address addr (see throttle.go). Unknown
// emails cost one password hash too, so timing tells nothing.
//
// It returns errs.TooManyRequests while the attempt must wait,
// errs.Unauthenticated for wrong credentials (whether or not the email
// exists), and errs.Forbidden for a disabled account (only once the
// password is right).
func (s *Service) Authenticate(ctx context.Context, email, password, addr string) (User, error) {
	email = NormalizeEmail(email)
	if wait, err := s.throttleWait(ctx, email, addr); err != nil {
		return User{}, err
	} else if wait > 0 {
		return User{}, throttledError(wait)
	}
	u, err := s.store.UserByEmail(ctx, email)
	var hash string
	if err == nil {
		hash, err = s.store.PasswordHash(ctx, u.ID)
	}
	if errs.Is(err, errs.NotFound) {
		if err := s.hasher.Decoy(ctx, password); err != nil {
			return User{}, err
		}
		return User{}, s.failLogin(ctx, email, addr)
	}
	if err != nil {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	ok, rehash, err := s.hasher.Verify(ctx, password, hash)
	if err != nil {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	if !ok {
		return User{}, s.failLogin(ctx, email, addr)
	}
	if err := s.throttleSuccess(ctx, email, addr); err != nil {
		return User{}, err
	}
	if rehash {
		if h, err := s.hasher.Hash(ctx, password); err == nil {
			if err := s.store.SetPassword(ctx, u.ID, h, s.now()); err != nil {
				s.log.WarnContext(ctx, "rehash password", "user_id", u.ID, "err", err)
			}
		}
	}
	if u.Disabled {
		return User{}, errs.E(errs.Forbidden, "this account is disabled")
	}
	return u, nil
}

func (s *Service) failLogin(ctx context.Context, email, addr string) error {
	if err := s.throttleFail(ctx, email, addr); err != nil {
		return err
	}
	return errBadCredentials
}

// LoginResult is the outcome of a password sign-in: tokens, or a challenge
// (MFA) that must be completed first.
type LoginResult struct {
	User   User
	Tokens *TokenPair
	MFA    *MFAChallenge
}

// MFAChallenge asks for a second factor (Enrollment false: complete with
// CompleteMFA) or, for an admin without one, for a TOTP enrolment
// (Enrollment true: StartEnrollment then ConfirmEnrollment). Token is good
// for nothing else, and only for MFATTL.
type MFAChallenge struct {
	Token      string
	Enrollment bool
	Methods    []string
	ExpiresAt  time.Time
}

// Login signs in with a password: see Authenticate for the errors.
//
// A user with TOTP on gets an MFA challenge instead of tokens (complete it
// with CompleteMFA). An admin without TOTP, while RequireAdmin2FA is set,
// gets an enrolment challenge: its token is opaque, lives MFATTL, and is
// accepted only by StartEnrollment and ConfirmEnrollment (POST
// /api/v1/auth/login/mfa/enroll[/confirm]); it is not an access token, so
// it opens no other endpoint. Confirming the enrolment completes the
// sign-in. Refresh likewise refuses an admin who has no TOTP.
func (s *Service) Login(ctx context.Context, email, password, addr string) (LoginResult, error) {
	u, err := s.Authenticate(ctx, email, password, addr)
	if err != nil {
		return LoginResult{}, err
	}
	return s.signIn(ctx, u)
}

func (s *Service) challenge(ctx context.Context, u User, p Purpose) (*MFAChallenge, error) {
	now := s.now()
	plain, hash := NewOpaqueToken()
	t := OneTimeToken{Hash: hash, UserID: u.ID, Purpose: p, CreatedAt: now, ExpiresAt: now.Add(s.cfg.MFATTL)}
	if err := s.store.CreateOneTimeToken(ctx, t); err != nil {
		return nil, err
	}
	ch := &MFAChallenge{Token: plain, ExpiresAt: t.ExpiresAt, Methods: []string{"totp", "recovery_code"}}
	if p == PurposeMFAEnroll {
		ch.Enrollment, ch.Methods = true, []string{"totp"}
	}
	return ch, nil
}

// maxMFAAttempts is how many wrong codes one pending sign-in may try before
// it has to start over with the password.
const maxMFAAttempts = 5

var errBadMFAToken = errs.E(errs.Unauthenticated, "the sign-in has expired or is invalid; sign in again")

// pendingMFA returns the unspent, unexpired token of a pending sign-in.
func (s *Service) pendingMFA(ctx context.Context, q *Queries, plain string, p Purpose) (OneTimeToken, error) {
	if plain == "" || len(plain) > 256 {
		return OneTimeToken{}, errBadMFAToken
	}
	t, err := q.OneTimeToken(ctx, HashOpaqueToken(plain), p)
	if errs.Is(err, errs.NotFound) {
		return OneTimeToken{}, errBadMFAToken
	}
	if err != nil {
		return OneTimeToken{}, err
	}
	if t.UsedAt != nil || !s.now().Before(t.ExpiresAt) || t.Attempts >= maxMFAAttempts {
		return OneTimeToken{}, errBadMFAToken
	}
	return t, nil
}

// wrongCode records a wrong second-factor code: against the pending
// sign-in (which dies after maxMFAAttempts) and in the login throttle, per
// pair and account and in the account's second-factor count.
func (s *Service) wrongCode(ctx context.Context, t OneTimeToken, email, addr string) error {
	n, err := s.store.CountTokenAttempt(ctx, t.Hash)
	if err != nil && !errs.Is(err, errs.NotFound) {
		return err
	}
	if err := s.throttleFail(ctx, email, addr); err != nil {
		return err
	}
	now := s.now()
	if err := s.store.ThrottleFail(ctx, mfaKey(t.UserID), now, now.Add(-s.cfg.Throttle.Window)); err != nil {
		return err
	}
	if n >= maxMFAAttempts {
		return errs.E(errs.Unauthenticated, "too many wrong codes; sign in again")
	}
	return errs.E(errs.Unauthenticated, "the code is wrong or was already used")
}

// CompleteMFA finishes a sign-in that owes a second factor, with either a
// TOTP code (each accepted once) or a recovery code (each usable once).
// It returns errs.Invalid unless exactly one of code and recoveryCode is
// given, errs.Unauthenticated for a bad or expired mfaToken or a wrong code,
// errs.TooManyRequests while the client address must back off.
func (s *Service) CompleteMFA(ctx context.Context, mfaToken, code, recoveryCode, addr string) (LoginResult, error) {
	if (code == "") == (recoveryCode == "") {
		return LoginResult{}, errs.E(errs.Invalid, "send either code or recovery_code")
	}
	if len(code) > 16 || len(recoveryCode) > 32 {
		return LoginResult{}, errs.E(errs.Unauthenticated, "the code is wrong or was already used")
	}
	var (
		res     LoginResult
		pending OneTimeToken
		wrong   bool
	)
	err := s.store.InTx(ctx, func(q *Queries) error {
		var (
			u   User
			err error
		)
		pending, u, err = s.mfaAttempt(ctx, q, mfaToken, PurposeMFALogin, addr)
		res.User = u
		if err != nil {
			return err
		}
		now := s.now()
		if code != "" {
			st, err := q.TOTP(ctx, u.ID)
			if err != nil || !st.Enabled {
				return errBadMFAToken // disabled since the password step
			}
			step, ok := MatchTOTP(st.Secret, code, now)
			if ok {
				ok, err = q.AdvanceTOTPStep(ctx, u.ID, step)
				if err != nil {
					return err
				}
			}
			if !ok {
				wrong = true
				return nil
			}
		} else {
			ok, err := s.useRecoveryCode(ctx, q, u.ID, recoveryCode, now)
			if err != nil {
				return err
			}
			if !ok {
				wrong = true
				return nil
			}
		}
		if spent, err := q.UseOneTimeToken(ctx, pending.Hash, PurposeMFALogin, now); err != nil {
			return err
		} else if !spent {
			return errBadMFAToken
		}
		if u.Disabled {
			return errs.E(errs.Forbidden, "this account is disabled")
		}
		pair, err := s.startSession(ctx, q, u, SessionOptions{AuthTime: pending.CreatedAt})
		if err != nil {
			return err
		}
		res.Tokens = &pair
		return q.ThrottleReset(ctx, mfaKey(u.ID))
	})
	if err != nil {
		return LoginResult{}, err
	}
	if wrong {
		return LoginResult{}, s.wrongCode(ctx, pending, res.User.Email, addr)
	}
	return res, nil
}

// mfaAttempt opens a second-factor step: the pending token of purpose, its
// user, and the throttle check. The user is returned even when the throttle
// refuses, so the caller can name the account.
func (s *Service) mfaAttempt(ctx context.Context, q *Queries, token string, purpose Purpose, addr string) (OneTimeToken, User, error) {
	pending, err := s.pendingMFA(ctx, q, token, purpose)
	if err != nil {
		return pending, User{}, err
	}
	u, err := q.UserByID(ctx, pending.UserID)
	if err != nil {
		return pending, User{}, err
	}
	return pending, u, s.checkMFAThrottle(ctx, u, addr)
}

// checkMFAThrottle refuses a second-factor attempt while the client
// address or the account's second-factor count must back off.
func (s *Service) checkMFAThrottle(ctx context.Context, u User, addr string) error {
	wait, err := s.throttleWait(ctx, u.Email, addr)
	if err != nil {
		return err
	}
	mw, err := s.mfaWait(ctx, u.ID)
	if err != nil {
		return err
	}
	if wait = max(wait, mw); wait > 0 {
		return throttledError(wait)
	}
	return nil
}

// useRecoveryCode spends the matching unspent recovery code of a user.
func (s *Service) useRecoveryCode(ctx context.Context, q *Queries, userID, code string, now time.Time) (bool, error) {
	hashes, err := q.unusedRecoveryHashes(ctx, userID)
	if err != nil {
		return false, err
	}
	i, ok := MatchRecoveryCode(code, hashes)
	if !ok {
		return false, nil
	}
	return q.UseRecoveryCode(ctx, userID, hashes[i], now)
}

// ---- two-factor enrolment ----

// TOTPEnrollment is a secret to put in an authenticator app.
type TOTPEnrollment struct {
	Secret     string
	OTPAuthURL string
}

// totpIssuer names MallHive in authenticator apps.
const totpIssuer = "MallHive"

// StartTOTP begins (or restarts) a TOTP enrolment for a user.
// Errors: errs.NotFound, errs.Conflict when TOTP is already on.
func (s *Service) StartTOTP(ctx context.Context, userID string) (TOTPEnrollment, error) {
	var e TOTPEnrollment
	err := s.store.InTx(ctx, func(q *Queries) error {
		u, err := q.UserByID(ctx, userID)
		if err != nil {
			return err
		}
		e, err = s.startTOTP(ctx, q, u)
		return err
	})
	return e, err
}

func (s *Service) startTOTP(ctx context.Context, q *Queries, u User) (TOTPEnrollment, error) {
	if u.TOTPEnabled {
		return TOTPEnrollment{}, errs.E(errs.Conflict, "two-factor sign-in is already enabled")
	}
	secret, url, err := NewTOTPSecret(totpIssuer, u.Email)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	if err := q.PutPendingTOTP(ctx, u.ID, secret, s.now()); err != nil {
		return TOTPEnrollment{}, err
	}
	return TOTPEnrollment{Secret: secret, OTPAuthURL: url}, nil
}

var errWrongCode = errs.Field("code", "the code is wrong; check the time on your device and try the next code")

// ConfirmTOTP turns a pending enrolment on with a first code and returns
// the recovery codes, shown this once. Errors: errs.Conflict when there is
// no pending enrolment or TOTP is already on, errs.Invalid for a wrong code.
func (s *Service) ConfirmTOTP(ctx context.Context, userID, code string) ([]string, error) {
	var codes []string
	err := s.store.InTx(ctx, func(q *Queries) error {
		var err error
		codes, err = s.confirmTOTP(ctx, q, userID, code)
		return err
	})
	return codes, err
}

func (s *Service) confirmTOTP(ctx context.Context, q *Queries, userID, code string) ([]string, error) {
	st, err := q.TOTP(ctx, userID)
	if errs.Is(err, errs.NotFound) {
		return nil, errs.E(errs.Conflict, "start two-factor enrolment first")
	}
	if err != nil {
		return nil, err
	}
	if st.Enabled {
		return nil, errs.E(errs.Conflict, "two-factor sign-in is already enabled")
	}
	step, ok := MatchTOTP(st.Secret, code, s.now())
	if !ok {
		return nil, errWrongCode
	}
	if on, err := q.EnableTOTP(ctx, userID, step, s.now()); err != nil {
		return nil, err
	} else if !on {
		return nil, errs.E(errs.Conflict, "two-factor sign-in is already enabled")
	}
	plain, hashes := NewRecoveryCodes(DefaultRecoveryCodes)
	if err := q.ReplaceRecoveryCodes(ctx, userID, hashes); err != nil {
		return nil, err
	}
	return plain, nil
}

// DisableTOTP turns two-factor sign-in off; the password is required.
// Errors: errs.Unauthenticated for a wrong password (counted by the
// throttle), errs.Conflict when TOTP is off.
func (s *Service) DisableTOTP(ctx context.Context, userID, password, addr string) error {
	u, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	if err := s.confirmPassword(ctx, u, password, addr, "password"); err != nil {
		return err
	}
	return s.store.InTx(ctx, func(q *Queries) error {
		if _, err := q.TOTP(ctx, userID); errs.Is(err, errs.NotFound) {
			return errs.E(errs.Conflict, "two-factor sign-in is not enabled")
		} else if err != nil {
			return err
		}
		return q.DeleteTOTP(ctx, userID)
	})
}

// RegenerateRecoveryCodes replaces a user's recovery codes, given a current
// TOTP code. Errors: errs.Conflict when TOTP is off, errs.Invalid for a
// wrong or replayed code.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, userID, code string) ([]string, error) {
	var plain []string
	err := s.store.InTx(ctx, func(q *Queries) error {
		st, err := q.TOTP(ctx, userID)
		if errs.Is(err, errs.NotFound) || (err == nil && !st.Enabled) {
			return errs.E(errs.Conflict, "two-factor sign-in is not enabled")
		}
		if err != nil {
			return err
		}
		step, ok := MatchTOTP(st.Secret, code, s.now())
		if ok {
			if ok, err = q.AdvanceTOTPStep(ctx, userID, step); err != nil {
				return err
			}
		}
		if !ok {
			return errWrongCode
		}
		var hashes []string
		plain, hashes = NewRecoveryCodes(DefaultRecoveryCodes)
		return q.ReplaceRecoveryCodes(ctx, userID, hashes)
	})
	return plain, err
}

// StartEnrollment begins the TOTP enrolment of an admin whose sign-in
// answered an enrolment challenge. Errors: errs.Unauthenticated for a bad
// or expired token.
func (s *Service) StartEnrollment(ctx context.Context, mfaToken string) (TOTPEnrollment, error) {
	var e TOTPEnrollment
	err := s.store.InTx(ctx, func(q *Queries) error {
		t, err := s.pendingMFA(ctx, q, mfaToken, PurposeMFAEnroll)
		if err != nil {
			return err
		}
		u, err := q.UserByID(ctx, t.UserID)
		if err != nil {
			return err
		}
		e, err = s.startTOTP(ctx, q, u)
		return err
	})
	return e, err
}

// ConfirmEnrollment turns on the TOTP that StartEnrollment began and
// completes the sign-in: tokens plus the recovery codes, shown once.
// A wrong code counts against the pending sign-in like in CompleteMFA.
func (s *Service) ConfirmEnrollment(ctx context.Context, mfaToken, code, addr string) (LoginResult, []string, error) {
	var (
		res     LoginResult
		codes   []string
		pending OneTimeToken
		wrong   bool
	)
	err := s.store.InTx(ctx, func(q *Queries) error {
		var (
			u   User
			err error
		)
		pending, u, err = s.mfaAttempt(ctx, q, mfaToken, PurposeMFAEnroll, addr)
		res.User = u
		if err != nil {
			return err
		}
		codes, err = s.confirmTOTP(ctx, q, u.ID, code)
		if errors.Is(err, errWrongCode) {
			wrong = true
			return nil
		}
		if err != nil {
			return err
		}
		now := s.now()
		if spent, err := q.UseOneTimeToken(ctx, pending.Hash, PurposeMFAEnroll, now); err != nil {
			return err
		} else if !spent {
			return errBadMFAToken
		}
		u.TOTPEnabled = true
		res.User = u
		pair, err := s.startSession(ctx, q, u, SessionOptions{AuthTime: pending.CreatedAt})
		if err != nil {
			return err
		}
		res.Tokens = &pair
		return q.ThrottleReset(ctx, mfaKey(u.ID))
	})
	if err != nil {
		return LoginResult{}, nil, err
	}
	if wrong {
		return LoginResult{}, nil, s.wrongCode(ctx, pending, res.User.Email, addr)
	}
	return res, codes, nil
}

// confirmPassword checks the password of a signed-in user for a sensitive
// change. Wrong passwords count in the login throttle, so a stolen access
// token cannot be used to guess the password quickly.
func (s *Service) confirmPassword(ctx context.Context, u User, password, addr, field string) error {
	if password == "" {
		return errs.Field(field, "is required")
	}
	if wait, err := s.throttleWait(ctx, u.Email, addr); err != nil {
		return err
	} else if wait > 0 {
		return throttledError(wait)
	}
	hash, err := s.store.PasswordHash(ctx, u.ID)
	if errs.Is(err, errs.NotFound) {
		_ = s.hasher.Decoy(ctx, password)
		return errs.Field(field, "is wrong")
	}
	if err != nil {
		return err
	}
	ok, _, err := s.hasher.Verify(ctx, password, hash)
	if err != nil {
		return err
	}
	if !ok {
		if err := s.throttleFail(ctx, u.Email, addr); err != nil {
			return err
		}
		return errs.Field(field, "is wrong")
	}
	return nil
}

// ---- profile ----

// ProfileUpdate changes a user's own profile; nil fields stay as they are.
type ProfileUpdate struct {
	Name      *string
	Phone     *string
	Addresses *[]Address
	// StoreName renames a seller's store (its slug stays).
	StoreName *string
}

// UpdateProfile applies a ProfileUpdate. Errors: errs.NotFound,
// errs.Invalid for bad fields, errs.Forbidden for a store name on a
// non-seller.
func (s *Service) UpdateProfile(ctx context.Context, userID string, up ProfileUpdate) (User, error) {
	f := errs.Fields{}
	if up.Name != nil {
		v := strings.TrimSpace(*up.Name)
		up.Name = &v
		checkText(f, "name", v, true, MaxNameLen)
	}
	if up.Phone != nil {
		v := strings.TrimSpace(*up.Phone)
		up.Phone = &v
		checkPhone(f, "phone", v)
	}
	if up.Addresses != nil {
		v := trimAddresses(*up.Addresses)
		up.Addresses = &v
		checkAddresses(f, v)
	}
	if up.StoreName != nil {
		v := strings.TrimSpace(*up.StoreName)
		up.StoreName = &v
		checkText(f, "store_name", v, true, MaxStoreNameLen)
	}
	if err := f.Err(); err != nil {
		return User{}, err
	}
	var u User
	err := s.store.InTx(ctx, func(q *Queries) error {
		var err error
		if u, err = q.UserByID(ctx, userID); err != nil {
			return err
		}
		if up.Name != nil {
			u.Name = *up.Name
		}
		if up.Phone != nil {
			u.Phone = *up.Phone
		}
		if up.Addresses != nil {
			u.Addresses = *up.Addresses
		}
		if up.StoreName != nil {
			if u.Seller == nil {
				return errs.Field("store_name", "only sellers have a store")
			}
			u.Seller.StoreName = *up.StoreName
		}
		u.UpdatedAt = s.now().UTC()
		return q.SaveUser(ctx, &u)
	})
	if err != nil {
		return User{}, err
	}
	return u, nil
}

// ChangePassword sets a new password given the current one, ends every
// session of the user, and starts a new one for the caller (who would
// otherwise be signed out with the rest). Errors: errs.Invalid for a wrong
// current password or a new one the policy refuses, errs.TooManyRequests.
func (s *Service) ChangePassword(ctx context.Context, userID, current, next, addr string) (TokenPair, User, error) {
	u, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return TokenPair{}, User{}, err
	}
	if u.Disabled {
		return TokenPair{}, User{}, errs.E(errs.Unauthenticated, "this account is disabled")
	}
	if next == "" {
		return TokenPair{}, User{}, errs.Field("new_password", "is required")
	}
	if err := CheckPassword(next, u.Email, u.Name); err != nil {
		return TokenPair{}, User{}, renameField(err, "password", "new_password")
	}
	if err := s.confirmPassword(ctx, u, current, addr, "current_password"); err != nil {
		return TokenPair{}, User{}, err
	}
	if current == next {
		return TokenPair{}, User{}, errs.Field("new_password", "must differ from the current password")
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return TokenPair{}, User{}, err
	}
	var pair TokenPair
	err = s.store.InTx(ctx, func(q *Queries) error {
		now := s.now()
		if err := q.SetPassword(ctx, u.ID, hash, now); err != nil {
			return err
		}
		if _, err := q.RevokeUserFamilies(ctx, u.ID, "", revokedPasswordChange, now); err != nil {
			return err
		}
		if err := q.SpendUserTokens(ctx, u.ID, PurposePasswordReset, now); err != nil {
			return err
		}
		var err error
		pair, err = s.startSession(ctx, q, u, SessionOptions{})
		return err
	})
	if err != nil {
		return TokenPair{}, User{}, fmt.Errorf("change password: %w", err)
	}
	return pair, u, nil
}

func renameField(err error, from, to string) error {
	var e *errs.Error
	if !errors.As(err, &e) || e.Fields == nil {
		return err
	}
	msg, ok := e.Fields[from]
	if !ok {
		return err
	}
	return errs.Field(to, msg)
}

// ---- email verification and password reset ----

var errBadLink = errs.Field("token", "the link is invalid, expired or already used; ask for a new one")

// VerifyEmail spends a verification token and marks the email verified.
// Errors: errs.Invalid for an unknown, spent or expired token.
func (s *Service) VerifyEmail(ctx context.Context, token string) error {
	if token == "" || len(token) > 256 {
		return errBadLink
	}
	hash := HashOpaqueToken(token)
	return s.store.InTx(ctx, func(q *Queries) error {
		t, err := q.OneTimeToken(ctx, hash, PurposeVerifyEmail)
		if errs.Is(err, errs.NotFound) {
			return errBadLink
		}
		if err != nil {
			return err
		}
		now := s.now()
		if ok, err := q.UseOneTimeToken(ctx, hash, PurposeVerifyEmail, now); err != nil {
			return err
		} else if !ok {
			return errBadLink
		}
		u, err := q.UserByID(ctx, t.UserID)
		if err != nil {
			return err
		}
		if u.EmailVerified {
			return nil
		}
		u.EmailVerified, u.UpdatedAt = true, now.UTC()
		return q.SaveUser(ctx, &u)
	})
}

// RequestEmailVerification mails a new verification link to a signed-in
// user. Errors: errs.Conflict when the email is verified already.
func (s *Service) RequestEmailVerification(ctx context.Context, userID string) error {
	err := s.store.InTx(ctx, func(q *Queries) error {
		u, err := q.UserByID(ctx, userID)
		if err != nil {
			return err
		}
		if u.EmailVerified {
			return errs.E(errs.Conflict, "the email address is already verified")
		}
		_, err = s.issueVerification(ctx, q, u)
		return err
	})
	if err == nil {
		s.kickRelay()
	}
	return err
}

// Reset links per email per hour; requests beyond are answered the same
// but send nothing, so the endpoint cannot be used to flood a mailbox.
const (
	maxResetsPerHour = 5
	resetWindow      = time.Hour
)

// RequestPasswordReset mails a reset link when email belongs to an enabled
// account. It answers the same, after comparable work (a lookup and a
// write), whether or not it does; only errs.Invalid for a malformed email
// and infrastructure errors come back.
func (s *Service) RequestPasswordReset(ctx context.Context, email string) error {
	email = NormalizeEmail(email)
	if err := CheckEmail(email); err != nil {
		return err
	}
	sent := false
	err := s.store.InTx(ctx, func(q *Queries) error {
		now := s.now()
		key := "reset:" + email
		if err := q.ThrottleFail(ctx, key, now, now.Add(-resetWindow)); err != nil {
			return err
		}
		entries, err := q.ThrottleEntries(ctx, key)
		if err != nil {
			return err
		}
		u, err := q.UserByEmail(ctx, email)
		if errs.Is(err, errs.NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if u.Disabled || entries[key].Failures > maxResetsPerHour {
			return nil
		}
		plain, hash := NewOpaqueToken()
		t := OneTimeToken{Hash: hash, UserID: u.ID, Purpose: PurposePasswordReset, CreatedAt: now, ExpiresAt: now.Add(s.cfg.ResetTTL)}
		if err := q.CreateOneTimeToken(ctx, t); err != nil {
			return err
		}
		ev, err := passwordResetEvent(ctx, u, plain, t.ExpiresAt)
		if err != nil {
			return err
		}
		sent = true
		return q.Enqueue(ctx, ev)
	})
	if err != nil {
		return fmt.Errorf("request password reset: %w", err)
	}
	if sent {
		s.kickRelay()
	}
	return nil
}

// ResetPassword sets a new password with a reset token, ends every session
// of the user and every other reset link, and marks the email verified (the
// link proved the user reads it). Errors: errs.Invalid for a bad token or a
// password the policy refuses.
func (s *Service) ResetPassword(ctx context.Context, token, password string) error {
	if token == "" || len(token) > 256 {
		return errBadLink
	}
	if password == "" {
		return errs.Field("password", "is required")
	}
	hash := HashOpaqueToken(token)
	t, err := s.store.OneTimeToken(ctx, hash, PurposePasswordReset)
	if errs.Is(err, errs.NotFound) {
		return errBadLink
	}
	if err != nil {
		return err
	}
	if t.UsedAt != nil || !s.now().Before(t.ExpiresAt) {
		return errBadLink
	}
	u, err := s.store.UserByID(ctx, t.UserID)
	if err != nil {
		return err
	}
	if err := CheckPassword(password, u.Email, u.Name); err != nil {
		return err
	}
	pwHash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	return s.store.InTx(ctx, func(q *Queries) error {
		now := s.now()
		// Spent here, conditionally, so two confirmations racing with the
		// same link cannot both succeed.
		if ok, err := q.UseOneTimeToken(ctx, hash, PurposePasswordReset, now); err != nil {
			return err
		} else if !ok {
			return errBadLink
		}
		u, err := q.UserByID(ctx, t.UserID)
		if err != nil {
			return err
		}
		if u.Disabled {
			return errBadLink
		}
		if err := q.SetPassword(ctx, u.ID, pwHash, now); err != nil {
			return err
		}
		if err := q.SpendUserTokens(ctx, u.ID, PurposePasswordReset, now); err != nil {
			return err
		}
		if _, err := q.RevokeUserFamilies(ctx, u.ID, "", revokedPasswordReset, now); err != nil {
			return err
		}
		if !u.EmailVerified {
			u.EmailVerified, u.UpdatedAt = true, now.UTC()
			return q.SaveUser(ctx, &u)
		}
		return nil
	})
}
