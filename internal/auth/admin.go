package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/svc"
)

// ListUsers returns a page of users for an admin (see Queries.ListUsers).
// Errors: errs.Invalid for a bad filter or cursor.
func (s *Service) ListUsers(ctx context.Context, f UserFilter) ([]User, string, error) {
	fields := errs.Fields{}
	f.Role = strings.TrimSpace(f.Role)
	f.Email = strings.TrimSpace(f.Email)
	fields.Check(f.Role == "" || slices.Contains(allRoles, f.Role), "role", "must be buyer, seller or admin")
	fields.Check(len(f.Email) <= MaxEmailLen, "email", fmt.Sprintf("must be at most %d characters", MaxEmailLen))
	fields.Check(f.Limit >= 0 && f.Limit <= MaxListLimit, "limit", fmt.Sprintf("must be between 1 and %d", MaxListLimit))
	if err := fields.Err(); err != nil {
		return nil, "", err
	}
	if f.Limit == 0 {
		f.Limit = 50
	}
	return s.store.ListUsers(ctx, f)
}

// AdminUpdate is what an admin may change about an account; nil fields stay.
type AdminUpdate struct {
	Roles    *[]string
	Disabled *bool
	// StoreName is required when Roles makes a user without a shop a seller.
	StoreName *string
}

// AdminUpdateUser changes roles or the disabled flag of user id on behalf of
// admin actorID. Disabling ends every session of the user at once (their
// access tokens die within one access-token lifetime) and emits
// user.disabled.
//
// Errors: errs.NotFound, errs.Invalid for bad fields, errs.Conflict when an
// admin would disable themselves or drop their own admin role (which could
// leave nobody able to administer).
func (s *Service) AdminUpdateUser(ctx context.Context, actorID, id string, up AdminUpdate) (User, error) {
	f := errs.Fields{}
	if up.Roles != nil {
		roles := make([]string, len(*up.Roles))
		for i, r := range *up.Roles {
			roles[i] = strings.TrimSpace(r)
		}
		checkRoles(f, roles)
		roles = sortRoles(roles)
		up.Roles = &roles
	}
	if up.StoreName != nil {
		v := strings.TrimSpace(*up.StoreName)
		up.StoreName = &v
		checkText(f, "store_name", v, true, MaxStoreNameLen)
	}
	if up.Roles == nil && up.Disabled == nil && up.StoreName == nil {
		f.Add("roles", "send roles, disabled or store_name")
	}
	if err := f.Err(); err != nil {
		return User{}, err
	}
	if !validID(id) {
		return User{}, notFound("user")
	}
	var u User
	disabledNow := false
	err := s.store.InTx(ctx, func(q *Queries) error {
		var err error
		if u, err = q.UserByID(ctx, id); err != nil {
			return err
		}
		now := s.now()
		if up.Roles != nil {
			if id == actorID && !slices.Contains(*up.Roles, authn.RoleAdmin) {
				return errs.E(errs.Conflict, "you cannot remove your own admin role")
			}
			u.Roles = *up.Roles
		}
		if up.StoreName != nil {
			if u.Seller == nil {
				u.Seller = &SellerProfile{CreatedAt: now}
			}
			u.Seller.StoreName = *up.StoreName
		}
		if u.HasRole(authn.RoleSeller) && u.Seller == nil {
			return errs.Field("store_name", "is required to make this user a seller")
		}
		if up.Disabled != nil && *up.Disabled != u.Disabled {
			if id == actorID && *up.Disabled {
				return errs.E(errs.Conflict, "you cannot disable your own account")
			}
			u.Disabled = *up.Disabled
			disabledNow = u.Disabled
		}
		u.UpdatedAt = now.UTC()
		if err := q.SaveUser(ctx, &u); err != nil {
			return err
		}
		if !disabledNow {
			return nil
		}
		if _, err := q.RevokeUserFamilies(ctx, u.ID, "", revokedDisabled, now); err != nil {
			return err
		}
		for _, p := range []Purpose{PurposeMFALogin, PurposeMFAEnroll, PurposePasswordReset} {
			if err := q.SpendUserTokens(ctx, u.ID, p, now); err != nil {
				return err
			}
		}
		ev, err := userDisabledEvent(ctx, u, now)
		if err != nil {
			return err
		}
		return q.Enqueue(ctx, ev)
	})
	if err != nil {
		return User{}, err
	}
	if disabledNow {
		s.log.InfoContext(ctx, "user disabled", "user_id", u.ID, "by", actorID)
		s.kickRelay()
	}
	return u, nil
}

// CreateAdmin creates an administrator account, for `mallhive users
// create-admin`: email verified, role admin, the password checked against
// the policy. It opens (and migrates) the auth database through env.DB and
// needs no event bus or signing keys. The admin must enrol two-factor
// sign-in at first login when cfg.RequireAdmin2FA is set.
//
// Errors: errs.Invalid for bad input, errs.Conflict when the email is
// registered.
func CreateAdmin(ctx context.Context, env *svc.Env, cfg Config, email, password, name string) (User, error) {
	cfg = cfg.withDefaults()
	email, name = NormalizeEmail(email), strings.TrimSpace(name)
	f := errs.Fields{}
	if err := CheckEmail(email); err != nil {
		f.Add("email", err.(*errs.Error).Fields["email"])
	}
	checkText(f, "name", name, true, MaxNameLen)
	if err := CheckPassword(password, email, name); err != nil {
		var e *errs.Error
		if !errors.As(err, &e) || e.Fields == nil {
			return User{}, err
		}
		f.Add("password", e.Fields["password"])
	}
	if err := f.Err(); err != nil {
		return User{}, err
	}
	if env.DB == nil {
		return User{}, errors.New("create admin: the environment has no database")
	}
	hasher, err := NewHasher(HasherConfig{MaxConcurrent: cfg.HashConcurrency})
	if err != nil {
		return User{}, fmt.Errorf("create admin: %w", err)
	}
	hash, err := hasher.Hash(ctx, password)
	if err != nil {
		return User{}, fmt.Errorf("create admin: %w", err)
	}
	db, err := env.DB(ctx, ServiceName)
	if err != nil {
		return User{}, fmt.Errorf("create admin: open database: %w", err)
	}
	defer db.Close()
	if err := db.Migrate(ctx, events.Migrations, Migrations); err != nil {
		return User{}, fmt.Errorf("create admin: %w", err)
	}
	now := time.Now().UTC()
	u := User{ID: newID(), Email: email, Name: name, Roles: []string{authn.RoleAdmin}, EmailVerified: true,
		Addresses: []Address{}, CreatedAt: now, UpdatedAt: now}
	// No user.registered event: admins are made, not registered (see the
	// events proto), and the CLI runs without the event bus.
	if err := NewStore(db).InTx(ctx, func(q *Queries) error { return q.CreateUser(ctx, &u, hash) }); err != nil {
		if errors.Is(err, ErrEmailTaken) {
			return User{}, errs.E(errs.Conflict, "a user with the email %s exists already", email)
		}
		return User{}, fmt.Errorf("create admin: %w", err)
	}
	if env.Log != nil {
		env.Log.LogAttrs(ctx, slog.LevelInfo, "admin created", slog.String("user_id", u.ID), slog.String("email", u.Email))
	}
	return u, nil
}
