package auth

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/mallhive/mallhive/internal/platform/httpx"
)

func TestBackoff(t *testing.T) {
	c := DefaultThrottleConfig()
	for _, tc := range []struct {
		failures, free int
		want           time.Duration
	}{
		{0, 3, 0}, {3, 3, 0}, {4, 3, time.Second}, {5, 3, 2 * time.Second}, {8, 3, 16 * time.Second},
		{20, 3, c.MaxDelay}, {1000, 3, c.MaxDelay},
	} {
		if got := c.backoff(tc.failures, tc.free); got != tc.want {
			t.Errorf("backoff(%d, %d) = %v, want %v", tc.failures, tc.free, got, tc.want)
		}
	}
}

func TestClientAddr(t *testing.T) {
	s := &Service{}
	mw := httpx.ClientIPs([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")})
	for _, c := range []struct {
		remote, xff, want string
	}{
		{"203.0.113.9:5000", "", "203.0.113.9"},
		{"203.0.113.9:5000", "1.2.3.4", "203.0.113.9"}, // untrusted peer: header ignored
		{"10.1.2.3:80", "198.51.100.7", "198.51.100.7"},
		{"10.1.2.3:80", "6.6.6.6, 198.51.100.7", "198.51.100.7"},  // left entries are the client's claims
		{"10.1.2.3:80", "198.51.100.7, 10.9.9.9", "198.51.100.7"}, // skip trusted hops
		{"10.1.2.3:80", "garbage", "10.1.2.3"},                    // unparseable: stop at the proxy
		{"192.0.2.1:80", "198.51.100.7", "198.51.100.7"},          // a single trusted address
		{"[2001:db8:1:2:3:4:5:6]:443", "", "2001:db8:1:2::/64"},   // IPv6: the /64
		{"[::ffff:203.0.113.9]:443", "", "203.0.113.9"},           // IPv4-mapped
		{"not an address", "", "unknown"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		var got string
		mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = s.clientAddr(r) })).ServeHTTP(httptest.NewRecorder(), r)
		if got != c.want {
			t.Errorf("clientAddr(%s, %q) = %q, want %q", c.remote, c.xff, got, c.want)
		}
	}
}

func TestLoginThrottle(t *testing.T) {
	eachEngine(t, func(t *testing.T, h *harness) {
		cfg := h.svc.cfg.Throttle
		h.register("owner@example.com", pw1, "Owner")
		attempt := func(email, password, ip string) resp {
			return h.do("POST", "/api/v1/auth/login", map[string]string{"email": email, "password": password}, from(ip))
		}
		const attacker = "203.0.113.66"

		// The attacker's first PairFree+1 guesses are answered; then the
		// pair backs off, doubling.
		for i := range cfg.PairFree + 1 {
			expect(t, attempt("owner@example.com", "guess-"+strconv.Itoa(i), attacker), http.StatusUnauthorized, "guess")
		}
		r := attempt("owner@example.com", "guess-x", attacker)
		expect(t, r, http.StatusTooManyRequests, "throttled guess")
		if ra := r.Header.Get("Retry-After"); ra != "1" {
			t.Errorf("Retry-After %q, want 1", ra)
		}
		// Even the right password waits: a 429 says nothing about it.
		expect(t, attempt("owner@example.com", pw1, attacker), http.StatusTooManyRequests, "right password from the throttled address")

		// The owner, from their own address, is not affected.
		expect(t, attempt("owner@example.com", pw1, "198.51.100.10"), http.StatusOK, "owner from home")

		// After the delay, the attacker may try again, and the delay doubles.
		h.clock.Advance(time.Second)
		expect(t, attempt("owner@example.com", "guess-y", attacker), http.StatusUnauthorized, "guess after the delay")
		r = attempt("owner@example.com", "guess-z", attacker)
		expect(t, r, http.StatusTooManyRequests, "throttled again")
		if ra := r.Header.Get("Retry-After"); ra != "2" {
			t.Errorf("Retry-After %q, want 2", ra)
		}

		// A distributed attack: many addresses, a few guesses each. Once the
		// account has had AccountFree failures, every address that failed
		// on it backs off...
		for i := range cfg.AccountFree {
			ip := fmt.Sprintf("192.0.2.%d", i+1)
			r := attempt("owner@example.com", "spray", ip)
			if r.Status != http.StatusUnauthorized && r.Status != http.StatusTooManyRequests {
				t.Fatalf("spray from %s: %d", ip, r.Status)
			}
		}
		expect(t, attempt("owner@example.com", "spray-again", "192.0.2.1"), http.StatusTooManyRequests, "address that failed, account under attack")
		// ...even with the right password: the attacker learns nothing...
		expect(t, attempt("owner@example.com", pw1, "192.0.2.2"), http.StatusTooManyRequests, "right password from a failed address")
		// ...while the owner, from any address that has not failed, gets in.
		expect(t, attempt("owner@example.com", pw1, "198.51.100.20"), http.StatusOK, "owner from a fresh address")
		expect(t, attempt("owner@example.com", pw1, "198.51.100.10"), http.StatusOK, "owner from home again")

		// Nothing is locked for good: after MaxDelay every address may try.
		h.clock.Advance(cfg.MaxDelay)
		expect(t, attempt("owner@example.com", pw1, "192.0.2.2"), http.StatusOK, "after the longest delay")
		expect(t, attempt("owner@example.com", pw1, attacker), http.StatusOK, "attacker's address after the delay, right password")

		// Credential stuffing from one address across many accounts,
		// known and unknown alike, backs that address off.
		const stuffer = "203.0.113.99"
		for i := range cfg.AddressFree {
			r := attempt(fmt.Sprintf("victim%d@example.com", i), "123456789", stuffer)
			expect(t, r, http.StatusUnauthorized, "stuffing")
		}
		expect(t, attempt("someone@example.com", "123456789", stuffer), http.StatusUnauthorized, "stuffing")
		expect(t, attempt("owner@example.com", pw1, stuffer), http.StatusTooManyRequests, "stuffer's address")

		// Unknown emails are throttled exactly like known ones.
		h.register("quiet@example.com", pw1, "Quinn")
		const prober = "203.0.113.77"
		statuses := func(email string) []int {
			var out []int
			for range cfg.PairFree + 2 {
				out = append(out, attempt(email, "wrong-password", prober).Status)
			}
			return out
		}
		if known, unknown := statuses("quiet@example.com"), statuses("ghost@example.com"); fmt.Sprint(known) != fmt.Sprint(unknown) {
			t.Errorf("known email %v, unknown %v: the throttle reveals which exists", known, unknown)
		}
	})
}

// TestMFAThrottle: someone with the password cannot get unlimited guesses
// at the second factor by signing in again and again.
func TestMFAThrottle(t *testing.T) {
	eachEngine(t, func(t *testing.T, h *harness) {
		h.register("mt@example.com", pw1, "Mo")
		l := h.login("mt@example.com", pw1)
		r := h.do("POST", "/api/v1/users/me/2fa/totp", nil, bearer(l.AccessToken))
		var e enrollmentView
		r.decode(t, &e)
		expect(t, h.do("POST", "/api/v1/users/me/2fa/totp/confirm", map[string]string{"code": h.totpCode(e.Secret)}, bearer(l.AccessToken)), http.StatusOK, "confirm")
		h.clock.Advance(30 * time.Second)

		cfg := h.svc.cfg.Throttle
		wrong := 0
		for ip := 1; wrong < cfg.MFAFree+1; ip++ {
			// A fresh address per sign-in, and a correct password each time.
			c := h.login("mt@example.com", pw1, from(fmt.Sprintf("198.51.100.%d", ip)))
			r := h.do("POST", "/api/v1/auth/login/mfa", map[string]string{"mfa_token": c.MFAToken, "code": "000000"}, from(fmt.Sprintf("198.51.100.%d", ip)))
			expect(t, r, http.StatusUnauthorized, "wrong code")
			wrong++
		}
		c := h.login("mt@example.com", pw1, from("198.51.100.200"))
		r = h.do("POST", "/api/v1/auth/login/mfa", map[string]string{"mfa_token": c.MFAToken, "code": h.totpCode(e.Secret)}, from("198.51.100.200"))
		expect(t, r, http.StatusTooManyRequests, "second factor after too many wrong codes")
		h.clock.Advance(time.Second)
		r = h.do("POST", "/api/v1/auth/login/mfa", map[string]string{"mfa_token": c.MFAToken, "code": h.totpCode(e.Secret)}, from("198.51.100.200"))
		expect(t, r, http.StatusOK, "right code after the delay")
		// Success clears the count.
		h.clock.Advance(30 * time.Second)
		c = h.login("mt@example.com", pw1)
		expect(t, h.do("POST", "/api/v1/auth/login/mfa", map[string]string{"mfa_token": c.MFAToken, "code": "000000"}), http.StatusUnauthorized, "one wrong code")
		expect(t, h.do("POST", "/api/v1/auth/login/mfa", map[string]string{"mfa_token": c.MFAToken, "code": h.totpCode(e.Secret)}), http.StatusOK, "no backoff after a reset")
	})
}
