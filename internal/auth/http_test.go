package auth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	eventsv1 "github.com/mallhive/mallhive/internal/gen/mallhive/events/v1"
)

func TestJourney(t *testing.T) {
	eachEngine(t, func(t *testing.T, h *harness) {
		// Register: 201 with the user, no secrets.
		r := h.do("POST", "/api/v1/auth/register", map[string]string{"email": "  Ana@Example.COM ", "password": pw1, "name": "Ana"})
		expect(t, r, http.StatusCreated, "register")
		for _, secret := range []string{"password", "hash", pw1, "token"} {
			if strings.Contains(strings.ToLower(string(r.Body)), strings.ToLower(secret)) {
				t.Errorf("register response mentions %q: %s", secret, r.Body)
			}
		}
		var u userView
		r.decode(t, &u)
		if u.Email != "ana@example.com" || u.Name != "Ana" || fmt.Sprint(u.Roles) != "[buyer]" || u.EmailVerified || !validID(u.ID) {
			t.Errorf("registered %+v", u)
		}
		var reg eventsv1.UserRegistered
		if !h.lastEvent(EventUserRegistered, u.ID, &reg) || reg.GetEmail() != "ana@example.com" || reg.GetRole() != "buyer" {
			t.Errorf("user.registered = %v", &reg)
		}
		if tok := h.verificationToken(u.ID); len(tok) < 40 {
			t.Errorf("verification token %q", tok)
		}

		// Login: tokens and the user; the email's case does not matter.
		l := h.login("ANA@example.com", pw1)
		if l.TokenType != "Bearer" || l.ExpiresIn != 600 || l.AccessToken == "" || l.RefreshToken == "" || l.User.ID != u.ID {
			t.Fatalf("login %+v", l)
		}
		p, err := h.verifier.Verify(t.Context(), l.AccessToken)
		if err != nil || p.UserID != u.ID || fmt.Sprint(p.Roles) != "[buyer]" {
			t.Fatalf("access token: %+v %v", p, err)
		}

		// Me.
		r = h.do("GET", "/api/v1/users/me", nil, bearer(l.AccessToken))
		expect(t, r, http.StatusOK, "me")
		var me userView
		r.decode(t, &me)
		if me.ID != u.ID || me.Email != "ana@example.com" {
			t.Errorf("me %+v", me)
		}
		expect(t, h.do("GET", "/api/v1/users/me", nil), http.StatusUnauthorized, "me anonymous")
		expect(t, h.do("GET", "/api/v1/users/me", nil, bearer(l.AccessToken+"x")), http.StatusUnauthorized, "me with a tampered token")

		// Update the profile.
		r = h.do("PATCH", "/api/v1/users/me", map[string]any{
			"name": " Ana Smith ", "phone": "+44 20 7946 0958",
			"addresses": []map[string]any{{"label": "home", "name": "Ana Smith", "line1": "1 High St", "city": "Leeds", "postal_code": "LS1 1AA", "country": "gb", "default": true}},
		}, bearer(l.AccessToken))
		expect(t, r, http.StatusOK, "patch me")
		r.decode(t, &me)
		if me.Name != "Ana Smith" || me.Phone != "+44 20 7946 0958" || len(me.Addresses) != 1 || me.Addresses[0].Country != "GB" {
			t.Errorf("patched %+v", me)
		}
		r = h.do("PATCH", "/api/v1/users/me", map[string]any{"email": "evil@example.com"}, bearer(l.AccessToken))
		expect(t, r, http.StatusBadRequest, "patch email")
		r = h.do("PATCH", "/api/v1/users/me", map[string]any{"roles": []string{"admin"}}, bearer(l.AccessToken))
		expect(t, r, http.StatusBadRequest, "patch roles")
		r = h.do("PATCH", "/api/v1/users/me", map[string]any{"role": "admin", "name": "X"}, bearer(l.AccessToken))
		expect(t, r, http.StatusBadRequest, "patch role")
		r = h.do("GET", "/api/v1/users/me", nil, bearer(l.AccessToken))
		r.decode(t, &me)
		if me.Name != "Ana Smith" || fmt.Sprint(me.Roles) != "[buyer]" || me.Email != "ana@example.com" {
			t.Errorf("a refused patch changed something: %+v", me)
		}

		// Refresh rotates: the new pair works, the old refresh token is spent.
		r = h.refresh(l.RefreshToken)
		expect(t, r, http.StatusOK, "refresh")
		var l2 loginResp
		r.decode(t, &l2)
		if l2.RefreshToken == l.RefreshToken || l2.AccessToken == "" || l2.User.Name != "Ana Smith" {
			t.Fatalf("refreshed %+v", l2)
		}
		expect(t, h.do("GET", "/api/v1/users/me", nil, bearer(l2.AccessToken)), http.StatusOK, "me after refresh")

		// Reusing the spent token revokes the whole family: the newest
		// token of the family dies too.
		r = h.refresh(l.RefreshToken)
		expect(t, r, http.StatusUnauthorized, "reuse spent refresh token")
		expect(t, h.refresh(l2.RefreshToken), http.StatusUnauthorized, "refresh after reuse")

		// Logout revokes the family.
		l3 := h.login("ana@example.com", pw1)
		expect(t, h.do("POST", "/api/v1/auth/logout", map[string]string{"refresh_token": l3.RefreshToken}), http.StatusNoContent, "logout")
		expect(t, h.refresh(l3.RefreshToken), http.StatusUnauthorized, "refresh after logout")
		expect(t, h.do("POST", "/api/v1/auth/logout", map[string]string{"refresh_token": l3.RefreshToken}), http.StatusNoContent, "logout twice")
		expect(t, h.do("POST", "/api/v1/auth/logout", map[string]string{"refresh_token": "unknown"}), http.StatusNoContent, "logout unknown")

		// Wrong password and unknown email answer alike.
		bad := h.do("POST", "/api/v1/auth/login", map[string]string{"email": "ana@example.com", "password": pw2})
		expect(t, bad, http.StatusUnauthorized, "wrong password")
		unknown := h.do("POST", "/api/v1/auth/login", map[string]string{"email": "nobody@example.com", "password": pw2})
		expect(t, unknown, http.StatusUnauthorized, "unknown email")
		if bad.m(t)["detail"] != unknown.m(t)["detail"] {
			t.Errorf("wrong password and unknown email differ: %s vs %s", bad.Body, unknown.Body)
		}

		// A refresh token expires with its session.
		l4 := h.login("ana@example.com", pw1)
		h.clock.Advance(h.svc.cfg.RefreshTTL + time.Second)
		expect(t, h.refresh(l4.RefreshToken), http.StatusUnauthorized, "refresh after the session expired")
		expect(t, h.do("GET", "/api/v1/users/me", nil, bearer(l4.AccessToken)), http.StatusUnauthorized, "expired access token")
	})
}

func TestRegister(t *testing.T) {
	eachEngine(t, func(t *testing.T, h *harness) {
		seller := h.register("shop@example.com", pw1, "Sam", map[string]any{"role": "seller", "store_name": "Sam's Shoes"})
		if fmt.Sprint(seller.Roles) != "[seller]" || seller.StoreName != "Sam's Shoes" || seller.StoreSlug != "sam-s-shoes" {
			t.Errorf("seller %+v", seller)
		}
		var reg eventsv1.UserRegistered
		if !h.lastEvent(EventUserRegistered, seller.ID, &reg) || reg.GetRole() != "seller" || reg.GetStoreName() != "Sam's Shoes" {
			t.Errorf("seller event %v", &reg)
		}
		twin := h.register("shop2@example.com", pw1, "Sue", map[string]any{"role": "seller", "store_name": "Sam's shoes"})
		if twin.StoreSlug != "sam-s-shoes-2" {
			t.Errorf("twin slug %q", twin.StoreSlug)
		}

		// An existing email gets the same answer as a new one, and
		// nothing changes: no event, no second account, the old password
		// still the one that works.
		before := len(h.outbox(""))
		r := h.do("POST", "/api/v1/auth/register", map[string]string{"email": "SHOP@example.com", "password": pw2, "name": "Mallory"})
		expect(t, r, http.StatusCreated, "register existing email")
		var dup userView
		r.decode(t, &dup)
		if dup.ID == seller.ID || !validID(dup.ID) || dup.Email != "shop@example.com" || dup.EmailVerified {
			t.Errorf("duplicate registration answered %+v", dup)
		}
		var fresh, same map[string]any
		fresh = h.do("POST", "/api/v1/auth/register", map[string]string{"email": "new@example.com", "password": pw2, "name": "Nia"}).m(t)
		same = r.m(t)
		for k := range fresh {
			if _, ok := same[k]; !ok {
				t.Errorf("duplicate answer lacks %q", k)
			}
		}
		if got := len(h.outbox("")); got != before+2 { // new@'s registered + verification
			t.Errorf("outbox grew by %d, want 2", got-before)
		}
		expect(t, h.do("POST", "/api/v1/auth/login", map[string]string{"email": "shop@example.com", "password": pw2}), http.StatusUnauthorized, "duplicate's password")
		h.login("shop@example.com", pw1)

		// Password policy.
		for name, c := range map[string]struct {
			body  map[string]any
			field string
		}{
			"short":         {map[string]any{"email": "p1@example.com", "password": "short", "name": "P"}, "password"},
			"common":        {map[string]any{"email": "p2@example.com", "password": "password123", "name": "P"}, "password"},
			"email":         {map[string]any{"email": "p3longname@example.com", "password": "p3longname@example.com", "name": "P"}, "password"},
			"too long":      {map[string]any{"email": "p4@example.com", "password": strings.Repeat("x", 129), "name": "P"}, "password"},
			"seller store":  {map[string]any{"email": "p5@example.com", "password": pw1, "name": "P", "role": "seller"}, "store_name"},
			"buyer store":   {map[string]any{"email": "p6@example.com", "password": pw1, "name": "P", "store_name": "X"}, "store_name"},
			"admin role":    {map[string]any{"email": "p7@example.com", "password": pw1, "name": "P", "role": "admin"}, "role"},
			"no name":       {map[string]any{"email": "p8@example.com", "password": pw1}, "name"},
			"bad email":     {map[string]any{"email": "not-an-email", "password": pw1, "name": "P"}, "email"},
			"control chars": {map[string]any{"email": "p9@example.com", "password": pw1, "name": "P\x00"}, "name"},
		} {
			t.Run(name, func(t *testing.T) {
				r := h.do("POST", "/api/v1/auth/register", c.body)
				expect(t, r, http.StatusBadRequest, name)
				errsMap, _ := r.m(t)["errors"].(map[string]any)
				if _, ok := errsMap[c.field]; !ok {
					t.Errorf("problem does not name %q: %s", c.field, r.Body)
				}
			})
		}
	})
}

func TestChangePassword(t *testing.T) {
	eachEngine(t, func(t *testing.T, h *harness) {
		h.register("cp@example.com", pw1, "Cy")
		a := h.login("cp@example.com", pw1)
		b := h.login("cp@example.com", pw1)

		r := h.do("POST", "/api/v1/users/me/password", map[string]string{"current_password": pw3, "new_password": pw2}, bearer(a.AccessToken))
		expect(t, r, http.StatusBadRequest, "wrong current password")
		r = h.do("POST", "/api/v1/users/me/password", map[string]string{"current_password": pw1, "new_password": "12345678"}, bearer(a.AccessToken))
		expect(t, r, http.StatusBadRequest, "weak new password")
		r = h.do("POST", "/api/v1/users/me/password", map[string]string{"new_password": pw2}, bearer(a.AccessToken))
		expect(t, r, http.StatusBadRequest, "no current password")
		expect(t, h.do("POST", "/api/v1/users/me/password", map[string]string{"current_password": pw1, "new_password": pw2}), http.StatusUnauthorized, "anonymous")

		r = h.do("POST", "/api/v1/users/me/password", map[string]string{"current_password": pw1, "new_password": pw2}, bearer(a.AccessToken))
		expect(t, r, http.StatusOK, "change password")
		var c loginResp
		r.decode(t, &c)
		if c.RefreshToken == "" || c.AccessToken == "" {
			t.Fatalf("change answered %s", r.Body)
		}
		// Every earlier session is gone; the caller continues on the new one.
		expect(t, h.refresh(a.RefreshToken), http.StatusUnauthorized, "session a after change")
		expect(t, h.refresh(b.RefreshToken), http.StatusUnauthorized, "session b after change")
		expect(t, h.refresh(c.RefreshToken), http.StatusOK, "new session")
		expect(t, h.do("POST", "/api/v1/auth/login", map[string]string{"email": "cp@example.com", "password": pw1}), http.StatusUnauthorized, "old password")
		h.login("cp@example.com", pw2)
	})
}

func TestVerifyEmail(t *testing.T) {
	eachEngine(t, func(t *testing.T, h *harness) {
		u := h.register("ve@example.com", pw1, "Vi")
		first := h.verificationToken(u.ID)
		l := h.login("ve@example.com", pw1)

		// Ask for a new link: a new token, both valid until used.
		expect(t, h.do("POST", "/api/v1/auth/verify-email/request", nil), http.StatusUnauthorized, "request anonymous")
		expect(t, h.do("POST", "/api/v1/auth/verify-email/request", nil, bearer(l.AccessToken)), http.StatusAccepted, "request link")
		second := h.verificationToken(u.ID)
		if second == first {
			t.Fatal("no new token")
		}
		expect(t, h.do("POST", "/api/v1/auth/verify-email", map[string]string{"token": "bogus"}), http.StatusBadRequest, "bogus token")
		expect(t, h.do("POST", "/api/v1/auth/verify-email", map[string]string{"token": second}), http.StatusNoContent, "verify")
		expect(t, h.do("POST", "/api/v1/auth/verify-email", map[string]string{"token": second}), http.StatusBadRequest, "verify twice")
		var me userView
		h.do("GET", "/api/v1/users/me", nil, bearer(l.AccessToken)).decode(t, &me)
		if !me.EmailVerified {
			t.Error("email not verified")
		}
		expect(t, h.do("POST", "/api/v1/auth/verify-email/request", nil, bearer(l.AccessToken)), http.StatusConflict, "request when verified")

		// Expiry.
		u2 := h.register("ve2@example.com", pw1, "Vo")
		tok := h.verificationToken(u2.ID)
		h.clock.Advance(h.svc.cfg.VerifyEmailTTL + time.Second)
		expect(t, h.do("POST", "/api/v1/auth/verify-email", map[string]string{"token": tok}), http.StatusBadRequest, "expired token")
	})
}

func TestPasswordReset(t *testing.T) {
	eachEngine(t, func(t *testing.T, h *harness) {
		u := h.register("pr@example.com", pw1, "Pru")
		sess := h.login("pr@example.com", pw1)

		known := h.do("POST", "/api/v1/auth/password-reset", map[string]string{"email": "PR@example.com"})
		expect(t, known, http.StatusAccepted, "reset known")
		before := len(h.outbox(EventPasswordResetRequested))
		unknown := h.do("POST", "/api/v1/auth/password-reset", map[string]string{"email": "nobody@example.com"})
		expect(t, unknown, http.StatusAccepted, "reset unknown")
		if string(known.Body) != string(unknown.Body) {
			t.Errorf("answers differ: %s vs %s", known.Body, unknown.Body)
		}
		if got := len(h.outbox(EventPasswordResetRequested)); got != before {
			t.Errorf("unknown email produced %d events", got-before)
		}
		tok := h.resetToken(u.ID)

		expect(t, h.do("POST", "/api/v1/auth/password-reset/confirm", map[string]string{"token": tok, "password": "password"}), http.StatusBadRequest, "weak password")
		expect(t, h.do("POST", "/api/v1/auth/password-reset/confirm", map[string]string{"token": "nope", "password": pw2}), http.StatusBadRequest, "bad token")
		expect(t, h.do("POST", "/api/v1/auth/password-reset/confirm", map[string]string{"token": tok, "password": pw2}), http.StatusNoContent, "reset")
		expect(t, h.do("POST", "/api/v1/auth/password-reset/confirm", map[string]string{"token": tok, "password": pw3}), http.StatusBadRequest, "reset twice")
		expect(t, h.refresh(sess.RefreshToken), http.StatusUnauthorized, "session after reset")
		expect(t, h.do("POST", "/api/v1/auth/login", map[string]string{"email": "pr@example.com", "password": pw1}), http.StatusUnauthorized, "old password")
		l := h.login("pr@example.com", pw2)
		if !l.User.EmailVerified {
			t.Error("a completed reset proves the email: it should be verified")
		}

		// Expired links do nothing; a later link kills the earlier ones once used.
		h.do("POST", "/api/v1/auth/password-reset", map[string]string{"email": "pr@example.com"})
		old := h.resetToken(u.ID)
		h.clock.Advance(h.svc.cfg.ResetTTL + time.Second)
		expect(t, h.do("POST", "/api/v1/auth/password-reset/confirm", map[string]string{"token": old, "password": pw3}), http.StatusBadRequest, "expired reset")
		h.do("POST", "/api/v1/auth/password-reset", map[string]string{"email": "pr@example.com"})
		a := h.resetToken(u.ID)
		h.do("POST", "/api/v1/auth/password-reset", map[string]string{"email": "pr@example.com"})
		b := h.resetToken(u.ID)
		expect(t, h.do("POST", "/api/v1/auth/password-reset/confirm", map[string]string{"token": b, "password": pw3}), http.StatusNoContent, "reset b")
		expect(t, h.do("POST", "/api/v1/auth/password-reset/confirm", map[string]string{"token": a, "password": pw1}), http.StatusBadRequest, "reset a after b")
		h.login("pr@example.com", pw3)

		// Requests beyond the hourly cap are answered the same but mail nothing.
		h.clock.Advance(2 * time.Hour)
		n0 := len(h.outbox(EventPasswordResetRequested))
		for range maxResetsPerHour + 3 {
			expect(t, h.do("POST", "/api/v1/auth/password-reset", map[string]string{"email": "pr@example.com"}), http.StatusAccepted, "flood")
		}
		if got := len(h.outbox(EventPasswordResetRequested)) - n0; got != maxResetsPerHour {
			t.Errorf("sent %d reset mails, want %d", got, maxResetsPerHour)
		}
	})
}

func TestJWKS(t *testing.T) {
	eachEngine(t, func(t *testing.T, h *harness) {
		r := h.do("GET", "/.well-known/jwks.json", nil)
		expect(t, r, http.StatusOK, "jwks")
		if ct := r.Header.Get("Content-Type"); ct != "application/jwk-set+json" {
			t.Errorf("content type %q", ct)
		}
		if cc := r.Header.Get("Cache-Control"); cc != "public, max-age=60" {
			t.Errorf("cache control %q", cc)
		}
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		r.decode(t, &set)
		if len(set.Keys) != 1 || set.Keys[0]["kid"] != h.svc.keys.SigningKeyID() || set.Keys[0]["alg"] != "ES256" {
			t.Errorf("keys %v", set.Keys)
		}
		if _, ok := set.Keys[0]["d"]; ok {
			t.Fatal("JWKS publishes a private key")
		}
		expect(t, h.do("POST", "/.well-known/jwks.json", nil), http.StatusMethodNotAllowed, "POST jwks")

		// After a rotation both keys are published and old tokens still verify.
		h.register("rot@example.com", pw1, "Ro")
		before := h.login("rot@example.com", pw1)
		if err := h.svc.keys.Rotate(h.clock.Now()); err != nil {
			t.Fatal(err)
		}
		h.do("GET", "/.well-known/jwks.json", nil).decode(t, &set)
		if len(set.Keys) != 2 {
			t.Errorf("after rotation %d keys", len(set.Keys))
		}
		after := h.login("rot@example.com", pw1)
		for _, tok := range []string{before.AccessToken, after.AccessToken} {
			expect(t, h.do("GET", "/api/v1/users/me", nil, bearer(tok)), http.StatusOK, "me across rotation")
		}
	})
}

// TestBadInput sends malformed and hostile requests to every endpoint: each
// must get a 4xx problem document, never a 500.
func TestBadInput(t *testing.T) {
	eachEngine(t, func(t *testing.T, h *harness) {
		h.register("bi@example.com", pw1, "Bi")
		l := h.login("bi@example.com", pw1)
		auth := bearer(l.AccessToken)
		huge := `{"email":"` + strings.Repeat("a", 70<<10) + `"}`
		type tc struct {
			method, path string
			body         any
			opts         []reqOpt
			status       int
		}
		var cases []tc
		posts := []string{
			"/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/login/mfa", "/api/v1/auth/login/mfa/enroll",
			"/api/v1/auth/login/mfa/enroll/confirm", "/api/v1/auth/refresh", "/api/v1/auth/logout", "/api/v1/auth/verify-email",
			"/api/v1/auth/password-reset", "/api/v1/auth/password-reset/confirm",
		}
		authed := []struct{ method, path string }{
			{"PATCH", "/api/v1/users/me"}, {"POST", "/api/v1/users/me/password"}, {"POST", "/api/v1/users/me/2fa/totp/confirm"},
			{"DELETE", "/api/v1/users/me/2fa/totp"}, {"POST", "/api/v1/users/me/2fa/recovery-codes"},
		}
		for _, p := range posts {
			cases = append(cases,
				tc{"POST", p, nil, nil, 400},
				tc{"POST", p, "{", nil, 400},
				tc{"POST", p, "[]", nil, 400},
				tc{"POST", p, `{"nope":1}`, nil, 400},
				tc{"POST", p, `{}{}`, nil, 400},
				tc{"POST", p, `{}`, nil, 400},
				tc{"POST", p, `{"email":5,"token":5,"refresh_token":5,"mfa_token":5}`, nil, 400},
				tc{"POST", p, huge, nil, 413},
				tc{"POST", p, `{}`, []reqOpt{header("Content-Type", "text/plain")}, 415},
				tc{"GET", p, nil, nil, 405},
			)
		}
		for _, a := range authed {
			cases = append(cases,
				tc{a.method, a.path, `{}`, nil, 401},
				tc{a.method, a.path, "{", []reqOpt{auth}, 400},
				tc{a.method, a.path, `{"x":1}`, []reqOpt{auth}, 400},
				tc{a.method, a.path, huge + huge, []reqOpt{auth}, 413},
			)
		}
		cases = append(cases,
			tc{"POST", "/api/v1/auth/login", map[string]string{"email": strings.Repeat("a", 300), "password": "x"}, nil, 400},
			tc{"POST", "/api/v1/auth/login", map[string]string{"email": "a@b.c", "password": strings.Repeat("x", 2000)}, nil, 400},
			tc{"POST", "/api/v1/auth/login/mfa", map[string]string{"mfa_token": "x", "code": "123456", "recovery_code": "abcde-fghij"}, nil, 400},
			tc{"POST", "/api/v1/auth/login/mfa", map[string]string{"mfa_token": "x", "code": "123456"}, nil, 401},
			tc{"POST", "/api/v1/auth/refresh", map[string]string{"refresh_token": strings.Repeat("r", 5000)}, nil, 401},
			tc{"POST", "/api/v1/auth/verify-email", map[string]string{"token": strings.Repeat("t", 5000)}, nil, 400},
			tc{"POST", "/api/v1/auth/password-reset", map[string]string{"email": "nope"}, nil, 400},
			tc{"PATCH", "/api/v1/users/me", map[string]any{"name": ""}, []reqOpt{auth}, 400},
			tc{"PATCH", "/api/v1/users/me", map[string]any{"name": strings.Repeat("n", 101)}, []reqOpt{auth}, 400},
			tc{"PATCH", "/api/v1/users/me", map[string]any{"phone": "call me"}, []reqOpt{auth}, 400},
			tc{"PATCH", "/api/v1/users/me", map[string]any{"store_name": "Not a seller"}, []reqOpt{auth}, 400},
			tc{"PATCH", "/api/v1/users/me", map[string]any{"addresses": make([]Address, MaxAddresses+1)}, []reqOpt{auth}, 400},
			tc{"PATCH", "/api/v1/users/me", map[string]any{"addresses": []map[string]any{{"name": "A", "line1": "B", "city": "C", "country": "GBR"}}}, []reqOpt{auth}, 400},
			tc{"PATCH", "/api/v1/users/me", map[string]any{"addresses": []map[string]any{{"name": "A", "line1": "B", "city": "C", "country": "GB", "planet": "Mars"}}}, []reqOpt{auth}, 400},
			tc{"PATCH", "/api/v1/users/me", map[string]any{"addresses": []map[string]any{
				{"name": "A", "line1": "B", "city": "C", "country": "GB", "default": true},
				{"name": "A", "line1": "B", "city": "C", "country": "GB", "default": true}}}, []reqOpt{auth}, 400},
			tc{"PATCH", "/api/v1/users/me", map[string]any{"name": 5}, []reqOpt{auth}, 400},
			tc{"POST", "/api/v1/users/me/2fa/totp/confirm", map[string]string{"code": "123456"}, []reqOpt{auth}, 409},
			tc{"POST", "/api/v1/users/me/2fa/totp/confirm", map[string]string{"code": strings.Repeat("1", 17)}, []reqOpt{auth}, 400},
			tc{"DELETE", "/api/v1/users/me/2fa/totp", map[string]string{"password": pw1}, []reqOpt{auth}, 409},
			tc{"POST", "/api/v1/users/me/2fa/recovery-codes", map[string]string{"code": "123456"}, []reqOpt{auth}, 409},
			tc{"GET", "/api/v1/users/me", nil, []reqOpt{bearer("not.a.jwt")}, 401},
			tc{"GET", "/api/v1/users/me", nil, []reqOpt{bearer(strings.Repeat("a", 9000))}, 401},
			tc{"GET", "/api/v1/admin/users", nil, []reqOpt{auth}, 403},
			tc{"PATCH", "/api/v1/admin/users/x", map[string]any{"disabled": true}, []reqOpt{auth}, 403},
			tc{"DELETE", "/api/v1/users/me", nil, nil, 405},
		)
		for _, c := range cases {
			name := fmt.Sprintf("%s %s %.40v", c.method, c.path, c.body)
			r := h.do(c.method, c.path, c.body, c.opts...)
			if r.Status != c.status {
				t.Errorf("%s: status %d, want %d: %.300s", name, r.Status, c.status, r.Body)
				continue
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("%s: content type %q: %.200s", name, ct, r.Body)
			}
			var p map[string]any
			if err := json.Unmarshal(r.Body, &p); err != nil || p["status"] != float64(c.status) {
				t.Errorf("%s: not a problem document: %.200s", name, r.Body)
			}
		}
		// Nothing above changed the account.
		var me userView
		h.do("GET", "/api/v1/users/me", nil, auth).decode(t, &me)
		if me.Name != "Bi" || len(me.Addresses) != 0 || me.Phone != "" {
			t.Errorf("bad input changed the profile: %+v", me)
		}
	})
}
