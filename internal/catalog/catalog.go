// Package catalog is the catalog service: sellers' products and their
// variants (SKUs) with authoritative prices, the category tree, product
// images, and a read model of stock availability fed by inventory events.
// It emits product.* and category.* events through its outbox and answers
// GetProducts / GetVariants over connect for cart and checkout.
package catalog

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/s3blob" // s3:// bucket URLs in the distributed shape
	"golang.org/x/text/unicode/norm"

	"github.com/mallhive/mallhive/internal/gen/mallhive/auth/v1/authv1connect"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/money"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
	"github.com/mallhive/mallhive/internal/platform/svc"
)

// Source is the events' source attribute.
const Source = "mallhive/catalog"

// Status is a product's lifecycle state, chosen by its seller.
type Status string

const (
	StatusDraft    Status = "draft"
	StatusActive   Status = "active"
	StatusArchived Status = "archived"
)

func (s Status) valid() bool {
	return s == StatusDraft || s == StatusActive || s == StatusArchived
}

// Availability of a variant, derived from the stock read model.
const (
	InStock    = "in_stock"
	LowStock   = "low_stock"
	OutOfStock = "out_of_stock"
)

// Limits on what a product may hold. They keep rows, events and pages small
// and bound the work any one request can cause.
const (
	MaxTitle         = 200
	MaxDescription   = 10_000
	MaxBrand         = 100
	MaxAttributes    = 50
	MaxAttrKey       = 64
	MaxAttrValue     = 500
	MaxImages        = 20
	MaxImageURL      = 2048
	MaxVariants      = 100
	MaxOptions       = 10
	MaxOptionValue   = 128
	MaxSKU           = 64
	MaxCategoryName  = 100
	MaxSlug          = 64
	MaxCategories    = 5000
	MaxCategoryDepth = 8
	// MaxImageBytes bounds an uploaded image.
	MaxImageBytes = 5 << 20
)

// Category is a node of the category tree.
type Category struct {
	ID        string      `json:"id"`
	ParentID  string      `json:"parent_id,omitempty"`
	Slug      string      `json:"slug"`
	Name      string      `json:"name"`
	Position  int         `json:"position"`
	CreatedAt time.Time   `json:"created_at"`
	UpdatedAt time.Time   `json:"updated_at"`
	Children  []*Category `json:"children"`
}

// Product is a seller's listing.
type Product struct {
	ID          string            `json:"id"`
	SellerID    string            `json:"seller_id"`
	Title       string            `json:"title"`
	Slug        string            `json:"slug"`
	Description string            `json:"description"`
	Brand       string            `json:"brand"`
	CategoryID  string            `json:"category_id"`
	Attributes  map[string]string `json:"attributes"`
	Images      []string          `json:"images"`
	Status      Status            `json:"status"`
	// Hidden is set by admins; a hidden product is invisible to buyers
	// whatever its status.
	Hidden    bool      `json:"hidden"`
	Variants  []Variant `json:"variants"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Variant is one purchasable SKU of a product.
type Variant struct {
	SKU            string            `json:"sku"`
	Options        map[string]string `json:"options"`
	Price          money.Money       `json:"price"`
	CompareAtPrice *money.Money      `json:"compare_at_price,omitempty"`
	// Availability is read from the stock read model; it is never written.
	Availability string `json:"availability"`
}

// WireStatus is the status other services see (events, RPC): "hidden"
// stands in for whatever the seller chose while an admin hides the product,
// so consumers that only sell or index "active" need no second flag.
func (p *Product) WireStatus() string {
	if p.Hidden {
		return "hidden"
	}
	return string(p.Status)
}

// VisibleTo reports whether v may see p: buyers and guests see active,
// unhidden products; the owner and admins see everything.
func (p *Product) VisibleTo(v Viewer) bool {
	return v.Admin || (v.UserID != "" && v.UserID == p.SellerID) || (p.Status == StatusActive && !p.Hidden)
}

// Viewer is who is looking, for visibility rules.
type Viewer struct {
	UserID string
	Admin  bool
}

// availability turns a stock record into the label shown with a variant. A
// SKU with no record yet counts as out of stock: inventory announces every
// SKU it holds, so silence means nothing can be sold (and showing "in stock"
// for a SKU nobody stocked would sell what does not exist).
func availability(known bool, available, lowThreshold int64) string {
	switch {
	case !known || available <= 0:
		return OutOfStock
	case available <= lowThreshold:
		return LowStock
	default:
		return InStock
	}
}

var (
	skuRE  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	slugRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
)

// Validate checks everything about p that needs no database: lengths,
// counts, SKUs, prices and currencies. It returns an errs.Invalid error
// naming each bad field.
func (p *Product) Validate() error {
	f := errs.Fields{}
	f.Check(p.SellerID != "" && len(p.SellerID) <= 64, "seller_id", "is required")
	checkLine(f, "title", p.Title, 1, MaxTitle)
	checkText(f, "description", p.Description, MaxDescription)
	checkLine(f, "brand", p.Brand, 0, MaxBrand)
	f.Check(p.CategoryID != "" && len(p.CategoryID) <= 64, "category_id", "is required")
	f.Check(p.Status.valid(), "status", "must be draft, active or archived")
	checkMap(f, "attributes", p.Attributes, MaxAttributes, MaxAttrValue)
	if len(p.Images) > MaxImages {
		f.Add("images", fmt.Sprintf("at most %d images", MaxImages))
	}
	for i, u := range p.Images {
		f.Check(validImageURL(u), fmt.Sprintf("images[%d]", i), "must be an http(s) URL or an uploaded image path")
	}
	switch {
	case len(p.Variants) == 0:
		f.Add("variants", "at least one variant is required")
	case len(p.Variants) > MaxVariants:
		f.Add("variants", fmt.Sprintf("at most %d variants", MaxVariants))
	}
	seen := map[string]bool{}
	currency := ""
	for i, v := range p.Variants {
		name := fmt.Sprintf("variants[%d]", i)
		switch {
		case !skuRE.MatchString(v.SKU):
			f.Add(name+".sku", "must be 1-64 characters of A-Z a-z 0-9 . _ -")
		case seen[v.SKU]:
			f.Add(name+".sku", "appears twice")
		}
		seen[v.SKU] = true
		checkMap(f, name+".options", v.Options, MaxOptions, MaxOptionValue)
		if err := v.Price.Validate(); err != nil {
			f.Add(name+".price", messageOf(err))
			continue
		}
		if currency == "" {
			currency = v.Price.Currency
		}
		f.Check(v.Price.Currency == currency, name+".price.currency", "all variants must share one currency")
		if c := v.CompareAtPrice; c != nil {
			if err := c.Validate(); err != nil {
				f.Add(name+".compare_at_price", messageOf(err))
				continue
			}
			f.Check(c.Currency == v.Price.Currency, name+".compare_at_price.currency", "must be the price's currency")
			f.Check(c.Amount >= v.Price.Amount, name+".compare_at_price.amount", "must not be below the price")
		}
	}
	return f.Err()
}

// minPrice returns the cheapest variant's price; Validate has run.
func (p *Product) minPrice() money.Money {
	m := p.Variants[0].Price
	for _, v := range p.Variants[1:] {
		if v.Price.Amount < m.Amount {
			m = v.Price
		}
	}
	return m
}

// Validate checks a category's own fields (the store checks its parent).
func (c *Category) Validate() error {
	f := errs.Fields{}
	checkLine(f, "name", c.Name, 1, MaxCategoryName)
	f.Check(validSlug(c.Slug), "slug", "must be 1-64 characters of a-z 0-9 in words joined by -")
	f.Check(c.Position >= -1_000_000 && c.Position <= 1_000_000, "position", "must be between -1000000 and 1000000")
	f.Check(c.ParentID == "" || c.ParentID != c.ID, "parent_id", "must not be the category itself")
	return f.Err()
}

// validSlug also refuses UUID-shaped slugs, so "id or slug" lookups can
// never be ambiguous.
func validSlug(s string) bool {
	if len(s) > MaxSlug || !slugRE.MatchString(s) {
		return false
	}
	_, err := uuid.Parse(s)
	return err != nil
}

// Slugify turns a title into a URL slug: lower-case ASCII words joined by
// "-", at most 60 characters (leaving room for a clash suffix). Titles with
// no ASCII letters or digits become "product".
const maxSlugBase = 60

func Slugify(title string) string { return slugify(title, "product") }

func slugify(title, fallback string) string {
	var b strings.Builder
	dash := false
	// NFKD splits "é" into "e" and a combining accent, which is then
	// dropped, so "Café crème" becomes "cafe-creme" rather than "caf-cr-me".
	for _, r := range norm.NFKD.String(strings.ToLower(title)) {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
		if b.Len() > maxSlugBase {
			break
		}
	}
	s := b.String()
	if len(s) > maxSlugBase { // cut at a word boundary when there is one
		if i := strings.LastIndexByte(s[:maxSlugBase+1], '-'); i > 0 {
			s = s[:i]
		} else {
			s = s[:maxSlugBase]
		}
	}
	if s == "" {
		return fallback
	}
	if _, err := uuid.Parse(s); err == nil {
		s = "p-" + s
	}
	return s
}

// checkLine checks a single-line string: trimmed length in runes and no
// control characters.
func checkLine(f errs.Fields, name, s string, minLen, maxLen int) {
	n := utf8.RuneCountInString(s)
	switch {
	case minLen > 0 && strings.TrimSpace(s) == "":
		f.Add(name, "is required")
	case n > maxLen:
		f.Add(name, fmt.Sprintf("must be at most %d characters", maxLen))
	case strings.ContainsFunc(s, unicode.IsControl):
		f.Add(name, "must not contain control characters")
	}
}

// checkText checks multi-line text: newlines and tabs are fine, other
// control characters are not.
func checkText(f errs.Fields, name, s string, maxLen int) {
	if utf8.RuneCountInString(s) > maxLen {
		f.Add(name, fmt.Sprintf("must be at most %d characters", maxLen))
		return
	}
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' }) {
		f.Add(name, "must not contain control characters")
	}
}

func checkMap(f errs.Fields, name string, m map[string]string, maxKeys, maxValue int) {
	if len(m) > maxKeys {
		f.Add(name, fmt.Sprintf("at most %d entries", maxKeys))
		return
	}
	for k, v := range m {
		checkLine(f, name+"."+truncate(k, MaxAttrKey), k, 1, MaxAttrKey)
		checkLine(f, name+"."+truncate(k, MaxAttrKey), v, 1, maxValue)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// validImageURL accepts images uploaded here (served under /api/v1/images/)
// and absolute http(s) URLs, which sellers may host elsewhere.
func validImageURL(s string) bool {
	if len(s) > MaxImageURL || strings.ContainsFunc(s, unicode.IsControl) {
		return false
	}
	if strings.HasPrefix(s, imagePathPrefix) {
		return imageKeyRE.MatchString(strings.TrimPrefix(s, imagePathPrefix))
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil
}

// messageOf returns the caller-safe message of a domain error.
func messageOf(err error) string {
	var e *errs.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "is invalid"
}

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations creates the catalog's tables; run it after events.Migrations.
var Migrations = sqldb.Embedded("catalog", migrationsFS, "migrations")

// Config configures the catalog service.
type Config struct {
	// BlobURL is where product images are kept, a gocloud.dev/blob URL such
	// as "s3://bucket?region=eu-west-1". Empty means <DataDir>/blobs.
	BlobURL string
	// ProductCacheTTL is how long a product page may be answered from
	// memory (0: never). See productCache for why it is safe.
	ProductCacheTTL time.Duration
}

// RegisterFlags registers the catalog's flags under the "catalog." prefix
// (--catalog.blob-url, meant to be settable as MALLHIVE_CATALOG_BLOB_URL by
// the configuration loader).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.BlobURL, "catalog.blob-url", "",
		"blob store for product images, e.g. s3://bucket?region=eu-west-1 (default: <data-dir>/blobs)")
	fs.DurationVar(&c.ProductCacheTTL, "catalog.product-cache-ttl", time.Second,
		"how long a product page may be served from memory; with several replicas, how stale another replica's change may look (0: off)")
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.ProductCacheTTL < 0 || c.ProductCacheTTL > time.Minute {
		return fmt.Errorf("catalog.product-cache-ttl: %s is not between 0 and 1m", c.ProductCacheTTL)
	}
	if c.BlobURL == "" {
		return nil
	}
	u, err := url.Parse(c.BlobURL)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("catalog.blob-url: %q is not a bucket URL", c.BlobURL)
	}
	return nil
}

// Service is the catalog service.
type Service struct {
	log    *slog.Logger
	env    *svc.Env
	db     *sqldb.DB
	store  *Store
	bucket *blob.Bucket
}

var _ svc.Service = (*Service)(nil)

// New opens the catalog's database (migrating it) and its image bucket.
func New(ctx context.Context, env *svc.Env, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("service", "catalog")
	db, err := env.DB(ctx, "catalog")
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	if err := db.Migrate(ctx, events.Migrations, Migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog: %w", err)
	}
	bucket, err := openBucket(ctx, env, cfg, log)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog: %w", err)
	}
	store := NewStore(db)
	store.cache = newProductCache(cfg.ProductCacheTTL)
	if env.ServiceURL != nil && env.RPCClient != nil {
		if authURL := env.ServiceURL("auth"); authURL != "" {
			store.sellers = newAuthSellers(authv1connect.NewAuthServiceClient(env.RPCClient, authURL, env.RPCClientOptions...))
		}
	}
	return &Service{log: log, env: env, db: db, store: store, bucket: bucket}, nil
}

func openBucket(ctx context.Context, env *svc.Env, cfg Config, log *slog.Logger) (*blob.Bucket, error) {
	if cfg.BlobURL != "" {
		b, err := blob.OpenBucket(ctx, cfg.BlobURL)
		if err != nil {
			return nil, fmt.Errorf("open image bucket: %w", err)
		}
		return b, nil
	}
	if env.DataDir == "" {
		return nil, errors.New("open image bucket: no catalog.blob-url and no data dir")
	}
	if !env.Embedded {
		// Replicas would each see only their own uploads.
		log.Warn("catalog images are kept on local disk; set --catalog.blob-url when running several replicas")
	}
	// Temporary files next to the blobs: the data dir may be on another
	// mount than os.TempDir, where the final rename would fail.
	b, err := fileblob.OpenBucket(filepath.Join(env.DataDir, "blobs"), &fileblob.Options{CreateDir: true, NoTempDir: true})
	if err != nil {
		return nil, fmt.Errorf("open image folder: %w", err)
	}
	return b, nil
}

// Store returns the service's store, for seeding and tools in-process.
func (s *Service) Store() *Store { return s.store }

// Run relays the outbox and consumes stock events until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if s.env.Bus == nil {
		return errors.New("catalog: run needs an event bus")
	}
	sub, err := s.consumeStock(ctx)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	defer sub.Stop()
	events.NewRelay("catalog", s.db, s.env.Bus, s.log, s.env.RelayMetrics).Run(ctx)
	return nil
}

// Ready reports whether the database and the image bucket answer.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.db.Ping(ctx); err != nil {
		return fmt.Errorf("catalog database: %w", err)
	}
	if ok, err := s.bucket.IsAccessible(ctx); err != nil || !ok {
		return fmt.Errorf("catalog image bucket not accessible: %v", err)
	}
	return nil
}

// Close closes the bucket and the database.
func (s *Service) Close() error {
	return errors.Join(s.bucket.Close(), s.db.Close())
}

// parseID bounds path ids before they reach a query.
func parseID(s string) (string, bool) {
	return s, s != "" && len(s) <= 128 && !strings.ContainsFunc(s, unicode.IsControl)
}

// itoa keeps SQL placeholder building readable.
func itoa(i int) string { return strconv.Itoa(i) }
