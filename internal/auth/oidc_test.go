package auth

import (
	"context"
	"flag"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	eventsv1 "github.com/mallhive/mallhive/internal/gen/mallhive/events/v1"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/sqldb/sqldbtest"
	"github.com/mallhive/mallhive/internal/platform/svc"
)

// sso is a MallHive (the relying party, rp) that signs users in with
// another MallHive instance (the provider, op): a real OpenID Connect
// provider, with MallHive registered there as a client.
type sso struct {
	op, rp *harness
}

func newSSO(t *testing.T, db *sqldb.DB) *sso {
	t.Helper()
	op := newOAuthHarness(t, db, nil)
	// The relying party's address must be known to register its callback
	// at the provider before the relying party is configured.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, secret := op.client(ClientRegistration{Name: "MallHive", RedirectURIs: []string{"http://" + ln.Addr().String() + oidcPath + "callback"}})
	rp := newOAuthHarness(t, sqldbtest.Open(t, db.Dialect, ServiceName, testMigrations), ln, func(cfg *Config) {
		cfg.OIDC = OIDCConfig{Issuer: op.srv.URL, ClientID: c.ID, ClientSecret: secret, Name: "Sign in with Op"}
	})
	return &sso{op: op, rp: rp}
}

// toProvider starts a sign-in at the relying party in browser b and
// returns where it sends the browser.
func (s *sso) toProvider(t *testing.T, b *http.Client) string {
	t.Helper()
	loc := location(t, get(t, b, s.rp.srv.URL+oidcPath+"start", ""))
	if !strings.HasPrefix(loc.String(), s.op.srv.URL+"/oauth2/authorize?") {
		t.Fatalf("start redirected to %s", loc)
	}
	return loc.String()
}

// atProvider is the user, signed in at the provider with opToken, being
// sent back to the relying party: it returns the callback URL.
func (s *sso) atProvider(t *testing.T, authURL, opToken string) string {
	t.Helper()
	loc := location(t, get(t, browser(t), authURL, opToken))
	if !strings.HasPrefix(loc.String(), s.rp.srv.URL+oidcPath+"callback?") || loc.Query().Get("code") == "" {
		t.Fatalf("the provider redirected to %s", loc)
	}
	return loc.String()
}

// signIn runs the whole flow for the provider's user with opToken.
func (s *sso) signIn(t *testing.T, opToken string) resp {
	t.Helper()
	b := browser(t)
	return get(t, b, s.atProvider(t, s.toProvider(t, b), opToken), "")
}

// signedIn checks a callback answered tokens and returns them.
func signedIn(t *testing.T, r resp) loginResp {
	t.Helper()
	expect(t, r, http.StatusOK, "callback")
	var l loginResp
	r.decode(t, &l)
	if l.AccessToken == "" || l.RefreshToken == "" || l.TokenType != "Bearer" {
		t.Fatalf("callback answered %s", r.Body)
	}
	return l
}

func (h *harness) identities(userID string) int {
	h.t.Helper()
	var n int
	if err := h.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM oidc_identities WHERE user_id = $1`, userID).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

func TestExternalOIDC(t *testing.T) {
	sqldbtest.Each(t, ServiceName, testMigrations, func(t *testing.T, db *sqldb.DB) {
		s := newSSO(t, db)
		op, rp := s.op, s.rp

		r := rp.do("GET", "/api/v1/auth/oidc", nil)
		expect(t, r, http.StatusOK, "info")
		if r.m(t)["name"] != "Sign in with Op" {
			t.Errorf("info %s", r.Body)
		}
		expect(t, op.do("GET", "/api/v1/auth/oidc", nil), http.StatusNotFound, "info where it is off")
		expect(t, op.do("GET", oidcPath+"start", nil), http.StatusNotFound, "start where it is off")

		t.Run("first sign-in creates a buyer account", func(t *testing.T) {
			_, opUser := op.verifiedUser("sam@example.com", "Sam Smith")
			l := signedIn(t, s.signIn(t, opUser.AccessToken))
			if l.User.Email != "sam@example.com" || !l.User.EmailVerified || l.User.Name != "Sam Smith" || strings.Join(l.User.Roles, ",") != "buyer" {
				t.Errorf("created %+v", l.User)
			}
			if !rp.lastEvent(EventUserRegistered, l.User.ID, new(eventsv1.UserRegistered)) {
				t.Error("no user.registered event")
			}
			expect(t, rp.do("GET", "/api/v1/users/me", nil, bearer(l.AccessToken)), http.StatusOK, "me")
			// No password was set: none works.
			expect(t, rp.do("POST", "/api/v1/auth/login", map[string]string{"email": "sam@example.com", "password": pw1}), http.StatusUnauthorized, "password login")

			again := signedIn(t, s.signIn(t, opUser.AccessToken))
			if again.User.ID != l.User.ID || rp.identities(l.User.ID) != 1 {
				t.Errorf("second sign-in is user %s, first %s", again.User.ID, l.User.ID)
			}
		})

		t.Run("a verified email links to the existing account", func(t *testing.T) {
			existing, _ := rp.verifiedUser("lee@example.com", "Lee")
			_, opUser := op.verifiedUser("lee@example.com", "Lee at Op")
			l := signedIn(t, s.signIn(t, opUser.AccessToken))
			if l.User.ID != existing.ID || l.User.Name != "Lee" || rp.identities(existing.ID) != 1 {
				t.Errorf("linked to %+v, want %s", l.User, existing.ID)
			}
			rp.login("lee@example.com", pw1) // the password still works
		})

		t.Run("an unverified email links and creates nothing", func(t *testing.T) {
			victim, _ := rp.verifiedUser("vic@example.com", "Vic")
			op.register("vic@example.com", pw1, "Not Vic") // never verified at the provider
			opUser := op.login("vic@example.com", pw1)
			r := s.signIn(t, opUser.AccessToken)
			expect(t, r, http.StatusForbidden, "unverified email, existing account")
			if rp.identities(victim.ID) != 0 {
				t.Error("linked on an unverified email")
			}

			op.register("uma@example.com", pw1, "Uma")
			r = s.signIn(t, op.login("uma@example.com", pw1).AccessToken)
			expect(t, r, http.StatusForbidden, "unverified email, no account")
			if _, err := rp.svc.store.UserByEmail(t.Context(), "uma@example.com"); err == nil {
				t.Error("an account was created for an unverified email")
			}
		})

		t.Run("an account that never confirmed its email is not taken over", func(t *testing.T) {
			squatter := rp.register("una@example.com", pw1, "Squatter")
			_, opUser := op.verifiedUser("una@example.com", "Una")
			expect(t, s.signIn(t, opUser.AccessToken), http.StatusConflict, "unconfirmed local account")
			if rp.identities(squatter.ID) != 0 {
				t.Error("linked to an unconfirmed account")
			}
		})

		t.Run("two-factor users get the challenge", func(t *testing.T) {
			_, local := rp.verifiedUser("tia@example.com", "Tia")
			secret := rp.enableTOTP(local.AccessToken)
			_, opUser := op.verifiedUser("tia@example.com", "Tia")
			r := s.signIn(t, opUser.AccessToken)
			expect(t, r, http.StatusOK, "callback")
			var c loginResp
			r.decode(t, &c)
			if !c.MFARequired || c.MFAToken == "" || c.AccessToken != "" {
				t.Fatalf("challenge %s", r.Body)
			}
			rp.clock.Advance(30 * time.Second)
			r = rp.do("POST", "/api/v1/auth/login/mfa", map[string]string{"mfa_token": c.MFAToken, "code": rp.totpCode(secret)})
			expect(t, r, http.StatusOK, "second factor")
		})

		t.Run("admins without two-factor must enrol", func(t *testing.T) {
			if _, err := CreateAdmin(t.Context(), rp.cliEnv(), rp.svc.cfg, "boss@example.com", pw1, "Boss"); err != nil {
				t.Fatal(err)
			}
			_, opUser := op.verifiedUser("boss@example.com", "Boss")
			r := s.signIn(t, opUser.AccessToken)
			var c loginResp
			r.decode(t, &c)
			if !c.MFAEnroll || c.AccessToken != "" {
				t.Fatalf("admin sign-in %s", r.Body)
			}
		})

		t.Run("state and nonce mismatches are refused", func(t *testing.T) {
			_, opUser := op.verifiedUser("ned@example.com", "Ned")

			// Another state than the browser's.
			b := browser(t)
			cb := s.atProvider(t, s.toProvider(t, b), opUser.AccessToken)
			u, _ := url.Parse(cb)
			q := u.Query()
			q.Set("state", "forged")
			u.RawQuery = q.Encode()
			expect(t, get(t, b, u.String(), ""), http.StatusBadRequest, "forged state")

			// The right callback in a browser that did not start it (login CSRF).
			b = browser(t)
			cb = s.atProvider(t, s.toProvider(t, b), opUser.AccessToken)
			expect(t, get(t, browser(t), cb, ""), http.StatusBadRequest, "callback in another browser")
			signedIn(t, get(t, b, cb, "")) // the starting browser still can
			// A callback works once.
			expect(t, get(t, b, cb, ""), http.StatusBadRequest, "callback replayed")

			// An ID token minted for another sign-in's nonce.
			b = browser(t)
			cb = s.atProvider(t, s.toProvider(t, b), opUser.AccessToken)
			if _, err := rp.db.ExecContext(t.Context(), `UPDATE oidc_login_states SET nonce = 'another-sign-in'`); err != nil {
				t.Fatal(err)
			}
			expect(t, get(t, b, cb, ""), http.StatusUnauthorized, "nonce mismatch")

			// The provider's refusal is passed on, the state spent.
			b = browser(t)
			authURL, _ := url.Parse(s.toProvider(t, b))
			back := rp.srv.URL + oidcPath + "callback?error=access_denied&state=" + url.QueryEscape(authURL.Query().Get("state"))
			r := get(t, b, back, "")
			expect(t, r, http.StatusUnauthorized, "provider error")
			if !strings.Contains(string(r.Body), "access_denied") {
				t.Errorf("provider error %s", r.Body)
			}
		})
	})
}

func TestOIDCConfig(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var c Config
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"-auth.oidc.issuer=https://id.example", "-auth.oidc.client-id=mallhive", "-auth.oidc.client-secret=s3cret"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	got, err := resolveConfig(&svc.Env{DataDir: "/data", PublicURL: "https://shop.example/"}, c)
	if err != nil || got.OIDC.RedirectURL != "https://shop.example/api/v1/auth/oidc/callback" || got.OIDC.Name != defaultOIDCLabel {
		t.Errorf("resolved %+v, %v", got.OIDC, err)
	}
	if v := c.OIDC.LogValue().String(); strings.Contains(v, "s3cret") {
		t.Errorf("the secret is logged: %s", v)
	}
	for name, o := range map[string]OIDCConfig{
		"http issuer":    {Issuer: "http://id.example", ClientID: "x"},
		"no client id":   {Issuer: "https://id.example"},
		"bad redirect":   {Issuer: "https://id.example", ClientID: "x", RedirectURL: "ftp://x"},
		"issuer query":   {Issuer: "https://id.example?x=1", ClientID: "x"},
		"relative":       {Issuer: "id.example", ClientID: "x"},
		"very long name": {Issuer: "https://id.example", ClientID: "x", Name: strings.Repeat("n", 41)},
	} {
		if o.Validate() == nil {
			t.Errorf("%s: validated", name)
		}
	}
	if (OIDCConfig{ClientID: "ignored while off"}).Validate() != nil {
		t.Error("a disabled config is checked")
	}
}
