package auth

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	eventsv1 "github.com/mallhive/mallhive/internal/gen/mallhive/events/v1"
)

type listResp struct {
	Items      []userView `json:"items"`
	NextCursor string     `json:"next_cursor"`
}

func TestAdminUsers(t *testing.T) {
	eachEngine(t, func(t *testing.T, h *harness) {
		admin, _ := h.createAdmin("admin@example.com")
		asAdmin := bearer(admin.AccessToken)

		buyer := h.register("buyer@example.com", pw1, "Bea")
		seller := h.register("seller@example.com", pw1, "Sol", map[string]any{"role": "seller", "store_name": "Sol's"})
		for i := range 5 {
			h.register(fmt.Sprintf("extra%d@example.com", i), pw1, "Extra")
		}
		victim := h.login("buyer@example.com", pw1)
		victim2 := h.login("buyer@example.com", pw1)
		sellerSession := h.login("seller@example.com", pw1)

		// Who may call: anonymous 401, buyers and sellers 403.
		list := func(q url.Values, opts ...reqOpt) resp {
			return h.do("GET", "/api/v1/admin/users?"+q.Encode(), nil, opts...)
		}
		expect(t, list(nil), http.StatusUnauthorized, "anonymous list")
		expect(t, list(nil, bearer(victim.AccessToken)), http.StatusForbidden, "buyer list")
		expect(t, list(nil, bearer(sellerSession.AccessToken)), http.StatusForbidden, "seller list")
		patch := func(id string, body any, opts ...reqOpt) resp {
			return h.do("PATCH", "/api/v1/admin/users/"+id, body, opts...)
		}
		expect(t, patch(buyer.ID, map[string]any{"roles": []string{"admin"}}), http.StatusUnauthorized, "anonymous patch")
		expect(t, patch(buyer.ID, map[string]any{"roles": []string{"admin"}}, bearer(victim.AccessToken)), http.StatusForbidden, "buyer makes self admin")
		expect(t, patch(seller.ID, map[string]any{"disabled": true}, bearer(sellerSession.AccessToken)), http.StatusForbidden, "seller disables")

		// List, filter, paginate.
		var all listResp
		r := list(url.Values{"limit": {"3"}}, asAdmin)
		expect(t, r, http.StatusOK, "list")
		r.decode(t, &all)
		if len(all.Items) != 3 || all.NextCursor == "" {
			t.Fatalf("first page %+v", all)
		}
		seen := map[string]bool{}
		for cursor := ""; ; {
			var page listResp
			r := list(url.Values{"limit": {"3"}, "cursor": {cursor}}, asAdmin)
			expect(t, r, http.StatusOK, "page")
			r.decode(t, &page)
			for _, u := range page.Items {
				if seen[u.ID] {
					t.Fatalf("%s on two pages", u.Email)
				}
				seen[u.ID] = true
			}
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		if len(seen) != 8 {
			t.Errorf("paged through %d users, want 8", len(seen))
		}
		var sellers listResp
		list(url.Values{"role": {"seller"}}, asAdmin).decode(t, &sellers)
		if len(sellers.Items) != 1 || sellers.Items[0].ID != seller.ID || sellers.Items[0].StoreName != "Sol's" {
			t.Errorf("sellers %+v", sellers)
		}
		var byEmail listResp
		list(url.Values{"email": {"EXTRA"}}, asAdmin).decode(t, &byEmail)
		if len(byEmail.Items) != 5 {
			t.Errorf("email filter found %d", len(byEmail.Items))
		}
		for _, q := range []url.Values{{"role": {"god"}}, {"limit": {"0"}}, {"limit": {"x"}}, {"limit": {"101"}}, {"cursor": {"garbage!"}}} {
			expect(t, list(q, asAdmin), http.StatusBadRequest, "bad list query "+q.Encode())
		}

		// Change roles; a new seller needs a store.
		expect(t, patch(buyer.ID, map[string]any{"roles": []string{"buyer", "seller"}}, asAdmin), http.StatusBadRequest, "seller without store")
		r = patch(buyer.ID, map[string]any{"roles": []string{"seller", "buyer"}, "store_name": "Bea's Books"}, asAdmin)
		expect(t, r, http.StatusOK, "make seller")
		var u userView
		r.decode(t, &u)
		if fmt.Sprint(u.Roles) != "[buyer seller]" || u.StoreSlug != "bea-s-books" {
			t.Errorf("after role change %+v", u)
		}
		// The next access token carries the new roles.
		r = h.refresh(victim.RefreshToken)
		expect(t, r, http.StatusOK, "refresh after role change")
		var rotated loginResp
		r.decode(t, &rotated)
		if p, err := h.verifier.Verify(t.Context(), rotated.AccessToken); err != nil || fmt.Sprint(p.Roles) != "[buyer seller]" {
			t.Errorf("refreshed roles %v, %v", p.Roles, err)
		}
		for name, body := range map[string]any{
			"no roles":      map[string]any{"roles": []string{}},
			"unknown role":  map[string]any{"roles": []string{"root"}},
			"empty":         map[string]any{},
			"bad disabled":  map[string]any{"disabled": "yes"},
			"unknown field": map[string]any{"email": "x@example.com"},
		} {
			expect(t, patch(buyer.ID, body, asAdmin), http.StatusBadRequest, name)
		}
		expect(t, patch("0190a0b0-0000-7000-8000-000000000000", map[string]any{"disabled": true}, asAdmin), http.StatusNotFound, "unknown id")
		expect(t, patch("not-an-id", map[string]any{"disabled": true}, asAdmin), http.StatusNotFound, "junk id")
		expect(t, patch(admin.User.ID, map[string]any{"disabled": true}, asAdmin), http.StatusConflict, "disable self")
		expect(t, patch(admin.User.ID, map[string]any{"roles": []string{"buyer"}}, asAdmin), http.StatusConflict, "demote self")

		// Disable: refresh tokens die at once, the event is written, login
		// and the user's still-valid access token are refused here.
		r = patch(buyer.ID, map[string]any{"disabled": true}, asAdmin)
		expect(t, r, http.StatusOK, "disable")
		r.decode(t, &u)
		if !u.Disabled {
			t.Error("not disabled")
		}
		var ev eventsv1.UserDisabled
		if !h.lastEvent(EventUserDisabled, buyer.ID, &ev) || ev.GetEmail() != "buyer@example.com" {
			t.Errorf("user.disabled event %v", &ev)
		}
		expect(t, h.refresh(rotated.RefreshToken), http.StatusUnauthorized, "disabled user's refresh")
		expect(t, h.refresh(victim2.RefreshToken), http.StatusUnauthorized, "disabled user's other session")
		expect(t, h.do("GET", "/api/v1/users/me", nil, bearer(rotated.AccessToken)), http.StatusUnauthorized, "disabled user's access token")
		expect(t, h.do("POST", "/api/v1/auth/login", map[string]string{"email": "buyer@example.com", "password": pw1}), http.StatusForbidden, "disabled login")
		expect(t, h.do("POST", "/api/v1/auth/login", map[string]string{"email": "buyer@example.com", "password": pw2}), http.StatusUnauthorized, "disabled login, wrong password")
		n := len(h.outbox(EventPasswordResetRequested))
		h.do("POST", "/api/v1/auth/password-reset", map[string]string{"email": "buyer@example.com"})
		if len(h.outbox(EventPasswordResetRequested)) != n {
			t.Error("a disabled user was sent a reset link")
		}
		// Disabling twice emits nothing more; enabling lets them back in.
		before := len(h.outbox(EventUserDisabled))
		expect(t, patch(buyer.ID, map[string]any{"disabled": true}, asAdmin), http.StatusOK, "disable again")
		if len(h.outbox(EventUserDisabled)) != before {
			t.Error("second disable emitted an event")
		}
		expect(t, patch(buyer.ID, map[string]any{"disabled": false}, asAdmin), http.StatusOK, "enable")
		h.login("buyer@example.com", pw1)

		// An admin demoted by another admin loses admin access at once
		// here, even with an access token that still says admin.
		other, _ := h.createAdmin("admin2@example.com")
		expect(t, patch(other.User.ID, map[string]any{"roles": []string{"buyer"}}, asAdmin), http.StatusOK, "demote other admin")
		expect(t, list(nil, bearer(other.AccessToken)), http.StatusForbidden, "demoted admin lists")
	})
}
