package auth

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

// Bounds the store enforces whatever its callers checked.
const (
	// MaxListLimit bounds one page of the admin user list.
	MaxListLimit = 100
	// MaxBatchIDs bounds UsersByIDs (and the GetUsers RPC).
	MaxBatchIDs = 500
)

// ErrEmailTaken is wrapped by CreateUser when the email is registered.
var ErrEmailTaken = errors.New("email already registered")

// Store is the auth service's SQL store: one code path for SQLite and
// PostgreSQL. Its embedded Queries run outside a transaction; InTx runs a
// group of them, plus outbox events, atomically.
type Store struct {
	*Queries
	db *sqldb.DB
}

// NewStore returns a Store over a migrated database (Migrations and
// events.Migrations).
func NewStore(db *sqldb.DB) *Store {
	return &Store{Queries: &Queries{q: db.DB, dialect: db.Dialect}, db: db}
}

// DB returns the underlying database handle.
func (s *Store) DB() *sqldb.DB { return s.db }

// InTx runs fn in one transaction: every change made through q, and every
// event q.Enqueue'd, commits together or not at all.
func (s *Store) InTx(ctx context.Context, fn func(q *Queries) error) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		return fn(&Queries{q: tx, tx: tx, dialect: s.db.Dialect})
	})
}

type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Queries are the store's statements, over the database or one transaction.
// Methods that look one thing up return an errs.NotFound error when it does
// not exist; conditional updates report whether they changed anything.
type Queries struct {
	q       dbtx
	tx      *sql.Tx // nil outside InTx
	dialect sqldb.Dialect
}

// forUpdate locks the selected rows on PostgreSQL; SQLite's write
// transactions are already exclusive (the driver begins them IMMEDIATE).
func (q *Queries) forUpdate() string {
	if q.dialect == sqldb.Postgres && q.tx != nil {
		return " FOR UPDATE"
	}
	return ""
}

// Enqueue writes events to the outbox in the current transaction. Outside
// InTx it fails: an event must commit with the change it announces.
func (q *Queries) Enqueue(ctx context.Context, evs ...events.Event) error {
	if q.tx == nil {
		return errors.New("enqueue events: not in a transaction")
	}
	return events.Enqueue(ctx, q.tx, evs...)
}

// dbTime is how times are written: UTC, at PostgreSQL's microsecond precision,
// so both engines store and compare the same instants.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return dbTime(*t)
}

func timePtr(nt sql.NullTime) *time.Time {
	if !nt.Valid {
		return nil
	}
	t := nt.Time.UTC()
	return &t
}

func notFound(what string) error { return errs.E(errs.NotFound, "%s not found", what) }

// ---- users ----

// CreateUser inserts u with its roles and seller profile, and its password
// hash when passwordHash is not empty. It returns an errs.Conflict error
// wrapping ErrEmailTaken when the email is registered. A seller slug that is
// taken gets a suffix; the final slug is written back to u.Seller.
func (q *Queries) CreateUser(ctx context.Context, u *User, passwordHash string) error {
	addrs, err := json.Marshal(nonNilAddresses(u.Addresses))
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	_, err = q.q.ExecContext(ctx, `INSERT INTO users (id, email, name, phone, addresses, disabled, email_verified, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		u.ID, u.Email, u.Name, u.Phone, string(addrs), u.Disabled, u.EmailVerified, dbTime(u.CreatedAt), dbTime(u.UpdatedAt))
	if sqldb.IsUniqueViolation(err) {
		return &errs.Error{Code: errs.Conflict, Message: "email already registered", Err: ErrEmailTaken}
	}
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	if err := q.setRoles(ctx, u.ID, u.Roles); err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	if u.Seller != nil {
		if err := q.putSellerProfile(ctx, u.ID, u.Seller); err != nil {
			return fmt.Errorf("create user: %w", err)
		}
	}
	if passwordHash != "" {
		if err := q.SetPassword(ctx, u.ID, passwordHash, u.CreatedAt); err != nil {
			return fmt.Errorf("create user: %w", err)
		}
	}
	return nil
}

func nonNilAddresses(a []Address) []Address {
	if a == nil {
		return []Address{}
	}
	return a
}

func (q *Queries) setRoles(ctx context.Context, userID string, roles []string) error {
	if _, err := q.q.ExecContext(ctx, `DELETE FROM user_roles WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("set roles: %w", err)
	}
	for _, r := range roles {
		if _, err := q.q.ExecContext(ctx, `INSERT INTO user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING`, userID, r); err != nil {
			if sqldb.IsCheckViolation(err) {
				return errs.Field("roles", fmt.Sprintf("unknown role %q", r))
			}
			return fmt.Errorf("set roles: %w", err)
		}
	}
	return nil
}

// putSellerProfile inserts or updates the user's shop. On insert a taken
// slug gets "-2", "-3", ... and finally a random suffix.
func (q *Queries) putSellerProfile(ctx context.Context, userID string, p *SellerProfile) error {
	var existing string
	err := q.q.QueryRowContext(ctx, `SELECT slug FROM seller_profiles WHERE user_id = $1`, userID).Scan(&existing)
	switch {
	case err == nil:
		p.Slug = existing // the slug is the shop's address: it does not follow renames
		if _, err := q.q.ExecContext(ctx, `UPDATE seller_profiles SET store_name = $2 WHERE user_id = $1`, userID, p.StoreName); err != nil {
			return fmt.Errorf("update seller profile: %w", err)
		}
		return nil
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("read seller profile: %w", err)
	}
	base := p.Slug
	if base == "" {
		base = slugify(p.StoreName)
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = time.Now()
	}
	for i := 1; i <= 6; i++ {
		slug := base
		switch {
		case i == 6:
			slug = base + "-" + randomSuffix()
		case i > 1:
			slug = fmt.Sprintf("%s-%d", base, i)
		}
		// ON CONFLICT DO NOTHING keeps a PostgreSQL transaction usable
		// after a collision, where a failed INSERT would abort it.
		res, err := q.q.ExecContext(ctx, `INSERT INTO seller_profiles (user_id, store_name, slug, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (slug) DO NOTHING`, userID, p.StoreName, slug, dbTime(p.CreatedAt))
		if err != nil {
			return fmt.Errorf("insert seller profile: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			p.Slug = slug
			return nil
		}
	}
	return errs.E(errs.Conflict, "could not find a free address for this store name; try another")
}

const userColumns = `id, email, name, phone, addresses, disabled, email_verified, created_at, updated_at`

func scanUser(sc interface{ Scan(...any) error }) (User, error) {
	var u User
	var addrs string
	if err := sc.Scan(&u.ID, &u.Email, &u.Name, &u.Phone, &addrs, &u.Disabled, &u.EmailVerified, &u.CreatedAt, &u.UpdatedAt); err != nil {
		return User{}, err
	}
	if err := json.Unmarshal([]byte(addrs), &u.Addresses); err != nil {
		return User{}, fmt.Errorf("decode addresses of %s: %w", u.ID, err)
	}
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return u, nil
}

func (q *Queries) oneUser(ctx context.Context, where string, arg any) (User, error) {
	row := q.q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE `+where+q.forUpdate(), arg)
	u, err := scanUser(row)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, notFound("user")
	}
	if err != nil {
		return User{}, fmt.Errorf("read user: %w", err)
	}
	us := []User{u}
	if err := q.loadDetails(ctx, us); err != nil {
		return User{}, err
	}
	return us[0], nil
}

// UserByID returns the user with the given id (locked for update inside a
// PostgreSQL transaction). Errors: errs.NotFound.
func (q *Queries) UserByID(ctx context.Context, id string) (User, error) {
	return q.oneUser(ctx, `id = $1`, id)
}

// UserByEmail returns the user with the given (normalised) email.
// Errors: errs.NotFound.
func (q *Queries) UserByEmail(ctx context.Context, email string) (User, error) {
	return q.oneUser(ctx, `email = $1`, email)
}

// UsersByIDs returns the users among ids that exist, in id order. At most
// MaxBatchIDs ids are accepted (errs.Invalid beyond).
func (q *Queries) UsersByIDs(ctx context.Context, ids []string) ([]User, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if len(ids) > MaxBatchIDs {
		return nil, errs.Field("ids", fmt.Sprintf("at most %d ids", MaxBatchIDs))
	}
	ph, args := placeholders(1, ids)
	rows, err := q.q.QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE id IN (`+ph+`) ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	return q.collectUsers(ctx, rows)
}

func (q *Queries) collectUsers(ctx context.Context, rows *sql.Rows) ([]User, error) {
	var us []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("read users: %w", err)
		}
		us = append(us, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	if err := q.loadDetails(ctx, us); err != nil {
		return nil, err
	}
	return us, nil
}

// placeholders returns "$n, $n+1, ..." for the values, and the values as args.
func placeholders(start int, vals []string) (string, []any) {
	var b strings.Builder
	args := make([]any, len(vals))
	for i, v := range vals {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", start+i)
		args[i] = v
	}
	return b.String(), args
}

// loadDetails fills roles, seller profiles and the TOTP flag of us.
func (q *Queries) loadDetails(ctx context.Context, us []User) error {
	if len(us) == 0 {
		return nil
	}
	idx := make(map[string]*User, len(us))
	ids := make([]string, len(us))
	for i := range us {
		idx[us[i].ID] = &us[i]
		ids[i] = us[i].ID
		us[i].Roles = []string{}
	}
	ph, args := placeholders(1, ids)

	rows, err := q.q.QueryContext(ctx, `SELECT user_id, role FROM user_roles WHERE user_id IN (`+ph+`) ORDER BY user_id, role`, args...)
	if err != nil {
		return fmt.Errorf("read roles: %w", err)
	}
	for rows.Next() {
		var id, role string
		if err := rows.Scan(&id, &role); err != nil {
			rows.Close()
			return fmt.Errorf("read roles: %w", err)
		}
		idx[id].Roles = append(idx[id].Roles, role)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read roles: %w", err)
	}
	for i := range us {
		us[i].Roles = sortRoles(us[i].Roles)
	}

	rows, err = q.q.QueryContext(ctx, `SELECT user_id, store_name, slug, created_at FROM seller_profiles WHERE user_id IN (`+ph+`)`, args...)
	if err != nil {
		return fmt.Errorf("read seller profiles: %w", err)
	}
	for rows.Next() {
		var id string
		var p SellerProfile
		if err := rows.Scan(&id, &p.StoreName, &p.Slug, &p.CreatedAt); err != nil {
			rows.Close()
			return fmt.Errorf("read seller profiles: %w", err)
		}
		p.CreatedAt = p.CreatedAt.UTC()
		idx[id].Seller = &p
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read seller profiles: %w", err)
	}

	rows, err = q.q.QueryContext(ctx, `SELECT user_id FROM totp_secrets WHERE enabled AND user_id IN (`+ph+`)`, args...)
	if err != nil {
		return fmt.Errorf("read totp flags: %w", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("read totp flags: %w", err)
		}
		idx[id].TOTPEnabled = true
	}
	rows.Close()
	return rows.Err()
}

// ListUsers returns one page of users, newest first, and the cursor of the
// next page ("" on the last). Errors: errs.Invalid for a malformed cursor.
func (q *Queries) ListUsers(ctx context.Context, f UserFilter) ([]User, string, error) {
	limit := f.Limit
	if limit <= 0 || limit > MaxListLimit {
		limit = MaxListLimit
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Cursor != "" {
		after, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "id < "+arg(after))
	}
	if f.Role != "" {
		where = append(where, "EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = users.id AND r.role = "+arg(f.Role)+")")
	}
	if f.Email != "" {
		where = append(where, `email LIKE `+arg("%"+escapeLike(strings.ToLower(f.Email))+"%")+` ESCAPE '\'`)
	}
	query := `SELECT ` + userColumns + ` FROM users`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY id DESC LIMIT ` + arg(limit+1)
	rows, err := q.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list users: %w", err)
	}
	us, err := q.collectUsers(ctx, rows)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(us) > limit {
		us = us[:limit]
		next = encodeCursor(us[limit-1].ID)
	}
	return us, next, nil
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// SaveUser writes u's profile, flags, roles and seller profile (the email
// and the creation time are never changed). Errors: errs.NotFound.
func (q *Queries) SaveUser(ctx context.Context, u *User) error {
	addrs, err := json.Marshal(nonNilAddresses(u.Addresses))
	if err != nil {
		return fmt.Errorf("save user: %w", err)
	}
	res, err := q.q.ExecContext(ctx, `UPDATE users SET name = $2, phone = $3, addresses = $4, disabled = $5, email_verified = $6, updated_at = $7
		WHERE id = $1`, u.ID, u.Name, u.Phone, string(addrs), u.Disabled, u.EmailVerified, dbTime(u.UpdatedAt))
	if err != nil {
		return fmt.Errorf("save user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("user")
	}
	if err := q.setRoles(ctx, u.ID, u.Roles); err != nil {
		return fmt.Errorf("save user: %w", err)
	}
	if u.Seller != nil {
		if err := q.putSellerProfile(ctx, u.ID, u.Seller); err != nil {
			return fmt.Errorf("save user: %w", err)
		}
	}
	return nil
}

// ---- passwords ----

// SetPassword stores the password hash of a user.
func (q *Queries) SetPassword(ctx context.Context, userID, hash string, now time.Time) error {
	_, err := q.q.ExecContext(ctx, `INSERT INTO passwords (user_id, hash, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at`, userID, hash, dbTime(now))
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	return nil
}

// PasswordHash returns a user's password hash. Errors: errs.NotFound when
// the user has no password.
func (q *Queries) PasswordHash(ctx context.Context, userID string) (string, error) {
	var h string
	err := q.q.QueryRowContext(ctx, `SELECT hash FROM passwords WHERE user_id = $1`, userID).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("password")
	}
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return h, nil
}

// ---- sessions ----

// CreateFamily starts a sign-in session.
func (q *Queries) CreateFamily(ctx context.Context, f Family) error {
	_, err := q.q.ExecContext(ctx, `INSERT INTO refresh_families (id, user_id, client_id, scope, auth_time, created_at, expires_at, last_used_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		f.ID, f.UserID, f.ClientID, f.Scope, dbTime(f.AuthTime), dbTime(f.CreatedAt), dbTime(f.ExpiresAt), dbTime(f.LastUsedAt))
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

const familyColumns = `id, user_id, client_id, scope, auth_time, created_at, expires_at, last_used_at, revoked_at, revoked_reason`

func scanFamily(sc interface{ Scan(...any) error }) (Family, error) {
	var f Family
	var revoked sql.NullTime
	if err := sc.Scan(&f.ID, &f.UserID, &f.ClientID, &f.Scope, &f.AuthTime, &f.CreatedAt, &f.ExpiresAt, &f.LastUsedAt, &revoked, &f.RevokedReason); err != nil {
		return Family{}, err
	}
	f.AuthTime, f.CreatedAt, f.ExpiresAt, f.LastUsedAt = f.AuthTime.UTC(), f.CreatedAt.UTC(), f.ExpiresAt.UTC(), f.LastUsedAt.UTC()
	f.RevokedAt = timePtr(revoked)
	return f, nil
}

// Family returns a session. Errors: errs.NotFound.
func (q *Queries) Family(ctx context.Context, id string) (Family, error) {
	f, err := scanFamily(q.q.QueryRowContext(ctx, `SELECT `+familyColumns+` FROM refresh_families WHERE id = $1`+q.forUpdate(), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Family{}, notFound("session")
	}
	if err != nil {
		return Family{}, fmt.Errorf("read session: %w", err)
	}
	return f, nil
}

// UserFamilies returns a user's sessions that are active at now, newest
// first.
func (q *Queries) UserFamilies(ctx context.Context, userID string, now time.Time) ([]Family, error) {
	rows, err := q.q.QueryContext(ctx, `SELECT `+familyColumns+` FROM refresh_families
		WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC, id DESC`, userID, dbTime(now))
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	defer rows.Close()
	var fs []Family
	for rows.Next() {
		f, err := scanFamily(rows)
		if err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		fs = append(fs, f)
	}
	return fs, rows.Err()
}

// AddRefreshToken stores a new (unspent) refresh token of a family.
func (q *Queries) AddRefreshToken(ctx context.Context, t RefreshToken) error {
	_, err := q.q.ExecContext(ctx, `INSERT INTO refresh_tokens (hash, family_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
		t.Hash, t.FamilyID, dbTime(t.CreatedAt), dbTime(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("store refresh token: %w", err)
	}
	return nil
}

// RefreshToken returns a refresh token by hash, with its family.
// Errors: errs.NotFound.
func (q *Queries) RefreshToken(ctx context.Context, hash string) (RefreshToken, Family, error) {
	var t RefreshToken
	var used sql.NullTime
	err := q.q.QueryRowContext(ctx, `SELECT hash, family_id, created_at, expires_at, used_at FROM refresh_tokens WHERE hash = $1`, hash).
		Scan(&t.Hash, &t.FamilyID, &t.CreatedAt, &t.ExpiresAt, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return RefreshToken{}, Family{}, notFound("refresh token")
	}
	if err != nil {
		return RefreshToken{}, Family{}, fmt.Errorf("read refresh token: %w", err)
	}
	t.CreatedAt, t.ExpiresAt, t.UsedAt = t.CreatedAt.UTC(), t.ExpiresAt.UTC(), timePtr(used)
	f, err := q.Family(ctx, t.FamilyID)
	if err != nil {
		return RefreshToken{}, Family{}, err
	}
	return t, f, nil
}

// SpendRefreshToken marks an unspent token spent; false means it was spent
// already (by a concurrent exchange, or earlier: reuse).
func (q *Queries) SpendRefreshToken(ctx context.Context, hash string, now time.Time) (bool, error) {
	res, err := q.q.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = $2 WHERE hash = $1 AND used_at IS NULL`, hash, dbTime(now))
	if err != nil {
		return false, fmt.Errorf("spend refresh token: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// TouchFamily records a use of a session.
func (q *Queries) TouchFamily(ctx context.Context, id string, now time.Time) error {
	if _, err := q.q.ExecContext(ctx, `UPDATE refresh_families SET last_used_at = $2 WHERE id = $1`, id, dbTime(now)); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// RevokeFamily ends a session; false means it was already revoked or does
// not exist.
func (q *Queries) RevokeFamily(ctx context.Context, id, reason string, now time.Time) (bool, error) {
	res, err := q.q.ExecContext(ctx, `UPDATE refresh_families SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL`,
		id, dbTime(now), reason)
	if err != nil {
		return false, fmt.Errorf("revoke session: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// RevokeUserFamilies ends every session of a user except keepID (when not
// empty) and returns how many it ended.
func (q *Queries) RevokeUserFamilies(ctx context.Context, userID, keepID, reason string, now time.Time) (int64, error) {
	res, err := q.q.ExecContext(ctx, `UPDATE refresh_families SET revoked_at = $2, revoked_reason = $3
		WHERE user_id = $1 AND revoked_at IS NULL AND id <> $4`, userID, dbTime(now), reason, keepID)
	if err != nil {
		return 0, fmt.Errorf("revoke sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// ---- one-time tokens ----

// CreateOneTimeToken stores a single-use token.
func (q *Queries) CreateOneTimeToken(ctx context.Context, t OneTimeToken) error {
	_, err := q.q.ExecContext(ctx, `INSERT INTO one_time_tokens (hash, user_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		t.Hash, t.UserID, string(t.Purpose), dbTime(t.CreatedAt), dbTime(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("store %s token: %w", t.Purpose, err)
	}
	return nil
}

// OneTimeToken returns a token by hash and purpose, spent or not.
// Errors: errs.NotFound (also when the purpose differs).
func (q *Queries) OneTimeToken(ctx context.Context, hash string, p Purpose) (OneTimeToken, error) {
	var t OneTimeToken
	var purpose string
	var used sql.NullTime
	err := q.q.QueryRowContext(ctx, `SELECT hash, user_id, purpose, created_at, expires_at, used_at, attempts FROM one_time_tokens
		WHERE hash = $1 AND purpose = $2`+q.forUpdate(), hash, string(p)).
		Scan(&t.Hash, &t.UserID, &purpose, &t.CreatedAt, &t.ExpiresAt, &used, &t.Attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return OneTimeToken{}, notFound("token")
	}
	if err != nil {
		return OneTimeToken{}, fmt.Errorf("read token: %w", err)
	}
	t.Purpose, t.CreatedAt, t.ExpiresAt, t.UsedAt = Purpose(purpose), t.CreatedAt.UTC(), t.ExpiresAt.UTC(), timePtr(used)
	return t, nil
}

// UseOneTimeToken spends a token that is unspent and unexpired at now;
// false means it was not (spent, expired, or unknown).
func (q *Queries) UseOneTimeToken(ctx context.Context, hash string, p Purpose, now time.Time) (bool, error) {
	res, err := q.q.ExecContext(ctx, `UPDATE one_time_tokens SET used_at = $3
		WHERE hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3`, hash, string(p), dbTime(now))
	if err != nil {
		return false, fmt.Errorf("use token: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// CountTokenAttempt adds one failed attempt to a token and returns the
// total.
func (q *Queries) CountTokenAttempt(ctx context.Context, hash string) (int, error) {
	var n int
	err := q.q.QueryRowContext(ctx, `UPDATE one_time_tokens SET attempts = attempts + 1 WHERE hash = $1 RETURNING attempts`, hash).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, notFound("token")
	}
	if err != nil {
		return 0, fmt.Errorf("count token attempt: %w", err)
	}
	return n, nil
}

// SpendUserTokens spends every unspent token of a user with the given
// purpose (after a reset, the other reset links die too).
func (q *Queries) SpendUserTokens(ctx context.Context, userID string, p Purpose, now time.Time) error {
	_, err := q.q.ExecContext(ctx, `UPDATE one_time_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL`,
		userID, string(p), dbTime(now))
	if err != nil {
		return fmt.Errorf("spend tokens: %w", err)
	}
	return nil
}

// ---- TOTP and recovery codes ----

// TOTP returns a user's TOTP state. Errors: errs.NotFound when the user has
// neither enrolled nor started to.
func (q *Queries) TOTP(ctx context.Context, userID string) (TOTPState, error) {
	var s TOTPState
	err := q.q.QueryRowContext(ctx, `SELECT secret, enabled, last_step FROM totp_secrets WHERE user_id = $1`+q.forUpdate(), userID).
		Scan(&s.Secret, &s.Enabled, &s.LastStep)
	if errors.Is(err, sql.ErrNoRows) {
		return TOTPState{}, notFound("two-factor enrolment")
	}
	if err != nil {
		return TOTPState{}, fmt.Errorf("read totp: %w", err)
	}
	return s, nil
}

// PutPendingTOTP starts (or restarts) an enrolment with a new secret.
// Errors: errs.Conflict when TOTP is already enabled.
func (q *Queries) PutPendingTOTP(ctx context.Context, userID, secret string, now time.Time) error {
	res, err := q.q.ExecContext(ctx, `INSERT INTO totp_secrets (user_id, secret, enabled, last_step, created_at) VALUES ($1, $2, FALSE, 0, $3)
		ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, last_step = 0, created_at = excluded.created_at
		WHERE NOT totp_secrets.enabled`, userID, secret, dbTime(now))
	if err != nil {
		return fmt.Errorf("store totp secret: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.E(errs.Conflict, "two-factor sign-in is already enabled")
	}
	return nil
}

// EnableTOTP turns a pending enrolment on, recording the step of the code
// that confirmed it; false means there was no pending enrolment.
func (q *Queries) EnableTOTP(ctx context.Context, userID string, step int64, now time.Time) (bool, error) {
	res, err := q.q.ExecContext(ctx, `UPDATE totp_secrets SET enabled = TRUE, last_step = $2, enabled_at = $3
		WHERE user_id = $1 AND NOT enabled`, userID, step, dbTime(now))
	if err != nil {
		return false, fmt.Errorf("enable totp: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// AdvanceTOTPStep records that a code of the given step was accepted; false
// means a code of this or a later step was accepted before (a replay).
func (q *Queries) AdvanceTOTPStep(ctx context.Context, userID string, step int64) (bool, error) {
	res, err := q.q.ExecContext(ctx, `UPDATE totp_secrets SET last_step = $2 WHERE user_id = $1 AND enabled AND last_step < $2`, userID, step)
	if err != nil {
		return false, fmt.Errorf("advance totp step: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// DeleteTOTP turns two-factor sign-in off: the secret and the recovery
// codes go.
func (q *Queries) DeleteTOTP(ctx context.Context, userID string) error {
	if _, err := q.q.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("delete recovery codes: %w", err)
	}
	if _, err := q.q.ExecContext(ctx, `DELETE FROM totp_secrets WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("delete totp: %w", err)
	}
	return nil
}

// ReplaceRecoveryCodes swaps a user's recovery codes for new ones (hashes).
func (q *Queries) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string) error {
	if _, err := q.q.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("replace recovery codes: %w", err)
	}
	for _, h := range hashes {
		if _, err := q.q.ExecContext(ctx, `INSERT INTO recovery_codes (user_id, hash) VALUES ($1, $2)`, userID, h); err != nil {
			return fmt.Errorf("replace recovery codes: %w", err)
		}
	}
	return nil
}

// UseRecoveryCode spends an unspent recovery code; false means no such
// unspent code.
func (q *Queries) UseRecoveryCode(ctx context.Context, userID, hash string, now time.Time) (bool, error) {
	res, err := q.q.ExecContext(ctx, `UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND hash = $2 AND used_at IS NULL`,
		userID, hash, dbTime(now))
	if err != nil {
		return false, fmt.Errorf("use recovery code: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// unusedRecoveryHashes lists the hashes of a user's unspent recovery codes.
func (q *Queries) unusedRecoveryHashes(ctx context.Context, userID string) ([]string, error) {
	rows, err := q.q.QueryContext(ctx, `SELECT hash FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL ORDER BY hash`, userID)
	if err != nil {
		return nil, fmt.Errorf("read recovery codes: %w", err)
	}
	defer rows.Close()
	var hs []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("read recovery codes: %w", err)
		}
		hs = append(hs, h)
	}
	return hs, rows.Err()
}

// RecoveryCodesLeft counts a user's unspent recovery codes.
func (q *Queries) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	var n int
	if err := q.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL`, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count recovery codes: %w", err)
	}
	return n, nil
}

// ---- login throttle ----

// ThrottleEntry is the failure count behind one throttle key.
type ThrottleEntry struct {
	Failures    int
	LastFailure time.Time
}

// ThrottleEntries returns the entries of the keys that have any.
func (q *Queries) ThrottleEntries(ctx context.Context, keys ...string) (map[string]ThrottleEntry, error) {
	out := make(map[string]ThrottleEntry, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	ph, args := placeholders(1, keys)
	rows, err := q.q.QueryContext(ctx, `SELECT key, failures, last_failure FROM login_throttle WHERE key IN (`+ph+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("read throttle: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var e ThrottleEntry
		if err := rows.Scan(&k, &e.Failures, &e.LastFailure); err != nil {
			return nil, fmt.Errorf("read throttle: %w", err)
		}
		e.LastFailure = e.LastFailure.UTC()
		out[k] = e
	}
	return out, rows.Err()
}

// ThrottleFail counts a failure against key at now. A count whose last
// failure is older than forgetBefore starts again from one.
func (q *Queries) ThrottleFail(ctx context.Context, key string, now, forgetBefore time.Time) error {
	_, err := q.q.ExecContext(ctx, `INSERT INTO login_throttle (key, failures, last_failure) VALUES ($1, 1, $2)
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN login_throttle.last_failure < $3 THEN 1 ELSE login_throttle.failures + 1 END,
			last_failure = excluded.last_failure`, key, dbTime(now), dbTime(forgetBefore))
	if err != nil {
		return fmt.Errorf("count login failure: %w", err)
	}
	return nil
}

// ThrottleReset forgets the failures of key.
func (q *Queries) ThrottleReset(ctx context.Context, key string) error {
	if _, err := q.q.ExecContext(ctx, `DELETE FROM login_throttle WHERE key = $1`, key); err != nil {
		return fmt.Errorf("reset login failures: %w", err)
	}
	return nil
}

// ---- housekeeping ----

// Sweep deletes what can no longer matter at now: throttle entries whose
// last failure is before forgetBefore, one-time tokens expired for a day,
// and sessions ended (expired or revoked) for a day, with their tokens.
func (q *Queries) Sweep(ctx context.Context, now, forgetBefore time.Time) (int64, error) {
	dayAgo := dbTime(now.Add(-24 * time.Hour))
	var total int64
	for _, stmt := range []struct {
		sql string
		arg time.Time
	}{
		{`DELETE FROM login_throttle WHERE last_failure < $1`, dbTime(forgetBefore)},
		{`DELETE FROM one_time_tokens WHERE expires_at < $1`, dayAgo},
		{`DELETE FROM refresh_tokens WHERE family_id IN (SELECT id FROM refresh_families WHERE expires_at < $1 OR revoked_at < $1)`, dayAgo},
		{`DELETE FROM refresh_families WHERE expires_at < $1 OR revoked_at < $1`, dayAgo},
	} {
		res, err := q.q.ExecContext(ctx, stmt.sql, stmt.arg)
		if err != nil {
			return total, fmt.Errorf("sweep: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}
