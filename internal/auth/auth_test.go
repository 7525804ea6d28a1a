package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/mallhive/mallhive/internal/gen/mallhive/events/v1"
	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/httpx"
	"github.com/mallhive/mallhive/internal/platform/rpc"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/sqldb/sqldbtest"
	"github.com/mallhive/mallhive/internal/platform/svc"
)

// clock is the tests' adjustable time, shared by the service, its key ring
// and the verifier.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is a real auth service behind a real HTTP server, verifying its
// own tokens through its JWKS endpoint like any other service would.
type harness struct {
	t        *testing.T
	svc      *Service
	db       *sqldb.DB
	env      *svc.Env
	srv      *httptest.Server
	clock    *clock
	verifier *authn.Verifier
}

const svcTestIssuer = "http://auth.test"

// Passwords that pass the policy.
const (
	pw1 = "Blue-Lantern-Otter-88"
	pw2 = "Quiet Maple Harbour 2031"
	pw3 = "violet*kettle*summit*7"
)

func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// eachEngine runs fn against a fresh service on SQLite and, when
// MALLHIVE_TEST_POSTGRES_URL is set, PostgreSQL.
func eachEngine(t *testing.T, fn func(t *testing.T, h *harness), opts ...func(*Config)) {
	t.Helper()
	sqldbtest.Each(t, ServiceName, testMigrations, func(t *testing.T, db *sqldb.DB) {
		fn(t, newHarness(t, db, opts...))
	})
}

func newHarness(t *testing.T, db *sqldb.DB, opts ...func(*Config)) *harness {
	t.Helper()
	ctx := context.Background()
	log := testLogger()
	bus, err := events.Open(ctx, events.Config{DataDir: t.TempDir()}, log)
	if err != nil {
		t.Fatalf("open bus: %v", err)
	}
	t.Cleanup(bus.Close)
	env := &svc.Env{
		Log:       log,
		DataDir:   t.TempDir(),
		DB:        func(context.Context, string) (*sqldb.DB, error) { return db, nil },
		Bus:       bus,
		PublicURL: svcTestIssuer,
		Embedded:  true,

		RPCHandlerOptions: rpc.HandlerOptions(nil, nil, nil),
	}
	cfg := DefaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(ctx, env, cfg)
	if err != nil {
		t.Fatalf("new service: %v", err)
	}
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	s.now = clk.Now

	h := &harness{t: t, svc: s, db: db, env: env, clock: clk}
	var handler http.Handler
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(h.srv.Close)
	h.verifier = authn.NewVerifier(authn.VerifierConfig{
		JWKSURL:  h.srv.URL + "/.well-known/jwks.json",
		Issuer:   svcTestIssuer,
		Audience: "mallhive",
		Now:      clk.Now,
	})
	// As in the process: X-Forwarded-For from loopback (the tests' "gateway")
	// names the client.
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	handler = httpx.ClientIPs(loopback)(h.verifier.Middleware(s.Handler()))
	return h
}

// cliEnv is the environment `mallhive users create-admin` would build: its
// DB func opens a new handle on the service's database (which CreateAdmin
// closes when done).
func (h *harness) cliEnv() *svc.Env {
	return &svc.Env{Log: h.env.Log, DataDir: h.env.DataDir, DB: func(ctx context.Context, service string) (*sqldb.DB, error) {
		cfg := sqldb.Config{Service: service}
		if h.db.Dialect == sqldb.Postgres {
			cfg.URL, cfg.Schema = os.Getenv(sqldbtest.EnvPostgres), h.db.Schema
		} else {
			var seq int
			var name, file string
			if err := h.db.QueryRowContext(ctx, `PRAGMA database_list`).Scan(&seq, &name, &file); err != nil {
				return nil, err
			}
			cfg.DataDir = filepath.Dir(file)
		}
		return sqldb.Open(ctx, cfg)
	}}
}

// resp is a captured HTTP response.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r resp) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

func (r resp) m(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	r.decode(t, &v)
	return v
}

type reqOpt func(*http.Request)

func bearer(tok string) reqOpt {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

// from makes the request come from client address ip (through the trusted
// proxy the test server's loopback peer stands for).
func from(ip string) reqOpt {
	return func(r *http.Request) { r.Header.Set("X-Forwarded-For", ip) }
}

func header(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

// do sends body (a string is sent raw, anything else as JSON).
func (h *harness) do(method, path string, body any, opts ...reqOpt) resp {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	res, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp{Status: res.StatusCode, Header: res.Header, Body: data}
}

// expect fails the test unless r has the status; error statuses must come
// as problem documents.
func expect(t *testing.T, r resp, status int, what string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.Status, status, r.Body)
	}
	if status >= 400 {
		if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("%s: content type %q, want a problem document: %s", what, ct, r.Body)
		}
	}
}

type loginResp struct {
	AccessToken   string   `json:"access_token"`
	TokenType     string   `json:"token_type"`
	ExpiresIn     int64    `json:"expires_in"`
	RefreshToken  string   `json:"refresh_token"`
	User          userView `json:"user"`
	MFARequired   bool     `json:"mfa_required"`
	MFAEnroll     bool     `json:"mfa_enrollment_required"`
	MFAToken      string   `json:"mfa_token"`
	Methods       []string `json:"methods"`
	RecoveryCodes []string `json:"recovery_codes"`
}

func (h *harness) register(email, password, name string, extra ...map[string]any) userView {
	h.t.Helper()
	body := map[string]any{"email": email, "password": password, "name": name}
	for _, e := range extra {
		for k, v := range e {
			body[k] = v
		}
	}
	r := h.do("POST", "/api/v1/auth/register", body)
	expect(h.t, r, http.StatusCreated, "register "+email)
	var u userView
	r.decode(h.t, &u)
	return u
}

func (h *harness) login(email, password string, opts ...reqOpt) loginResp {
	h.t.Helper()
	r := h.do("POST", "/api/v1/auth/login", map[string]string{"email": email, "password": password}, opts...)
	expect(h.t, r, http.StatusOK, "login "+email)
	var l loginResp
	r.decode(h.t, &l)
	return l
}

func (h *harness) refresh(tok string) resp {
	h.t.Helper()
	return h.do("POST", "/api/v1/auth/refresh", map[string]string{"refresh_token": tok})
}

// outbox returns the events waiting in the outbox, oldest first, of the
// given type ("" for all).
func (h *harness) outbox(typ string) []events.Event {
	h.t.Helper()
	rows, err := h.db.QueryContext(context.Background(), `SELECT id, type, source, subject, payload FROM outbox ORDER BY id`)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rows.Close()
	var out []events.Event
	for rows.Next() {
		var e events.Event
		if err := rows.Scan(&e.ID, &e.Type, &e.Source, &e.Subject, &e.Data); err != nil {
			h.t.Fatal(err)
		}
		if typ == "" || e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// lastEvent decodes the newest outbox event of a type about a user.
func (h *harness) lastEvent(typ, userID string, msg proto.Message) bool {
	h.t.Helper()
	evs := h.outbox(typ)
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Subject == userID {
			if evs[i].Source != EventSource {
				h.t.Errorf("event source %q", evs[i].Source)
			}
			if err := evs[i].Decode(msg); err != nil {
				h.t.Fatal(err)
			}
			return true
		}
	}
	return false
}

func (h *harness) verificationToken(userID string) string {
	h.t.Helper()
	var ev eventsv1.EmailVerificationRequested
	if !h.lastEvent(EventEmailVerificationRequested, userID, &ev) {
		h.t.Fatalf("no verification event for %s", userID)
	}
	return ev.GetToken()
}

func (h *harness) resetToken(userID string) string {
	h.t.Helper()
	var ev eventsv1.PasswordResetRequested
	if !h.lastEvent(EventPasswordResetRequested, userID, &ev) {
		h.t.Fatalf("no reset event for %s", userID)
	}
	return ev.GetToken()
}

// totpCode is what an authenticator app shows now for secret.
func (h *harness) totpCode(secret string) string {
	h.t.Helper()
	code, err := totp.GenerateCodeCustom(secret, h.clock.Now(), totp.ValidateOpts{
		Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		h.t.Fatal(err)
	}
	return code
}

// createAdmin makes an admin through CreateAdmin (the CLI's path) and signs
// them in, enrolling TOTP as the first login requires. It returns the
// session and the TOTP secret.
func (h *harness) createAdmin(email string) (loginResp, string) {
	h.t.Helper()
	if _, err := CreateAdmin(context.Background(), h.cliEnv(), h.svc.cfg, email, pw1, "Admin"); err != nil {
		h.t.Fatal(err)
	}
	l := h.login(email, pw1)
	if !l.MFAEnroll || l.AccessToken != "" || l.MFAToken == "" {
		h.t.Fatalf("admin login without 2FA: %+v", l)
	}
	r := h.do("POST", "/api/v1/auth/login/mfa/enroll", map[string]string{"mfa_token": l.MFAToken})
	expect(h.t, r, http.StatusOK, "enrol start")
	var e enrollmentView
	r.decode(h.t, &e)
	r = h.do("POST", "/api/v1/auth/login/mfa/enroll/confirm", map[string]string{"mfa_token": l.MFAToken, "code": h.totpCode(e.Secret)})
	expect(h.t, r, http.StatusOK, "enrol confirm")
	var done loginResp
	r.decode(h.t, &done)
	if done.AccessToken == "" || len(done.RecoveryCodes) != DefaultRecoveryCodes || !done.User.TwoFactorEnabled {
		h.t.Fatalf("enrolment result %+v", done)
	}
	// Later codes must come from a later time step.
	h.clock.Advance(30 * time.Second)
	return done, e.Secret
}

func TestConfig(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var c Config
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"-auth.access-ttl=5m", "-auth.require-admin-2fa=false", "-auth.throttle.pair-free=5"}); err != nil {
		t.Fatal(err)
	}
	if c.AccessTTL != 5*time.Minute || c.RequireAdmin2FA || c.RefreshTTL != 30*24*time.Hour || c.Audience != "mallhive" || c.Throttle.PairFree != 5 {
		t.Errorf("parsed %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("flag defaults do not validate: %v", err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("the zero config (all defaults) does not validate: %v", err)
	}
	for name, mut := range map[string]func(*Config){
		"short access":   func(c *Config) { c.AccessTTL = time.Second },
		"refresh<access": func(c *Config) { c.RefreshTTL = time.Hour; c.AccessTTL = time.Hour },
		"bad issuer":     func(c *Config) { c.Issuer = "ftp://x" },
		"long mfa ttl":   func(c *Config) { c.MFATTL = 2 * time.Hour },
		"bad throttle":   func(c *Config) { c.Throttle.MaxDelay = time.Millisecond },
		"rotation":       func(c *Config) { c.KeyRotation = time.Minute },
		"hash conc":      func(c *Config) { c.HashConcurrency = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			mut(&c)
			if err := c.Validate(); err == nil {
				t.Error("validated")
			}
		})
	}
	if _, err := resolveConfig(&svc.Env{DataDir: t.TempDir()}, Config{}); err == nil {
		t.Error("no issuer and no public URL accepted")
	}
	got, err := resolveConfig(&svc.Env{DataDir: "/data", PublicURL: "https://shop.example/"}, Config{})
	if err != nil || got.Issuer != "https://shop.example" || got.KeysDir != "/data/auth/keys" {
		t.Errorf("resolved %+v, %v", got, err)
	}
}

func TestDomainRules(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"ana@example.com", true}, {"a.b+tag@sub.example.co.uk", true}, {"admin@localhost", true},
		{"", false}, {"ana", false}, {"Ana <ana@example.com>", false}, {"ana@", false}, {"@example.com", false},
		{"ana@example.com.", false}, {"a b@example.com", false}, {strings.Repeat("a", 250) + "@e.co", false},
	} {
		if err := CheckEmail(c.in); (err == nil) != c.ok {
			t.Errorf("CheckEmail(%q) = %v, want ok=%v", c.in, err, c.ok)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"Ana's Attic", "ana-s-attic"}, {"  --Hello,  World--  ", "hello-world"}, {"日本の店", "store"},
		{strings.Repeat("ab ", 50), strings.TrimSuffix(strings.Repeat("ab-", 20), "-")},
	} {
		if got := slugify(c.in); got != c.want {
			t.Errorf("slugify(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, c := range []struct {
		in string
		ok bool
	}{{"+44 20 7946 0958", true}, {"(555) 123-4567", true}, {"12345", false}, {"+1 555 CALL NOW", false}, {"1+2345678", false}} {
		f := errs.Fields{}
		checkPhone(f, "phone", c.in)
		if (len(f) == 0) != c.ok {
			t.Errorf("checkPhone(%q) = %v, want ok=%v", c.in, f, c.ok)
		}
	}
}

func TestTwoFactor(t *testing.T) {
	eachEngine(t, func(t *testing.T, h *harness) {
		h.register("tf@example.com", pw1, "Tif")
		l := h.login("tf@example.com", pw1)
		auth := bearer(l.AccessToken)

		// Enrol: a secret, then a first code turns it on and yields the
		// recovery codes once.
		r := h.do("POST", "/api/v1/users/me/2fa/totp", nil, auth)
		expect(t, r, http.StatusOK, "enrol")
		var e enrollmentView
		r.decode(t, &e)
		if e.Secret == "" || !strings.HasPrefix(e.OTPAuthURL, "otpauth://totp/") {
			t.Fatalf("enrolment %+v", e)
		}
		expect(t, h.do("POST", "/api/v1/users/me/2fa/totp/confirm", map[string]string{"code": "000000"}, auth), http.StatusBadRequest, "wrong first code")
		r = h.do("POST", "/api/v1/users/me/2fa/totp/confirm", map[string]string{"code": h.totpCode(e.Secret)}, auth)
		expect(t, r, http.StatusOK, "confirm")
		var codes struct {
			RecoveryCodes []string `json:"recovery_codes"`
		}
		r.decode(t, &codes)
		if len(codes.RecoveryCodes) != DefaultRecoveryCodes {
			t.Fatalf("recovery codes %v", codes.RecoveryCodes)
		}
		expect(t, h.do("POST", "/api/v1/users/me/2fa/totp", nil, auth), http.StatusConflict, "enrol again")
		expect(t, h.do("POST", "/api/v1/users/me/2fa/totp/confirm", map[string]string{"code": h.totpCode(e.Secret)}, auth), http.StatusConflict, "confirm again")

		// Login now answers with a challenge, not tokens.
		h.clock.Advance(30 * time.Second)
		c := h.login("tf@example.com", pw1)
		if !c.MFARequired || c.MFAToken == "" || c.AccessToken != "" || c.RefreshToken != "" || fmt.Sprint(c.Methods) != "[totp recovery_code]" {
			t.Fatalf("challenge %+v", c)
		}
		mfa := func(body map[string]string) resp { return h.do("POST", "/api/v1/auth/login/mfa", body) }
		expect(t, mfa(map[string]string{"mfa_token": c.MFAToken, "code": "000000"}), http.StatusUnauthorized, "wrong code")
		expect(t, mfa(map[string]string{"mfa_token": "forged", "code": h.totpCode(e.Secret)}), http.StatusUnauthorized, "forged mfa token")
		code := h.totpCode(e.Secret)
		r = mfa(map[string]string{"mfa_token": c.MFAToken, "code": code})
		expect(t, r, http.StatusOK, "right code")
		var done loginResp
		r.decode(t, &done)
		if done.AccessToken == "" || done.RefreshToken == "" || !done.User.TwoFactorEnabled {
			t.Fatalf("mfa login %+v", done)
		}
		expect(t, mfa(map[string]string{"mfa_token": c.MFAToken, "code": code}), http.StatusUnauthorized, "mfa token reused")

		// The same code cannot be replayed on a fresh challenge.
		c2 := h.login("tf@example.com", pw1)
		expect(t, mfa(map[string]string{"mfa_token": c2.MFAToken, "code": code}), http.StatusUnauthorized, "replayed code")
		h.clock.Advance(30 * time.Second)
		expect(t, mfa(map[string]string{"mfa_token": c2.MFAToken, "code": h.totpCode(e.Secret)}), http.StatusOK, "next code")

		// Recovery codes work once each (case and dashes do not matter).
		c3 := h.login("tf@example.com", pw1)
		rc := strings.ToUpper(strings.ReplaceAll(codes.RecoveryCodes[0], "-", ""))
		expect(t, mfa(map[string]string{"mfa_token": c3.MFAToken, "recovery_code": rc}), http.StatusOK, "recovery code")
		c4 := h.login("tf@example.com", pw1)
		expect(t, mfa(map[string]string{"mfa_token": c4.MFAToken, "recovery_code": codes.RecoveryCodes[0]}), http.StatusUnauthorized, "recovery code reused")
		expect(t, mfa(map[string]string{"mfa_token": c4.MFAToken, "recovery_code": codes.RecoveryCodes[1]}), http.StatusOK, "second recovery code")

		// A pending sign-in dies after a few wrong codes, and after MFATTL.
		c5 := h.login("tf@example.com", pw1)
		for range maxMFAAttempts {
			h.clock.Advance(30 * time.Second) // past the backoff the failures build up
			expect(t, mfa(map[string]string{"mfa_token": c5.MFAToken, "code": "000000"}), http.StatusUnauthorized, "wrong code")
		}
		h.clock.Advance(30 * time.Second)
		expect(t, mfa(map[string]string{"mfa_token": c5.MFAToken, "code": h.totpCode(e.Secret)}), http.StatusUnauthorized, "after too many attempts")
		h.clock.Advance(time.Hour) // let the throttle those failures built up pass
		c6 := h.login("tf@example.com", pw1)
		h.clock.Advance(h.svc.cfg.MFATTL + time.Second)
		expect(t, mfa(map[string]string{"mfa_token": c6.MFAToken, "code": h.totpCode(e.Secret)}), http.StatusUnauthorized, "expired challenge")

		// New recovery codes need a current code; the old ones die.
		h.clock.Advance(30 * time.Second)
		c7 := h.login("tf@example.com", pw1)
		r = mfa(map[string]string{"mfa_token": c7.MFAToken, "code": h.totpCode(e.Secret)})
		expect(t, r, http.StatusOK, "sign in again")
		r.decode(t, &done)
		auth = bearer(done.AccessToken)
		expect(t, h.do("POST", "/api/v1/users/me/2fa/recovery-codes", map[string]string{"code": h.totpCode(e.Secret)}, auth), http.StatusBadRequest, "regenerate with a used code")
		h.clock.Advance(30 * time.Second)
		r = h.do("POST", "/api/v1/users/me/2fa/recovery-codes", map[string]string{"code": h.totpCode(e.Secret)}, auth)
		expect(t, r, http.StatusOK, "regenerate recovery codes")
		var fresh struct {
			RecoveryCodes []string `json:"recovery_codes"`
		}
		r.decode(t, &fresh)
		if len(fresh.RecoveryCodes) != DefaultRecoveryCodes {
			t.Fatalf("fresh codes %v", fresh.RecoveryCodes)
		}
		c8 := h.login("tf@example.com", pw1)
		expect(t, mfa(map[string]string{"mfa_token": c8.MFAToken, "recovery_code": codes.RecoveryCodes[2]}), http.StatusUnauthorized, "old recovery code")
		expect(t, mfa(map[string]string{"mfa_token": c8.MFAToken, "recovery_code": fresh.RecoveryCodes[0]}), http.StatusOK, "fresh recovery code")

		// Disabling needs the password.
		expect(t, h.do("DELETE", "/api/v1/users/me/2fa/totp", map[string]string{"password": pw2}, auth), http.StatusBadRequest, "disable with wrong password")
		expect(t, h.do("DELETE", "/api/v1/users/me/2fa/totp", map[string]string{"password": pw1}, auth), http.StatusNoContent, "disable")
		plain := h.login("tf@example.com", pw1)
		if plain.MFARequired || plain.AccessToken == "" {
			t.Errorf("login after disabling 2FA: %+v", plain)
		}
	})
}

// TestAdminRequires2FA: an admin without TOTP gets only an enrolment
// challenge whose token is good for nothing else.
func TestAdminRequires2FA(t *testing.T) {
	eachEngine(t, func(t *testing.T, h *harness) {
		if _, err := CreateAdmin(t.Context(), h.cliEnv(), h.svc.cfg, "Root@Example.com", pw1, "Root"); err != nil {
			t.Fatal(err)
		}
		if _, err := CreateAdmin(t.Context(), h.cliEnv(), h.svc.cfg, "root@example.com", pw2, "Root"); err == nil {
			t.Error("second admin with the same email created")
		}
		if _, err := CreateAdmin(t.Context(), h.cliEnv(), h.svc.cfg, "weak@example.com", "password", "Weak"); err == nil {
			t.Error("admin with a common password created")
		}
		l := h.login("root@example.com", pw1)
		if !l.MFAEnroll || l.MFARequired || l.AccessToken != "" || l.RefreshToken != "" || fmt.Sprint(l.Methods) != "[totp]" {
			t.Fatalf("admin login %+v", l)
		}
		// The enrolment token is not an access token, nor a second factor.
		expect(t, h.do("GET", "/api/v1/admin/users", nil, bearer(l.MFAToken)), http.StatusUnauthorized, "enrolment token as bearer")
		expect(t, h.do("POST", "/api/v1/auth/login/mfa", map[string]string{"mfa_token": l.MFAToken, "code": "123456"}), http.StatusUnauthorized, "enrolment token as challenge")
		expect(t, h.do("POST", "/api/v1/auth/login/mfa/enroll/confirm", map[string]string{"mfa_token": l.MFAToken, "code": "123456"}), http.StatusConflict, "confirm before start")

		r := h.do("POST", "/api/v1/auth/login/mfa/enroll", map[string]string{"mfa_token": l.MFAToken})
		expect(t, r, http.StatusOK, "start enrolment")
		var e enrollmentView
		r.decode(t, &e)
		expect(t, h.do("POST", "/api/v1/auth/login/mfa/enroll/confirm", map[string]string{"mfa_token": l.MFAToken, "code": "000000"}), http.StatusUnauthorized, "wrong code")
		r = h.do("POST", "/api/v1/auth/login/mfa/enroll/confirm", map[string]string{"mfa_token": l.MFAToken, "code": h.totpCode(e.Secret)})
		expect(t, r, http.StatusOK, "confirm enrolment")
		var done loginResp
		r.decode(t, &done)
		if done.AccessToken == "" || len(done.RecoveryCodes) != DefaultRecoveryCodes || fmt.Sprint(done.User.Roles) != "[admin]" || !done.User.EmailVerified {
			t.Fatalf("enrolled admin %+v", done)
		}
		expect(t, h.do("GET", "/api/v1/admin/users", nil, bearer(done.AccessToken)), http.StatusOK, "admin list")
		expect(t, h.do("POST", "/api/v1/auth/login/mfa/enroll", map[string]string{"mfa_token": l.MFAToken}), http.StatusUnauthorized, "enrolment token reused")

		// From now on, admin sign-in asks for the code.
		h.clock.Advance(30 * time.Second)
		c := h.login("root@example.com", pw1)
		if !c.MFARequired {
			t.Fatalf("enrolled admin login %+v", c)
		}

		// An admin who turns TOTP off loses their sessions at the next
		// refresh and must enrol again.
		expect(t, h.do("DELETE", "/api/v1/users/me/2fa/totp", map[string]string{"password": pw1}, bearer(done.AccessToken)), http.StatusNoContent, "admin disables 2FA")
		expect(t, h.refresh(done.RefreshToken), http.StatusUnauthorized, "refresh without 2FA")
		if l := h.login("root@example.com", pw1); !l.MFAEnroll {
			t.Errorf("login after disabling: %+v", l)
		}
	})
	t.Run("optional", func(t *testing.T) {
		db := sqldbtest.Open(t, sqldb.SQLite, ServiceName, testMigrations)
		h := newHarness(t, db, func(c *Config) { c.RequireAdmin2FA = false })
		if _, err := CreateAdmin(t.Context(), h.cliEnv(), h.svc.cfg, "ops@example.com", pw1, "Ops"); err != nil {
			t.Fatal(err)
		}
		if l := h.login("ops@example.com", pw1); l.AccessToken == "" {
			t.Errorf("with 2FA optional, admin login %+v", l)
		}
	})
}

// FuzzValidators: the validators never panic, and what they accept is
// within the bounds the store relies on.
func FuzzValidators(f *testing.F) {
	for _, s := range []string{"ana@example.com", "Ana's Attic", "+44 20 7946 0958", "", "\x00", "日本", "a@b", strings.Repeat("z", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckEmail(NormalizeEmail(s)) == nil && len(NormalizeEmail(s)) > MaxEmailLen {
			t.Errorf("accepted a %d-byte email", len(s))
		}
		slug := slugify(s)
		if slug == "" || len(slug) > maxSlugLen || strings.Trim(slug, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" ||
			strings.HasPrefix(slug, "-") || strings.HasSuffix(slug, "-") || strings.Contains(slug, "--") {
			t.Errorf("slugify(%q) = %q", s, slug)
		}
		fields := errs.Fields{}
		checkText(fields, "name", s, true, MaxNameLen)
		checkPhone(fields, "phone", s)
		if id, err := decodeCursor(s); err == nil && !validID(id) {
			t.Errorf("decodeCursor(%q) = %q", s, id)
		}
	})
}
