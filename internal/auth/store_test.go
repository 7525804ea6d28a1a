package auth

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/sqldb/sqldbtest"
)

var testMigrations = []sqldb.Migrations{events.Migrations, Migrations}

// t0 is a fixed instant with sub-microsecond noise, to prove both engines
// round-trip times the same way.
var t0 = time.Date(2030, 5, 17, 10, 30, 0, 123456789, time.UTC)

func mustUser(t *testing.T, q *Queries, email string, roles ...string) User {
	t.Helper()
	u := User{ID: newID(), Email: email, Name: "User " + email, Roles: roles, CreatedAt: t0, UpdatedAt: t0}
	if err := q.CreateUser(context.Background(), &u, "$argon2id$fake"); err != nil {
		t.Fatalf("create %s: %v", email, err)
	}
	return u
}

func TestStore(t *testing.T) {
	sqldbtest.Each(t, ServiceName, testMigrations, func(t *testing.T, db *sqldb.DB) {
		st := NewStore(db)
		t.Run("users", func(t *testing.T) { testStoreUsers(t, st) })
		t.Run("list", func(t *testing.T) { testStoreList(t, st) })
		t.Run("sessions", func(t *testing.T) { testStoreSessions(t, st) })
		t.Run("one-time tokens", func(t *testing.T) { testStoreOneTime(t, st) })
		t.Run("totp", func(t *testing.T) { testStoreTOTP(t, st) })
		t.Run("throttle", func(t *testing.T) { testStoreThrottle(t, st) })
		t.Run("transactions", func(t *testing.T) { testStoreTx(t, st) })
	})
}

func testStoreUsers(t *testing.T, st *Store) {
	ctx := context.Background()
	u := User{ID: newID(), Email: "ana@example.com", Name: "Ana", Phone: "+44 20 7946 0958",
		Roles: []string{"seller", "buyer"}, Seller: &SellerProfile{StoreName: "Ana's Attic", CreatedAt: t0},
		Addresses: []Address{{Name: "Ana", Line1: "1 Road", City: "Leeds", PostalCode: "LS1", Country: "GB", Default: true}},
		CreatedAt: t0, UpdatedAt: t0}
	if err := st.CreateUser(ctx, &u, "$argon2id$hash"); err != nil {
		t.Fatal(err)
	}
	if u.Seller.Slug != "ana-s-attic" {
		t.Errorf("slug = %q", u.Seller.Slug)
	}
	got, err := st.UserByEmail(ctx, "ana@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != u.ID || got.Name != "Ana" || got.Phone != u.Phone || len(got.Addresses) != 1 || got.Addresses[0].City != "Leeds" {
		t.Errorf("got %+v", got)
	}
	if fmt.Sprint(got.Roles) != "[buyer seller]" {
		t.Errorf("roles = %v, want buyer seller in canonical order", got.Roles)
	}
	if !got.CreatedAt.Equal(t0.Truncate(time.Microsecond)) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("created_at = %v", got.CreatedAt)
	}
	if got.Seller == nil || got.Seller.StoreName != "Ana's Attic" || got.Seller.Slug != "ana-s-attic" {
		t.Errorf("seller = %+v", got.Seller)
	}
	if h, err := st.PasswordHash(ctx, u.ID); err != nil || h != "$argon2id$hash" {
		t.Errorf("password hash = %q, %v", h, err)
	}

	// Emails are unique; the service normalises case before storing.
	dup := User{ID: newID(), Email: "ana@example.com", Name: "Other", Roles: []string{"buyer"}, CreatedAt: t0, UpdatedAt: t0}
	if err := st.CreateUser(ctx, &dup, ""); !errs.Is(err, errs.Conflict) {
		t.Errorf("duplicate email: %v, want conflict", err)
	}
	if _, err := st.UserByID(ctx, dup.ID); !errs.Is(err, errs.NotFound) {
		t.Errorf("failed insert left a user: %v", err)
	}

	// A second shop with the same name gets another slug.
	twin := User{ID: newID(), Email: "twin@example.com", Name: "Twin", Roles: []string{"seller"},
		Seller: &SellerProfile{StoreName: "Ana's  Attic!"}, CreatedAt: t0, UpdatedAt: t0}
	if err := st.CreateUser(ctx, &twin, ""); err != nil {
		t.Fatal(err)
	}
	if twin.Seller.Slug != "ana-s-attic-2" {
		t.Errorf("twin slug = %q", twin.Seller.Slug)
	}
	if _, err := st.PasswordHash(ctx, twin.ID); !errs.Is(err, errs.NotFound) {
		t.Errorf("user without password: %v", err)
	}

	// SaveUser changes profile, flags, roles; renames keep the slug.
	got.Name, got.Disabled, got.EmailVerified = "Ana B", true, true
	got.Roles = []string{"admin"}
	got.Seller.StoreName = "Attic 2"
	got.Addresses = nil
	got.UpdatedAt = t0.Add(time.Hour)
	if err := st.SaveUser(ctx, &got); err != nil {
		t.Fatal(err)
	}
	again, err := st.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if again.Name != "Ana B" || !again.Disabled || !again.EmailVerified || fmt.Sprint(again.Roles) != "[admin]" ||
		again.Seller.StoreName != "Attic 2" || again.Seller.Slug != "ana-s-attic" || len(again.Addresses) != 0 || again.Addresses == nil {
		t.Errorf("after save: %+v", again)
	}
	missing := User{ID: newID(), Roles: []string{"buyer"}}
	if err := st.SaveUser(ctx, &missing); !errs.Is(err, errs.NotFound) {
		t.Errorf("save missing: %v", err)
	}

	// Batch lookup ignores unknown ids.
	us, err := st.UsersByIDs(ctx, []string{u.ID, newID(), twin.ID})
	if err != nil || len(us) != 2 {
		t.Errorf("UsersByIDs = %d users, %v", len(us), err)
	}
	if us, err := st.UsersByIDs(ctx, nil); err != nil || len(us) != 0 {
		t.Errorf("UsersByIDs(nil) = %v, %v", us, err)
	}
	if _, err := st.UsersByIDs(ctx, make([]string, MaxBatchIDs+1)); !errs.Is(err, errs.Invalid) {
		t.Errorf("too many ids: %v", err)
	}
}

func testStoreList(t *testing.T, st *Store) {
	ctx := context.Background()
	var sellers []string
	err := st.InTx(ctx, func(q *Queries) error {
		for i := range 7 {
			role := "buyer"
			if i%2 == 0 {
				role = "seller"
			}
			u := mustUser(t, q, fmt.Sprintf("list%d_%s@shop.test", i, role), role)
			if role == "seller" {
				sellers = append(sellers, u.ID)
			}
		}
		mustUser(t, q, "under_score@shop.test", "buyer")
		mustUser(t, q, "underXscore@shop.test", "buyer")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Page through the sellers of this test, newest first.
	var seen []string
	cursor := ""
	for range 10 {
		page, next, err := st.ListUsers(ctx, UserFilter{Role: "seller", Email: "@shop.test", Cursor: cursor, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range page {
			if !u.HasRole("seller") {
				t.Errorf("%s is not a seller", u.Email)
			}
			seen = append(seen, u.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != len(sellers) {
		t.Fatalf("paged %d sellers, want %d", len(seen), len(sellers))
	}
	for i := range seen {
		if seen[i] != sellers[len(sellers)-1-i] {
			t.Errorf("page order: got %v, want reverse of %v", seen, sellers)
			break
		}
	}
	// LIKE wildcards in the filter are literal.
	page, _, err := st.ListUsers(ctx, UserFilter{Email: "under_score"})
	if err != nil || len(page) != 1 || page[0].Email != "under_score@shop.test" {
		t.Errorf("email filter with _: %v, %v", page, err)
	}
	page, _, err = st.ListUsers(ctx, UserFilter{Email: "UNDER%"})
	if err != nil || len(page) != 0 {
		t.Errorf("email filter with %%: %d users, %v", len(page), err)
	}
	for _, bad := range []string{"!!", encodeCursor("not-an-id"), string(make([]byte, 200))} {
		if _, _, err := st.ListUsers(ctx, UserFilter{Cursor: bad}); !errs.Is(err, errs.Invalid) {
			t.Errorf("cursor %q: %v, want invalid", bad, err)
		}
	}
}

func testStoreSessions(t *testing.T, st *Store) {
	ctx := context.Background()
	var u User
	_ = st.InTx(ctx, func(q *Queries) error { u = mustUser(t, q, "sess@example.com", "buyer"); return nil })
	f := Family{ID: newID(), UserID: u.ID, AuthTime: t0, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), LastUsedAt: t0}
	if err := st.CreateFamily(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := st.AddRefreshToken(ctx, RefreshToken{Hash: "h1", FamilyID: f.ID, CreatedAt: t0, ExpiresAt: f.ExpiresAt}); err != nil {
		t.Fatal(err)
	}
	tok, fam, err := st.RefreshToken(ctx, "h1")
	if err != nil || tok.UsedAt != nil || fam.ID != f.ID || !fam.Active(t0) || fam.Active(t0.Add(time.Hour)) {
		t.Fatalf("token %+v family %+v err %v", tok, fam, err)
	}
	if ok, err := st.SpendRefreshToken(ctx, "h1", t0); !ok || err != nil {
		t.Fatalf("first spend: %v %v", ok, err)
	}
	if ok, err := st.SpendRefreshToken(ctx, "h1", t0); ok || err != nil {
		t.Fatalf("second spend: %v %v, want false", ok, err)
	}
	if tok, _, _ := st.RefreshToken(ctx, "h1"); tok.UsedAt == nil {
		t.Error("spent token has no used_at")
	}
	if _, _, err := st.RefreshToken(ctx, "nope"); !errs.Is(err, errs.NotFound) {
		t.Errorf("unknown token: %v", err)
	}

	f2 := Family{ID: newID(), UserID: u.ID, AuthTime: t0, CreatedAt: t0.Add(time.Second), ExpiresAt: t0.Add(time.Hour), LastUsedAt: t0}
	f3 := Family{ID: newID(), UserID: u.ID, AuthTime: t0, CreatedAt: t0.Add(2 * time.Second), ExpiresAt: t0.Add(time.Hour), LastUsedAt: t0}
	for _, x := range []Family{f2, f3} {
		if err := st.CreateFamily(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if fs, err := st.UserFamilies(ctx, u.ID, t0); err != nil || len(fs) != 3 || fs[0].ID != f3.ID {
		t.Errorf("UserFamilies = %d, %v", len(fs), err)
	}
	if ok, err := st.RevokeFamily(ctx, f.ID, "logout", t0); !ok || err != nil {
		t.Errorf("revoke: %v %v", ok, err)
	}
	if ok, _ := st.RevokeFamily(ctx, f.ID, "logout", t0); ok {
		t.Error("revoked twice")
	}
	if got, _ := st.Family(ctx, f.ID); got.Active(t0) || got.RevokedReason != "logout" {
		t.Errorf("revoked family %+v", got)
	}
	if n, err := st.RevokeUserFamilies(ctx, u.ID, f3.ID, "password_changed", t0); n != 1 || err != nil {
		t.Errorf("revoke others = %d, %v; want 1 (f2)", n, err)
	}
	if fs, _ := st.UserFamilies(ctx, u.ID, t0); len(fs) != 1 || fs[0].ID != f3.ID {
		t.Errorf("left %v, want only f3", fs)
	}
	if err := st.TouchFamily(ctx, f3.ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Family(ctx, f3.ID); !got.LastUsedAt.Equal(t0.Add(time.Minute).Truncate(time.Microsecond)) {
		t.Errorf("last used %v", got.LastUsedAt)
	}
	// Sweeping a day later removes ended sessions and their tokens.
	if _, err := st.Sweep(ctx, t0.Add(49*time.Hour), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Family(ctx, f.ID); !errs.Is(err, errs.NotFound) {
		t.Errorf("swept family still there: %v", err)
	}
	if _, _, err := st.RefreshToken(ctx, "h1"); !errs.Is(err, errs.NotFound) {
		t.Errorf("swept token still there: %v", err)
	}
}

func testStoreOneTime(t *testing.T, st *Store) {
	ctx := context.Background()
	var u User
	_ = st.InTx(ctx, func(q *Queries) error { u = mustUser(t, q, "ott@example.com", "buyer"); return nil })
	tok := OneTimeToken{Hash: "v1", UserID: u.ID, Purpose: PurposeVerifyEmail, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := st.CreateOneTimeToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OneTimeToken(ctx, "v1", PurposePasswordReset); !errs.Is(err, errs.NotFound) {
		t.Errorf("wrong purpose found: %v", err)
	}
	if ok, _ := st.UseOneTimeToken(ctx, "v1", PurposeVerifyEmail, t0.Add(time.Hour)); ok {
		t.Error("expired token used")
	}
	if ok, _ := st.UseOneTimeToken(ctx, "v1", PurposePasswordReset, t0); ok {
		t.Error("token used for another purpose")
	}
	if ok, err := st.UseOneTimeToken(ctx, "v1", PurposeVerifyEmail, t0.Add(time.Minute)); !ok || err != nil {
		t.Errorf("use: %v %v", ok, err)
	}
	if ok, _ := st.UseOneTimeToken(ctx, "v1", PurposeVerifyEmail, t0.Add(time.Minute)); ok {
		t.Error("token used twice")
	}
	got, err := st.OneTimeToken(ctx, "v1", PurposeVerifyEmail)
	if err != nil || got.UsedAt == nil || got.UserID != u.ID {
		t.Errorf("after use: %+v %v", got, err)
	}
	for i := 1; i <= 3; i++ {
		if n, err := st.CountTokenAttempt(ctx, "v1"); n != i || err != nil {
			t.Errorf("attempt %d: %d %v", i, n, err)
		}
	}
	if _, err := st.CountTokenAttempt(ctx, "nope"); !errs.Is(err, errs.NotFound) {
		t.Errorf("attempt on unknown: %v", err)
	}
	for _, h := range []string{"r1", "r2"} {
		if err := st.CreateOneTimeToken(ctx, OneTimeToken{Hash: h, UserID: u.ID, Purpose: PurposePasswordReset, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SpendUserTokens(ctx, u.ID, PurposePasswordReset, t0); err != nil {
		t.Fatal(err)
	}
	if ok, _ := st.UseOneTimeToken(ctx, "r2", PurposePasswordReset, t0); ok {
		t.Error("spent reset token still usable")
	}
	if err := st.CreateOneTimeToken(ctx, OneTimeToken{Hash: "x", UserID: u.ID, Purpose: "bogus", CreatedAt: t0, ExpiresAt: t0}); err == nil {
		t.Error("bogus purpose accepted")
	}
}

func testStoreTOTP(t *testing.T, st *Store) {
	ctx := context.Background()
	var u User
	_ = st.InTx(ctx, func(q *Queries) error { u = mustUser(t, q, "totp@example.com", "buyer"); return nil })
	if _, err := st.TOTP(ctx, u.ID); !errs.Is(err, errs.NotFound) {
		t.Errorf("no enrolment: %v", err)
	}
	if err := st.PutPendingTOTP(ctx, u.ID, "SECRET1", t0); err != nil {
		t.Fatal(err)
	}
	if err := st.PutPendingTOTP(ctx, u.ID, "SECRET2", t0); err != nil {
		t.Fatalf("restart pending: %v", err)
	}
	if ok, _ := st.AdvanceTOTPStep(ctx, u.ID, 5); ok {
		t.Error("pending enrolment accepted a code")
	}
	if ok, err := st.EnableTOTP(ctx, u.ID, 100, t0); !ok || err != nil {
		t.Fatalf("enable: %v %v", ok, err)
	}
	if ok, _ := st.EnableTOTP(ctx, u.ID, 100, t0); ok {
		t.Error("enabled twice")
	}
	if err := st.PutPendingTOTP(ctx, u.ID, "SECRET3", t0); !errs.Is(err, errs.Conflict) {
		t.Errorf("re-enrol while enabled: %v", err)
	}
	s, _ := st.TOTP(ctx, u.ID)
	if s.Secret != "SECRET2" || !s.Enabled || s.LastStep != 100 {
		t.Errorf("state %+v", s)
	}
	if got, _ := st.UserByID(ctx, u.ID); !got.TOTPEnabled {
		t.Error("user does not show TOTP enabled")
	}
	for _, c := range []struct {
		step int64
		want bool
	}{{100, false}, {99, false}, {101, true}, {101, false}, {103, true}} {
		if ok, err := st.AdvanceTOTPStep(ctx, u.ID, c.step); ok != c.want || err != nil {
			t.Errorf("advance to %d = %v %v, want %v", c.step, ok, err, c.want)
		}
	}
	if err := st.ReplaceRecoveryCodes(ctx, u.ID, []string{"a", "b", "c"}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := st.UseRecoveryCode(ctx, u.ID, "b", t0); !ok {
		t.Error("code b not used")
	}
	if ok, _ := st.UseRecoveryCode(ctx, u.ID, "b", t0); ok {
		t.Error("code b used twice")
	}
	if n, _ := st.RecoveryCodesLeft(ctx, u.ID); n != 2 {
		t.Errorf("left %d", n)
	}
	if hs, _ := st.unusedRecoveryHashes(ctx, u.ID); fmt.Sprint(hs) != "[a c]" {
		t.Errorf("unused %v", hs)
	}
	if err := st.DeleteTOTP(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.TOTP(ctx, u.ID); !errs.Is(err, errs.NotFound) {
		t.Errorf("after delete: %v", err)
	}
	if n, _ := st.RecoveryCodesLeft(ctx, u.ID); n != 0 {
		t.Errorf("codes left after delete: %d", n)
	}
}

func testStoreThrottle(t *testing.T, st *Store) {
	ctx := context.Background()
	forget := t0.Add(-time.Hour)
	for i := range 3 {
		if err := st.ThrottleFail(ctx, "k1", t0.Add(time.Duration(i)*time.Second), forget); err != nil {
			t.Fatal(err)
		}
	}
	_ = st.ThrottleFail(ctx, "k2", t0, forget)
	got, err := st.ThrottleEntries(ctx, "k1", "k2", "k3")
	if err != nil {
		t.Fatal(err)
	}
	if got["k1"].Failures != 3 || !got["k1"].LastFailure.Equal(t0.Add(2*time.Second).Truncate(time.Microsecond)) || got["k2"].Failures != 1 {
		t.Errorf("entries %+v", got)
	}
	if _, ok := got["k3"]; ok {
		t.Error("k3 has an entry")
	}
	// A failure long after the last one starts the count again.
	later := t0.Add(3 * time.Hour)
	if err := st.ThrottleFail(ctx, "k1", later, later.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.ThrottleEntries(ctx, "k1"); got["k1"].Failures != 1 {
		t.Errorf("after the window: %+v", got["k1"])
	}
	if err := st.ThrottleReset(ctx, "k2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.ThrottleEntries(ctx, "k2"); len(got) != 0 {
		t.Errorf("reset left %v", got)
	}
	if _, err := st.Sweep(ctx, later, later); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.ThrottleEntries(ctx, "k1"); len(got) != 1 {
		t.Errorf("sweep removed a live entry: %v", got)
	}
	if _, err := st.Sweep(ctx, later, later.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.ThrottleEntries(ctx, "k1"); len(got) != 0 {
		t.Errorf("sweep kept a stale entry: %v", got)
	}
}

func testStoreTx(t *testing.T, st *Store) {
	ctx := context.Background()
	if err := st.Enqueue(ctx); err == nil {
		t.Error("Enqueue outside a transaction succeeded")
	}
	ev, err := userDisabledEvent(ctx, User{ID: newID(), Email: "x@example.com"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	// A failed transaction leaves neither the user nor the event behind.
	boom := fmt.Errorf("boom")
	var id string
	err = st.InTx(ctx, func(q *Queries) error {
		id = mustUser(t, q, "rollback@example.com", "buyer").ID
		if err := q.Enqueue(ctx, ev); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("InTx = %v", err)
	}
	if _, err := st.UserByID(ctx, id); !errs.Is(err, errs.NotFound) {
		t.Errorf("rolled-back user exists: %v", err)
	}
	var n int
	if err := st.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE id = $1`, ev.ID).Scan(&n); err != nil || n != 0 {
		t.Errorf("rolled-back event in outbox: %d %v", n, err)
	}
	if err := st.InTx(ctx, func(q *Queries) error { return q.Enqueue(ctx, ev) }); err != nil {
		t.Fatal(err)
	}
	if err := st.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE id = $1`, ev.ID).Scan(&n); err != nil || n != 1 {
		t.Errorf("committed event not in outbox: %d %v", n, err)
	}
}
