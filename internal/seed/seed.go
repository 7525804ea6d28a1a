// Package seed fills a running MallHive with a believable marketplace: an
// admin, demo accounts, sellers with stores, buyers with addresses, a
// category tree, and products with variants, prices, generated images and
// stock. It works only through the public REST API (plus the admin-creation
// hook, which needs the auth database), so it runs against either shape and
// exercises the paths real clients use.
//
// Every account it creates lives under demo.mallhive.dev and every password
// it documents starts with "demo-only:": they are for trying MallHive out,
// never for a marketplace with real users.
package seed

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/schollz/progressbar/v3"

	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/money"
)

// The demo accounts. Their passwords are public (they are printed at
// start-up and listed in the README), so they are demo-only.
const (
	demoDomain = "demo.mallhive.dev"

	DemoAdminEmail     = "admin@" + demoDomain
	DemoAdminPassword  = "demo-only: amber lantern harbour"
	DemoSellerEmail    = "seller@" + demoDomain
	DemoSellerPassword = "demo-only: copper meadow falcon"
	DemoBuyerEmail     = "buyer@" + demoDomain
	DemoBuyerPassword  = "demo-only: velvet orchard tide"
)

// ErrAlreadySeeded is returned (wrapped) by Run when the marketplace has
// been seeded before: the admin or a demo account exists already.
var ErrAlreadySeeded = errors.New("the marketplace is already seeded")

// Options says how big a marketplace to make. Zero fields take defaults.
type Options struct {
	// Products is how many products to create (default 2000).
	Products int
	// Sellers counts the demo seller (default 12).
	Sellers int
	// Buyers counts the demo buyer (default 5).
	Buyers int
	// Concurrency is how many requests run at once (default 4).
	Concurrency int
	// Seed makes the generated data repeatable: one seed, one marketplace.
	Seed int64
	// AdminEmail and AdminPassword are the admin account Run creates
	// (default DemoAdminEmail and DemoAdminPassword). A custom email needs
	// a password.
	AdminEmail    string
	AdminPassword string
}

func (o Options) withDefaults() (Options, error) {
	if o.Products == 0 {
		o.Products = 2000
	}
	if o.Sellers == 0 {
		o.Sellers = 12
	}
	if o.Buyers == 0 {
		o.Buyers = 5
	}
	if o.Concurrency == 0 {
		o.Concurrency = 4
	}
	var problems []string
	if o.AdminEmail == "" {
		o.AdminEmail = DemoAdminEmail
		if o.AdminPassword == "" {
			o.AdminPassword = DemoAdminPassword
		}
	}
	if o.AdminPassword == "" {
		problems = append(problems, "an admin email needs an admin password")
	}
	if o.Products < 0 || o.Products > 1_000_000 {
		problems = append(problems, "products must be between 1 and 1000000")
	}
	if o.Sellers < 0 || o.Sellers > 1000 {
		problems = append(problems, "sellers must be between 1 and 1000")
	}
	if o.Buyers < 0 || o.Buyers > 10_000 {
		problems = append(problems, "buyers must be between 1 and 10000")
	}
	if o.Concurrency < 0 || o.Concurrency > 64 {
		problems = append(problems, "concurrency must be between 1 and 64")
	}
	if len(problems) > 0 {
		return o, fmt.Errorf("seed options: %s", strings.Join(problems, "; "))
	}
	return o, nil
}

// Account is a sign-in of a seeded account.
type Account struct {
	Email    string
	Password string
	Name     string
}

// Accounts are the sign-ins Run reports for printing: the admin, the demo
// seller and the demo buyer. AdminTOTPSecret and AdminRecoveryCodes are the
// admin's second factor, enrolled by Run (empty when the server does not
// require it of admins).
type Accounts struct {
	Admin, Seller, Buyer Account
	AdminTOTPSecret      string
	AdminRecoveryCodes   []string
}

// Summary renders the accounts for a start-up banner, flagged demo-only.
func (a Accounts) Summary() string {
	var b strings.Builder
	b.WriteString("Demo accounts (DEMO ONLY: these passwords are public; never use them on a real marketplace):\n")
	for _, r := range []struct {
		role string
		acc  Account
	}{{"admin", a.Admin}, {"seller", a.Seller}, {"buyer", a.Buyer}} {
		fmt.Fprintf(&b, "  %-7s %-28s password %q\n", r.role, r.acc.Email, r.acc.Password)
	}
	if a.AdminTOTPSecret != "" {
		fmt.Fprintf(&b, "  admin two-factor: TOTP secret %s (add it to an authenticator app)\n", a.AdminTOTPSecret)
		fmt.Fprintf(&b, "  admin recovery codes: %s\n", strings.Join(a.AdminRecoveryCodes, " "))
	}
	return b.String()
}

// Run seeds the MallHive process at baseURL. createAdmin makes the admin
// account (the caller wires auth.CreateAdmin, which needs the auth database
// rather than HTTP); everything else goes through the REST API:
//
//  1. the admin signs in and enrols TOTP when the server requires it;
//  2. the demo seller and buyer and opts.Sellers-1 sellers and
//     opts.Buyers-1 buyers register and sign in; buyers get an address;
//  3. the admin creates the category tree (reusing categories whose slugs
//     exist);
//  4. sellers create opts.Products active products, each with an uploaded
//     PNG and stock for every variant, opts.Concurrency at a time, with a
//     progress bar on progress (which may be io.Discard or nil).
//
// Requests answered 429 are retried after Retry-After and 503 with
// backoff; any other error status stops Run with an *APIError carrying the
// problem document. Run returns an error wrapping ErrAlreadySeeded, having
// changed nothing, when the admin exists already, and wrapping it too when
// a demo or generated account turns out to exist.
func Run(ctx context.Context, baseURL string, createAdmin func(ctx context.Context, email, password, name string) error,
	opts Options, progress io.Writer) (Accounts, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Accounts{}, err
	}
	if progress == nil {
		progress = io.Discard
	}
	if u, err := url.Parse(baseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Accounts{}, fmt.Errorf("seed: bad base URL %q", baseURL)
	}
	started := time.Now()
	p := newPlan(opts)
	c := newClient(baseURL, opts.Concurrency)

	adminName := "Administrator"
	if opts.AdminEmail == DemoAdminEmail {
		adminName = "Demo Admin"
	}
	out := Accounts{
		Admin:  Account{Email: opts.AdminEmail, Password: opts.AdminPassword, Name: adminName},
		Seller: p.sellers[0].Account,
		Buyer:  p.buyers[0].Account,
	}

	fmt.Fprintf(progress, "seed: creating the admin %s\n", opts.AdminEmail)
	if err := createAdmin(ctx, opts.AdminEmail, opts.AdminPassword, adminName); err != nil {
		if errs.Is(err, errs.Conflict) {
			return Accounts{}, fmt.Errorf("seed: %w (the admin %s exists; to seed again, start from an empty data directory)",
				ErrAlreadySeeded, opts.AdminEmail)
		}
		return Accounts{}, fmt.Errorf("seed: create admin: %w", err)
	}
	admin, err := signInAdmin(ctx, c, &out)
	if err != nil {
		return Accounts{}, fmt.Errorf("seed: admin sign-in: %w", err)
	}

	fmt.Fprintf(progress, "seed: creating %d sellers and %d buyers\n", len(p.sellers), len(p.buyers))
	sellers, err := createAccounts(ctx, c, p, opts.Concurrency)
	if err != nil {
		return Accounts{}, fmt.Errorf("seed: %w", err)
	}

	fmt.Fprintf(progress, "seed: creating the category tree\n")
	catIDs, err := createCategories(ctx, c, admin)
	if err != nil {
		return Accounts{}, fmt.Errorf("seed: categories: %w", err)
	}

	bar := progressbar.NewOptions(len(p.products),
		progressbar.OptionSetWriter(progress),
		progressbar.OptionSetDescription("seed: products"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(progress) }),
	)
	err = parallel(ctx, len(p.products), opts.Concurrency, func(ctx context.Context, i int) error {
		ps := &p.products[i]
		if err := createProduct(ctx, c, sellers[ps.Seller], catIDs[ps.Dept][ps.Cat], ps); err != nil {
			return fmt.Errorf("product %q: %w", ps.Title, err)
		}
		_ = bar.Add(1)
		return nil
	})
	if err != nil {
		return Accounts{}, fmt.Errorf("seed: %w", err)
	}
	_ = bar.Finish()
	fmt.Fprintf(progress, "seed: %d products from %d sellers in %d departments, %d buyers, in %s\n",
		len(p.products), len(p.sellers), len(departments), len(p.buyers), time.Since(started).Round(100*time.Millisecond))
	return out, nil
}

// loginAnswer is a sign-in answer: tokens or a second-factor challenge.
type loginAnswer struct {
	tokens
	MFARequired           bool   `json:"mfa_required"`
	MFAEnrollmentRequired bool   `json:"mfa_enrollment_required"`
	MFAToken              string `json:"mfa_token"`
}

func login(ctx context.Context, c *client, email, password string) (loginAnswer, error) {
	var a loginAnswer
	_, err := c.json(ctx, http.MethodPost, "/api/v1/auth/login", nil,
		map[string]string{"email": email, "password": password}, &a)
	return a, err
}

// signInAdmin signs the new admin in, enrolling TOTP when asked to, and
// records the secret and recovery codes in out.
func signInAdmin(ctx context.Context, c *client, out *Accounts) (*session, error) {
	a, err := login(ctx, c, out.Admin.Email, out.Admin.Password)
	if err != nil {
		return nil, err
	}
	switch {
	case a.MFARequired:
		return nil, fmt.Errorf("%w (the admin %s has two-factor sign-in already)", ErrAlreadySeeded, out.Admin.Email)
	case !a.MFAEnrollmentRequired:
		return newSession(c, a.tokens), nil
	}
	var e struct {
		Secret string `json:"secret"`
	}
	if _, err := c.json(ctx, http.MethodPost, "/api/v1/auth/login/mfa/enroll", nil,
		map[string]string{"mfa_token": a.MFAToken}, &e); err != nil {
		return nil, err
	}
	code, err := totp.GenerateCode(e.Secret, time.Now())
	if err != nil {
		return nil, fmt.Errorf("TOTP code: %w", err)
	}
	var t tokens
	if _, err := c.json(ctx, http.MethodPost, "/api/v1/auth/login/mfa/enroll/confirm", nil,
		map[string]string{"mfa_token": a.MFAToken, "code": code}, &t); err != nil {
		return nil, err
	}
	out.AdminTOTPSecret, out.AdminRecoveryCodes = e.Secret, t.RecoveryCodes
	return newSession(c, t), nil
}

// createAccounts registers and signs in every seller and buyer, gives
// buyers their address, and returns the sellers' sessions.
func createAccounts(ctx context.Context, c *client, p plan, concurrency int) ([]*session, error) {
	sellers := make([]*session, len(p.sellers))
	n := len(p.sellers) + len(p.buyers)
	err := parallel(ctx, n, concurrency, func(ctx context.Context, i int) error {
		if i < len(p.sellers) {
			s := &p.sellers[i]
			sess, err := register(ctx, c, s.Account, "seller", s.StoreName)
			sellers[i] = sess
			return err
		}
		b := &p.buyers[i-len(p.sellers)]
		sess, err := register(ctx, c, b.Account, "buyer", "")
		if err != nil {
			return err
		}
		_, err = c.json(ctx, http.MethodPatch, "/api/v1/users/me", sess,
			map[string]any{"addresses": []address{b.Address}}, nil)
		if err != nil {
			return fmt.Errorf("address of %s: %w", b.Email, err)
		}
		return nil
	})
	return sellers, err
}

// register creates an account and signs in. Registering a taken email
// answers like a new one (auth reveals no emails), so a sign-in that fails
// or lands on another user id means the account existed before.
func register(ctx context.Context, c *client, acc Account, role, store string) (*session, error) {
	if acc.Password == "" {
		acc.Password = randomPassword()
	}
	body := map[string]string{"email": acc.Email, "password": acc.Password, "name": acc.Name, "role": role}
	if store != "" {
		body["store_name"] = store
	}
	var u struct {
		ID string `json:"id"`
	}
	if _, err := c.json(ctx, http.MethodPost, "/api/v1/auth/register", nil, body, &u); err != nil {
		return nil, fmt.Errorf("register %s: %w", acc.Email, err)
	}
	a, err := login(ctx, c, acc.Email, acc.Password)
	var apiErr *APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized:
		return nil, fmt.Errorf("%w (the account %s exists)", ErrAlreadySeeded, acc.Email)
	case err != nil:
		return nil, fmt.Errorf("sign in as %s: %w", acc.Email, err)
	case a.MFARequired || a.MFAEnrollmentRequired || a.User.ID != u.ID:
		return nil, fmt.Errorf("%w (the account %s exists)", ErrAlreadySeeded, acc.Email)
	}
	return newSession(c, a.tokens), nil
}

// randomPassword is for generated accounts nobody signs in to by hand.
func randomPassword() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return "demo-only-" + base64.RawURLEncoding.EncodeToString(b)
}

// categoryNode is a node of GET /api/v1/categories.
type categoryNode struct {
	ID       string          `json:"id"`
	Slug     string          `json:"slug"`
	Children []*categoryNode `json:"children"`
}

// createCategories makes the departments and their categories, reusing
// any whose slug exists, and returns their ids by [department][category].
func createCategories(ctx context.Context, c *client, admin *session) ([][]string, error) {
	var tree struct {
		Items []*categoryNode `json:"items"`
	}
	if _, err := c.json(ctx, http.MethodGet, "/api/v1/categories", nil, nil, &tree); err != nil {
		return nil, err
	}
	existing := map[string]string{}
	var walk func([]*categoryNode)
	walk = func(ns []*categoryNode) {
		for _, n := range ns {
			existing[n.Slug] = n.ID
			walk(n.Children)
		}
	}
	walk(tree.Items)

	ensure := func(parentID, slug, name string, position int) (string, error) {
		if id, ok := existing[slug]; ok {
			return id, nil
		}
		body := map[string]any{"slug": slug, "name": name, "position": position}
		if parentID != "" {
			body["parent_id"] = parentID
		}
		var created categoryNode
		if _, err := c.json(ctx, http.MethodPost, "/api/v1/categories", admin, body, &created); err != nil {
			return "", err
		}
		return created.ID, nil
	}
	ids := make([][]string, len(departments))
	for d, dept := range departments {
		deptID, err := ensure("", dept.Slug, dept.Name, d)
		if err != nil {
			return nil, err
		}
		for i, cat := range dept.Children {
			id, err := ensure(deptID, cat.Slug, cat.Name, i)
			if err != nil {
				return nil, err
			}
			ids[d] = append(ids[d], id)
		}
	}
	return ids, nil
}

// createProduct creates one product as its seller, uploads its image and
// sets the stock of each variant.
func createProduct(ctx context.Context, c *client, seller *session, categoryID string, ps *productSpec) error {
	type variantBody struct {
		SKU            string            `json:"sku"`
		Options        map[string]string `json:"options"`
		Price          money.Money       `json:"price"`
		CompareAtPrice *money.Money      `json:"compare_at_price,omitempty"`
	}
	body := struct {
		Title       string            `json:"title"`
		Description string            `json:"description"`
		Brand       string            `json:"brand"`
		CategoryID  string            `json:"category_id"`
		Status      string            `json:"status"`
		Attributes  map[string]string `json:"attributes"`
		Variants    []variantBody     `json:"variants"`
	}{Title: ps.Title, Description: ps.Description, Brand: ps.Brand, CategoryID: categoryID,
		Status: "active", Attributes: ps.Attributes}
	for _, v := range ps.Variants {
		vb := variantBody{SKU: v.SKU, Options: v.Options, Price: money.Money{Amount: v.Price, Currency: "EUR"}}
		if v.CompareAt > 0 {
			vb.CompareAtPrice = &money.Money{Amount: v.CompareAt, Currency: "EUR"}
		}
		body.Variants = append(body.Variants, vb)
	}
	var created struct {
		ID   string `json:"id"`
		Slug string `json:"slug"`
	}
	if _, err := c.json(ctx, http.MethodPost, "/api/v1/products", seller, body, &created); err != nil {
		return err
	}

	png, err := productImage(ps.Title, departments[ps.Dept].Shape, ps.Colour)
	if err != nil {
		return fmt.Errorf("draw image: %w", err)
	}
	if _, err := c.upload(ctx, "/api/v1/products/"+created.ID+"/images", seller, "image",
		created.Slug+".png", "image/png", png, nil); err != nil {
		return err
	}

	for _, v := range ps.Variants {
		body := map[string]int64{"on_hand": v.OnHand, "low_threshold": lowThreshold}
		if _, err := c.json(ctx, http.MethodPut, "/api/v1/inventory/"+url.PathEscape(v.SKU), seller, body, nil); err != nil {
			return err
		}
	}
	return nil
}

// parallel calls fn for 0..n-1 from up to workers goroutines. The first
// error cancels the rest and is returned.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		once     sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}
