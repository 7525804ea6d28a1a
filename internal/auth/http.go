package auth

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/httpx"
)

// Body limits. Every body is decoded with httpx.DecodeJSON under one of them.
const (
	smallBody   = 8 << 10  // credentials and tokens
	profileBody = 64 << 10 // a profile with a full address book
)

// jwksMaxAge is short: a verifier that sees an unknown kid refetches, and a
// shared cache must not hide a freshly rotated key for long.
const jwksMaxAge = 60 * time.Second

// Handler serves the auth service's REST API. Routes that need a signed-in
// user read the principal that the process's authn middleware put in the
// request context; everything else is public.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	routes := map[string][]string{}
	handle := func(method, path string, h httpx.HandlerFunc) {
		routes[path] = append(routes[path], method)
		mux.Handle(method+" "+path, h)
	}

	handle(http.MethodPost, "/api/v1/auth/register", s.handleRegister)
	handle(http.MethodPost, "/api/v1/auth/login", s.handleLogin)
	handle(http.MethodPost, "/api/v1/auth/login/mfa", s.handleLoginMFA)
	handle(http.MethodPost, "/api/v1/auth/login/mfa/enroll", s.handleEnrollStart)
	handle(http.MethodPost, "/api/v1/auth/login/mfa/enroll/confirm", s.handleEnrollConfirm)
	handle(http.MethodPost, "/api/v1/auth/refresh", s.handleRefresh)
	handle(http.MethodPost, "/api/v1/auth/logout", s.handleLogout)
	handle(http.MethodPost, "/api/v1/auth/verify-email", s.handleVerifyEmail)
	handle(http.MethodPost, "/api/v1/auth/verify-email/request", s.handleVerifyEmailRequest)
	handle(http.MethodPost, "/api/v1/auth/password-reset", s.handleResetRequest)
	handle(http.MethodPost, "/api/v1/auth/password-reset/confirm", s.handleResetConfirm)

	handle(http.MethodGet, "/api/v1/users/me", s.handleMe)
	handle(http.MethodPatch, "/api/v1/users/me", s.handleUpdateMe)
	handle(http.MethodPost, "/api/v1/users/me/password", s.handleChangePassword)
	handle(http.MethodPost, "/api/v1/users/me/2fa/totp", s.handleTOTPStart)
	handle(http.MethodPost, "/api/v1/users/me/2fa/totp/confirm", s.handleTOTPConfirm)
	handle(http.MethodDelete, "/api/v1/users/me/2fa/totp", s.handleTOTPDisable)
	handle(http.MethodPost, "/api/v1/users/me/2fa/recovery-codes", s.handleRecoveryCodes)

	handle(http.MethodGet, "/api/v1/admin/users", s.handleAdminList)
	handle(http.MethodPatch, "/api/v1/admin/users/{id}", s.handleAdminUpdate)

	handle(http.MethodGet, "/.well-known/jwks.json", s.handleJWKS)
	s.oauthRoutes(handle) // oauth_http.go

	// A method-less pattern is less specific than the method ones, so it
	// only catches the other methods: answer them with a problem document.
	for path, methods := range routes {
		if slices.Contains(methods, http.MethodGet) {
			methods = append(methods, http.MethodHead)
		}
		allow := strings.Join(methods, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			httpx.WriteProblem(w, r, httpx.Problem{Status: http.StatusMethodNotAllowed, Detail: "use " + allow})
		})
	}
	return mux
}

// ---- views ----

// userView is the public JSON of an account: never a credential.
type userView struct {
	ID               string    `json:"id"`
	Email            string    `json:"email"`
	Name             string    `json:"name"`
	Phone            string    `json:"phone"`
	Roles            []string  `json:"roles"`
	EmailVerified    bool      `json:"email_verified"`
	Disabled         bool      `json:"disabled"`
	TwoFactorEnabled bool      `json:"two_factor_enabled"`
	Addresses        []Address `json:"addresses"`
	StoreName        string    `json:"store_name,omitempty"`
	StoreSlug        string    `json:"store_slug,omitempty"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

func viewUser(u User) userView {
	v := userView{
		ID: u.ID, Email: u.Email, Name: u.Name, Phone: u.Phone, Roles: u.Roles,
		EmailVerified: u.EmailVerified, Disabled: u.Disabled, TwoFactorEnabled: u.TOTPEnabled,
		Addresses: nonNilAddresses(u.Addresses), CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}
	if v.Roles == nil {
		v.Roles = []string{}
	}
	if u.Seller != nil {
		v.StoreName, v.StoreSlug = u.Seller.StoreName, u.Seller.Slug
	}
	return v
}

// tokenResponse is the body of a successful sign-in or refresh.
type tokenResponse struct {
	AccessToken   string    `json:"access_token"`
	TokenType     string    `json:"token_type"`
	ExpiresIn     int64     `json:"expires_in"`
	RefreshToken  string    `json:"refresh_token"`
	User          *userView `json:"user,omitempty"`
	RecoveryCodes []string  `json:"recovery_codes,omitempty"`
}

func tokenBody(p TokenPair, u User) tokenResponse {
	v := viewUser(u)
	return tokenResponse{AccessToken: p.AccessToken, TokenType: "Bearer", ExpiresIn: p.ExpiresIn, RefreshToken: p.RefreshToken, User: &v}
}

// writeTokens writes a token response; RFC 6749 §5.1 forbids caching it.
func writeTokens(w http.ResponseWriter, body any) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	httpx.WriteJSON(w, http.StatusOK, body)
}

// writeLogin writes tokens or the MFA challenge.
func (s *Service) writeLogin(w http.ResponseWriter, res LoginResult) {
	if res.MFA != nil {
		body := map[string]any{
			"mfa_token":  res.MFA.Token,
			"methods":    res.MFA.Methods,
			"expires_in": int64(s.cfg.MFATTL / time.Second),
		}
		if res.MFA.Enrollment {
			body["mfa_enrollment_required"] = true
		} else {
			body["mfa_required"] = true
		}
		writeTokens(w, body)
		return
	}
	writeTokens(w, tokenBody(*res.Tokens, res.User))
}

// currentUser returns the signed-in caller's account. A token for a user
// who was disabled or deleted since it was issued is refused here, without
// waiting for it to expire.
func (s *Service) currentUser(r *http.Request) (User, error) {
	p, err := authn.Require(r.Context())
	if err != nil {
		return User{}, err
	}
	if !validID(p.UserID) {
		return User{}, errs.E(errs.Unauthenticated, "sign in again")
	}
	u, err := s.store.UserByID(r.Context(), p.UserID)
	if errs.Is(err, errs.NotFound) || (err == nil && u.Disabled) {
		return User{}, errs.E(errs.Unauthenticated, "sign in again")
	}
	return u, err
}

// ---- sign-up and sign-in ----

func (s *Service) handleRegister(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Email     string `json:"email"`
		Password  string `json:"password"`
		Name      string `json:"name"`
		Role      string `json:"role"`
		StoreName string `json:"store_name"`
	}
	if err := httpx.DecodeJSON(w, r, &body, smallBody); err != nil {
		return err
	}
	u, err := s.Register(r.Context(), Registration(body))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusCreated, viewUser(u))
	return nil
}

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (c credentials) validate() error {
	f := errs.Fields{}
	f.Check(c.Email != "", "email", "is required")
	f.Check(len(c.Email) <= MaxEmailLen, "email", "is too long")
	f.Check(c.Password != "", "password", "is required")
	f.Check(len(c.Password) <= MaxPasswordBytes, "password", "is too long")
	return f.Err()
}

func (s *Service) handleLogin(w http.ResponseWriter, r *http.Request) error {
	var body credentials
	if err := httpx.DecodeJSON(w, r, &body, smallBody); err != nil {
		return err
	}
	if err := body.validate(); err != nil {
		return err
	}
	res, err := s.Login(r.Context(), body.Email, body.Password, s.clientAddr(r))
	if err != nil {
		return err
	}
	s.writeLogin(w, res)
	return nil
}

func (s *Service) handleLoginMFA(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		MFAToken     string `json:"mfa_token"`
		Code         string `json:"code"`
		RecoveryCode string `json:"recovery_code"`
	}
	if err := httpx.DecodeJSON(w, r, &body, smallBody); err != nil {
		return err
	}
	if body.MFAToken == "" {
		return errs.Field("mfa_token", "is required")
	}
	res, err := s.CompleteMFA(r.Context(), body.MFAToken, strings.TrimSpace(body.Code), strings.TrimSpace(body.RecoveryCode), s.clientAddr(r))
	if err != nil {
		return err
	}
	s.writeLogin(w, res)
	return nil
}

type enrollmentView struct {
	Secret     string `json:"secret"`
	OTPAuthURL string `json:"otpauth_url"`
}

func (s *Service) handleEnrollStart(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		MFAToken string `json:"mfa_token"`
	}
	if err := httpx.DecodeJSON(w, r, &body, smallBody); err != nil {
		return err
	}
	if body.MFAToken == "" {
		return errs.Field("mfa_token", "is required")
	}
	e, err := s.StartEnrollment(r.Context(), body.MFAToken)
	if err != nil {
		return err
	}
	writeTokens(w, enrollmentView(e))
	return nil
}

func (s *Service) handleEnrollConfirm(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		MFAToken string `json:"mfa_token"`
		Code     string `json:"code"`
	}
	if err := httpx.DecodeJSON(w, r, &body, smallBody); err != nil {
		return err
	}
	f := errs.Fields{}
	f.Check(body.MFAToken != "", "mfa_token", "is required")
	f.Check(body.Code != "", "code", "is required")
	f.Check(len(body.Code) <= 16, "code", "is too long")
	if err := f.Err(); err != nil {
		return err
	}
	res, codes, err := s.ConfirmEnrollment(r.Context(), body.MFAToken, strings.TrimSpace(body.Code), s.clientAddr(r))
	if err != nil {
		return err
	}
	resp := tokenBody(*res.Tokens, res.User)
	resp.RecoveryCodes = codes
	writeTokens(w, resp)
	return nil
}

type refreshBody struct {
	RefreshToken string `json:"refresh_token"`
}

func (s *Service) handleRefresh(w http.ResponseWriter, r *http.Request) error {
	var body refreshBody
	if err := httpx.DecodeJSON(w, r, &body, smallBody); err != nil {
		return err
	}
	if body.RefreshToken == "" {
		return errs.Field("refresh_token", "is required")
	}
	pair, u, err := s.Refresh(r.Context(), body.RefreshToken, "")
	if err != nil {
		return err
	}
	writeTokens(w, tokenBody(pair, u))
	return nil
}

func (s *Service) handleLogout(w http.ResponseWriter, r *http.Request) error {
	var body refreshBody
	if err := httpx.DecodeJSON(w, r, &body, smallBody); err != nil {
		return err
	}
	if body.RefreshToken == "" {
		return errs.Field("refresh_token", "is required")
	}
	if err := s.Logout(r.Context(), body.RefreshToken); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- email verification and password reset ----

func (s *Service) handleVerifyEmail(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Token string `json:"token"`
	}
	if err := httpx.DecodeJSON(w, r, &body, smallBody); err != nil {
		return err
	}
	if body.Token == "" {
		return errs.Field("token", "is required")
	}
	if err := s.VerifyEmail(r.Context(), body.Token); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) handleVerifyEmailRequest(w http.ResponseWriter, r *http.Request) error {
	u, err := s.currentUser(r)
	if err != nil {
		return err
	}
	if err := s.RequestEmailVerification(r.Context(), u.ID); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusAccepted, map[string]string{"status": "a verification link is on its way"})
	return nil
}

func (s *Service) handleResetRequest(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Email string `json:"email"`
	}
	if err := httpx.DecodeJSON(w, r, &body, smallBody); err != nil {
		return err
	}
	if err := s.RequestPasswordReset(r.Context(), body.Email); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusAccepted, map[string]string{
		"status": "if an account uses this address, a reset link is on its way",
	})
	return nil
}

func (s *Service) handleResetConfirm(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}
	if err := httpx.DecodeJSON(w, r, &body, smallBody); err != nil {
		return err
	}
	f := errs.Fields{}
	f.Check(body.Token != "", "token", "is required")
	f.Check(body.Password != "", "password", "is required")
	if err := f.Err(); err != nil {
		return err
	}
	if err := s.ResetPassword(r.Context(), body.Token, body.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- the signed-in user ----

func (s *Service) handleMe(w http.ResponseWriter, r *http.Request) error {
	u, err := s.currentUser(r)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, viewUser(u))
	return nil
}

func (s *Service) handleUpdateMe(w http.ResponseWriter, r *http.Request) error {
	u, err := s.currentUser(r)
	if err != nil {
		return err
	}
	var body struct {
		Name      *string    `json:"name"`
		Phone     *string    `json:"phone"`
		Addresses *[]Address `json:"addresses"`
		StoreName *string    `json:"store_name"`
		// Named so that sending them gets a clear answer rather than
		// "unknown field".
		Email json.RawMessage `json:"email"`
		Role  json.RawMessage `json:"role"`
		Roles json.RawMessage `json:"roles"`
	}
	if err := httpx.DecodeJSON(w, r, &body, profileBody); err != nil {
		return err
	}
	f := errs.Fields{}
	f.Check(body.Email == nil, "email", "cannot be changed here")
	f.Check(body.Role == nil, "role", "cannot be changed here")
	f.Check(body.Roles == nil, "roles", "cannot be changed here")
	if err := f.Err(); err != nil {
		return err
	}
	u, err = s.UpdateProfile(r.Context(), u.ID, ProfileUpdate{Name: body.Name, Phone: body.Phone, Addresses: body.Addresses, StoreName: body.StoreName})
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, viewUser(u))
	return nil
}

func (s *Service) handleChangePassword(w http.ResponseWriter, r *http.Request) error {
	u, err := s.currentUser(r)
	if err != nil {
		return err
	}
	var body struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
	}
	if err := httpx.DecodeJSON(w, r, &body, smallBody); err != nil {
		return err
	}
	f := errs.Fields{}
	f.Check(body.CurrentPassword != "", "current_password", "is required")
	f.Check(len(body.CurrentPassword) <= MaxPasswordBytes, "current_password", "is too long")
	f.Check(body.NewPassword != "", "new_password", "is required")
	if err := f.Err(); err != nil {
		return err
	}
	pair, u, err := s.ChangePassword(r.Context(), u.ID, body.CurrentPassword, body.NewPassword, s.clientAddr(r))
	if err != nil {
		return err
	}
	writeTokens(w, tokenBody(pair, u))
	return nil
}

func (s *Service) handleTOTPStart(w http.ResponseWriter, r *http.Request) error {
	u, err := s.currentUser(r)
	if err != nil {
		return err
	}
	e, err := s.StartTOTP(r.Context(), u.ID)
	if err != nil {
		return err
	}
	writeTokens(w, enrollmentView(e))
	return nil
}

type codeBody struct {
	Code string `json:"code"`
}

func (c codeBody) validate() error {
	if c.Code == "" {
		return errs.Field("code", "is required")
	}
	if len(c.Code) > 16 {
		return errs.Field("code", "is too long")
	}
	return nil
}

func (s *Service) handleTOTPConfirm(w http.ResponseWriter, r *http.Request) error {
	u, err := s.currentUser(r)
	if err != nil {
		return err
	}
	var body codeBody
	if err := httpx.DecodeJSON(w, r, &body, smallBody); err != nil {
		return err
	}
	if err := body.validate(); err != nil {
		return err
	}
	codes, err := s.ConfirmTOTP(r.Context(), u.ID, strings.TrimSpace(body.Code))
	if err != nil {
		return err
	}
	writeTokens(w, map[string]any{"recovery_codes": codes})
	return nil
}

func (s *Service) handleTOTPDisable(w http.ResponseWriter, r *http.Request) error {
	u, err := s.currentUser(r)
	if err != nil {
		return err
	}
	var body struct {
		Password string `json:"password"`
	}
	if err := httpx.DecodeJSON(w, r, &body, smallBody); err != nil {
		return err
	}
	if body.Password == "" {
		return errs.Field("password", "is required")
	}
	if len(body.Password) > MaxPasswordBytes {
		return errs.Field("password", "is too long")
	}
	if err := s.DisableTOTP(r.Context(), u.ID, body.Password, s.clientAddr(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) handleRecoveryCodes(w http.ResponseWriter, r *http.Request) error {
	u, err := s.currentUser(r)
	if err != nil {
		return err
	}
	var body codeBody
	if err := httpx.DecodeJSON(w, r, &body, smallBody); err != nil {
		return err
	}
	if err := body.validate(); err != nil {
		return err
	}
	codes, err := s.RegenerateRecoveryCodes(r.Context(), u.ID, strings.TrimSpace(body.Code))
	if err != nil {
		return err
	}
	writeTokens(w, map[string]any{"recovery_codes": codes})
	return nil
}

// ---- admin ----

// requireAdmin checks the token's role and that the admin account is still
// enabled and still an admin.
func (s *Service) requireAdmin(r *http.Request) (User, error) {
	if _, err := authn.Require(r.Context(), authn.RoleAdmin); err != nil {
		return User{}, err
	}
	u, err := s.currentUser(r)
	if err != nil {
		return User{}, err
	}
	if !u.HasRole(authn.RoleAdmin) {
		return User{}, errs.E(errs.Forbidden, "you are not allowed to do this")
	}
	return u, nil
}

func (s *Service) handleAdminList(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.requireAdmin(r); err != nil {
		return err
	}
	q := r.URL.Query()
	f := UserFilter{Role: q.Get("role"), Email: q.Get("email"), Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLimit {
			return errs.Field("limit", "must be a number between 1 and 100")
		}
		f.Limit = n
	}
	us, next, err := s.ListUsers(r.Context(), f)
	if err != nil {
		return err
	}
	items := make([]userView, len(us))
	for i, u := range us {
		items[i] = viewUser(u)
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": items, "next_cursor": next})
	return nil
}

func (s *Service) handleAdminUpdate(w http.ResponseWriter, r *http.Request) error {
	admin, err := s.requireAdmin(r)
	if err != nil {
		return err
	}
	var body struct {
		Roles     *[]string `json:"roles"`
		Disabled  *bool     `json:"disabled"`
		StoreName *string   `json:"store_name"`
	}
	if err := httpx.DecodeJSON(w, r, &body, smallBody); err != nil {
		return err
	}
	u, err := s.AdminUpdateUser(r.Context(), admin.ID, r.PathValue("id"), AdminUpdate(body))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, viewUser(u))
	return nil
}

// ---- keys ----

func (s *Service) handleJWKS(w http.ResponseWriter, r *http.Request) error {
	body, err := json.Marshal(s.keys.JWKS())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(jwksMaxAge/time.Second)))
	_, _ = w.Write(body)
	return nil
}
