package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/mallhive/mallhive/internal/gen/mallhive/common/v1"
	eventsv1 "github.com/mallhive/mallhive/internal/gen/mallhive/events/v1"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/events"
	"github.com/mallhive/mallhive/internal/platform/money"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

// Store keeps categories, products, variants and the stock read model. Every
// write enqueues its event in the same transaction.
type Store struct {
	db *sqldb.DB
	// stmts holds the prepared statements of the hottest reads, by query
	// text. SQLite would otherwise parse and plan each query on every call
	// (PostgreSQL's driver already keeps them prepared per connection).
	stmts sync.Map
	// sellers names sellers in event snapshots; nil leaves names empty.
	sellers SellerNames
	// cache answers product pages; every write below drops what it changed.
	cache *productCache
}

// NewStore returns a store on a database migrated with events.Migrations
// and Migrations, with no product cache.
func NewStore(db *sqldb.DB) *Store { return &Store{db: db, cache: newProductCache(0)} }

// ErrNoChange, returned by an UpdateProduct closure, ends the update without
// writing anything or emitting an event.
var ErrNoChange = errors.New("no change")

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// now is truncated to microseconds, the precision PostgreSQL keeps, so a
// value reads back exactly as it was written on both engines.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// --- categories ---

// CategoryTree returns the root categories with their descendants nested,
// siblings ordered by position then name.
func (s *Store) CategoryTree(ctx context.Context) ([]*Category, error) {
	all, err := loadCategories(ctx, s.db)
	if err != nil {
		return nil, err
	}
	roots := []*Category{}
	for _, c := range all {
		c.Children = []*Category{}
	}
	for _, c := range all {
		if p, ok := all[c.ParentID]; ok {
			p.Children = append(p.Children, c)
		} else {
			roots = append(roots, c)
		}
	}
	var order func([]*Category)
	order = func(cs []*Category) {
		sort.Slice(cs, func(i, j int) bool {
			if cs[i].Position != cs[j].Position {
				return cs[i].Position < cs[j].Position
			}
			if cs[i].Name != cs[j].Name {
				return cs[i].Name < cs[j].Name
			}
			return cs[i].ID < cs[j].ID
		})
		for _, c := range cs {
			order(c.Children)
		}
	}
	order(roots)
	return roots, nil
}

func loadCategories(ctx context.Context, q querier) (map[string]*Category, error) {
	rows, err := q.QueryContext(ctx,
		`SELECT id, COALESCE(parent_id, ''), slug, name, position, created_at, updated_at FROM categories`)
	if err != nil {
		return nil, fmt.Errorf("load categories: %w", err)
	}
	defer rows.Close()
	all := map[string]*Category{}
	for rows.Next() {
		c := &Category{}
		if err := rows.Scan(&c.ID, &c.ParentID, &c.Slug, &c.Name, &c.Position, &c.CreatedAt, &c.UpdatedAt); err != nil {
			return nil, fmt.Errorf("load categories: %w", err)
		}
		c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
		all[c.ID] = c
	}
	return all, rows.Err()
}

// categoryPath returns the slugs from the root down to id. The depth bound
// guards against a cycle that validation should already have prevented.
func categoryPath(all map[string]*Category, id string) []string {
	var path []string
	for c := all[id]; c != nil && len(path) <= MaxCategoryDepth; c = all[c.ParentID] {
		path = append([]string{c.Slug}, path...)
	}
	return path
}

// subtreeHeight is 1 for a leaf, 2 for a category with leaf children, ...
func subtreeHeight(all map[string]*Category, id string) int {
	h := 0
	for _, c := range all {
		if c.ParentID == id {
			h = max(h, subtreeHeight(all, c.ID))
		}
	}
	return h + 1
}

// checkPlacement checks c's slug and parent against the rest of the tree.
func checkPlacement(all map[string]*Category, c *Category) error {
	for _, o := range all {
		if o.ID != c.ID && o.Slug == c.Slug {
			return &errs.Error{Code: errs.Conflict, Message: "the slug is taken", Fields: map[string]string{"slug": "is taken by another category"}}
		}
	}
	if c.ParentID == "" {
		if subtreeHeight(all, c.ID) > MaxCategoryDepth {
			return errs.Field("parent_id", fmt.Sprintf("the tree may be at most %d levels deep", MaxCategoryDepth))
		}
		return nil
	}
	if all[c.ParentID] == nil {
		return errs.Field("parent_id", "unknown category")
	}
	depth := 0 // ancestors c would have
	for p := all[c.ParentID]; p != nil; p = all[p.ParentID] {
		if p.ID == c.ID {
			return errs.Field("parent_id", "must not be the category itself or one of its descendants")
		}
		depth++
		if depth > MaxCategoryDepth {
			break
		}
	}
	if depth+subtreeHeight(all, c.ID) > MaxCategoryDepth {
		return errs.Field("parent_id", fmt.Sprintf("the tree may be at most %d levels deep", MaxCategoryDepth))
	}
	return nil
}

// CreateCategory adds c to the tree (its ID and timestamps are set here; an
// empty slug is made from the name) and emits category.created. Errors:
// errs.Invalid for bad fields or an unknown parent, errs.Conflict for a
// taken slug or a full tree.
func (s *Store) CreateCategory(ctx context.Context, c *Category) error {
	c.ID = uuid.Must(uuid.NewV7()).String()
	c.CreatedAt = now()
	c.UpdatedAt = c.CreatedAt
	if c.Slug == "" {
		c.Slug = slugify(c.Name, "category")
	}
	if err := c.Validate(); err != nil {
		return err
	}
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		all, err := loadCategories(ctx, tx)
		if err != nil {
			return err
		}
		if len(all) >= MaxCategories {
			return errs.E(errs.Conflict, "the category tree is full (%d categories)", MaxCategories)
		}
		if err := checkPlacement(all, c); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO categories (id, parent_id, slug, name, position, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			c.ID, nullable(c.ParentID), c.Slug, c.Name, c.Position, c.CreatedAt, c.UpdatedAt); err != nil {
			return fmt.Errorf("insert category: %w", err)
		}
		all[c.ID] = c
		return enqueueCategory(ctx, tx, "category.created", c, categoryPath(all, c.ID))
	})
	return mapWriteErr(err)
}

// UpdateCategory loads a category, lets fn change it, checks and saves it,
// and emits category.updated. Errors: errs.NotFound, errs.Invalid,
// errs.Conflict (taken slug), or whatever fn returns.
func (s *Store) UpdateCategory(ctx context.Context, id string, fn func(c *Category) error) (Category, error) {
	var out Category
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		all, err := loadCategories(ctx, tx)
		if err != nil {
			return err
		}
		cur := all[id]
		if cur == nil {
			return errs.E(errs.NotFound, "no such category")
		}
		c := *cur
		if err := fn(&c); err != nil {
			return err
		}
		c.ID = cur.ID
		if err := c.Validate(); err != nil {
			return err
		}
		if err := checkPlacement(all, &c); err != nil {
			return err
		}
		c.UpdatedAt = later(now(), cur.UpdatedAt)
		if _, err := tx.ExecContext(ctx,
			`UPDATE categories SET parent_id = $2, slug = $3, name = $4, position = $5, updated_at = $6 WHERE id = $1`,
			c.ID, nullable(c.ParentID), c.Slug, c.Name, c.Position, c.UpdatedAt); err != nil {
			return fmt.Errorf("update category: %w", err)
		}
		all[c.ID] = &c
		out = c
		return enqueueCategory(ctx, tx, "category.updated", &c, categoryPath(all, c.ID))
	})
	return out, mapWriteErr(err)
}

// DeleteCategory removes a category that has no children and no products
// (archived ones included: they still point at it) and emits
// category.deleted. Errors: errs.NotFound, errs.Conflict when not empty.
func (s *Store) DeleteCategory(ctx context.Context, id string) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		all, err := loadCategories(ctx, tx)
		if err != nil {
			return err
		}
		c := all[id]
		if c == nil {
			return errs.E(errs.NotFound, "no such category")
		}
		var children, products int
		if err := tx.QueryRowContext(ctx, `SELECT
			(SELECT COUNT(*) FROM categories WHERE parent_id = $1),
			(SELECT COUNT(*) FROM products WHERE category_id = $1)`, id).Scan(&children, &products); err != nil {
			return fmt.Errorf("count category contents: %w", err)
		}
		if children > 0 || products > 0 {
			return errs.E(errs.Conflict, "the category still has %d subcategories and %d products", children, products)
		}
		path := categoryPath(all, id)
		if _, err := tx.ExecContext(ctx, `DELETE FROM categories WHERE id = $1`, id); err != nil {
			return fmt.Errorf("delete category: %w", err)
		}
		c.UpdatedAt = later(now(), c.UpdatedAt)
		return enqueueCategory(ctx, tx, "category.deleted", c, path)
	})
}

func enqueueCategory(ctx context.Context, tx *sql.Tx, typ string, c *Category, path []string) error {
	ev, err := events.New(ctx, Source, typ, c.ID, &eventsv1.CategoryEvent{Category: &eventsv1.Category{
		Id: c.ID, ParentId: c.ParentID, Name: c.Name, Slug: c.Slug, Path: path, UpdatedAt: timestamppb.New(c.UpdatedAt),
	}})
	if err != nil {
		return err
	}
	return events.Enqueue(ctx, tx, ev)
}

// --- products ---

const productCols = `p.id, p.seller_id, p.title, p.slug, p.description, p.brand, p.category_id,
	p.attributes, p.images, p.status, p.hidden, p.created_at, p.updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanProduct(sc scanner) (Product, error) {
	var p Product
	var attrs, images string
	if err := sc.Scan(&p.ID, &p.SellerID, &p.Title, &p.Slug, &p.Description, &p.Brand, &p.CategoryID,
		&attrs, &images, &p.Status, &p.Hidden, &p.CreatedAt, &p.UpdatedAt); err != nil {
		return p, err
	}
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	if err := json.Unmarshal([]byte(attrs), &p.Attributes); err != nil {
		return p, fmt.Errorf("product %s attributes: %w", p.ID, err)
	}
	if err := json.Unmarshal([]byte(images), &p.Images); err != nil {
		return p, fmt.Errorf("product %s images: %w", p.ID, err)
	}
	return p, nil
}

// Product returns the product with the given id or slug, with its variants
// and their availability. Visibility is the caller's business. Errors:
// errs.NotFound.
func (s *Store) Product(ctx context.Context, idOrSlug string) (Product, error) {
	st, err := s.prepared(ctx, productQuery(idOrSlug, false))
	if err != nil {
		return Product{}, fmt.Errorf("get product: %w", err)
	}
	rows, err := st.QueryContext(ctx, idOrSlug)
	return readProduct(rows, err)
}

func getProduct(ctx context.Context, q querier, idOrSlug string, forUpdate bool) (Product, error) {
	rows, err := q.QueryContext(ctx, productQuery(idOrSlug, forUpdate), idOrSlug)
	return readProduct(rows, err)
}

// prepared returns query prepared on the store's database, preparing it on
// first use.
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// The product reads: the product, its variants in order and their stock in
// one query, one row per variant. A UUID-shaped key is an id (slugs never
// look like one); any other key is a slug, or an id set by a caller.
var productQueries = func() (qs [2][2]string) {
	const q = `SELECT ` + productCols + `,
			v.sku, v.options, v.price, v.compare_at_price, v.currency, s.available, s.low_threshold
		FROM products p
		LEFT JOIN variants v ON v.product_id = p.id
		LEFT JOIN variant_stock s ON s.sku = v.sku`
	for i, where := range []string{` WHERE p.id = $1`, ` WHERE p.slug = $1 OR p.id = $1`} {
		qs[i][0] = q + where + ` ORDER BY v.position`
		// Only the product row: variants are replaced, not updated.
		qs[i][1] = qs[i][0] + ` FOR UPDATE OF p`
	}
	return qs
}()

func productQuery(idOrSlug string, forUpdate bool) string {
	i, j := 0, 0
	if _, err := uuid.Parse(idOrSlug); err != nil {
		i = 1
	}
	if forUpdate {
		j = 1
	}
	return productQueries[i][j]
}

// readProduct reads the rows of a product query.
func readProduct(rows *sql.Rows, err error) (Product, error) {
	if err != nil {
		return Product{}, fmt.Errorf("get product: %w", err)
	}
	defer rows.Close()
	var (
		p                                Product
		found                            bool
		attrs, images                    string
		sku, options, currency           sql.NullString
		price, compareAt, available, low sql.NullInt64
	)
	dest := []any{&p.ID, &p.SellerID, &p.Title, &p.Slug, &p.Description, &p.Brand, &p.CategoryID,
		&attrs, &images, &p.Status, &p.Hidden, &p.CreatedAt, &p.UpdatedAt,
		&sku, &options, &price, &compareAt, &currency, &available, &low}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return Product{}, fmt.Errorf("get product: %w", err)
		}
		// Every row repeats the product's columns; decode them once.
		if !found {
			found = true
			if err := json.Unmarshal([]byte(attrs), &p.Attributes); err != nil {
				return Product{}, fmt.Errorf("product %s attributes: %w", p.ID, err)
			}
			if err := json.Unmarshal([]byte(images), &p.Images); err != nil {
				return Product{}, fmt.Errorf("product %s images: %w", p.ID, err)
			}
		}
		if !sku.Valid {
			continue // a product without variants
		}
		v, err := variantOf(sku.String, options.String, price.Int64, compareAt, currency.String, available, low)
		if err != nil {
			return Product{}, err
		}
		p.Variants = append(p.Variants, v)
	}
	if err := rows.Err(); err != nil {
		return Product{}, fmt.Errorf("get product: %w", err)
	}
	if !found {
		return Product{}, errs.E(errs.NotFound, "no such product")
	}
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return p, nil
}

// variantOf builds a variant from its columns and its stock record.
func variantOf(sku, options string, price int64, compareAt sql.NullInt64, currency string, available, low sql.NullInt64) (Variant, error) {
	v := Variant{SKU: sku, Price: money.Money{Amount: price, Currency: currency}}
	if err := json.Unmarshal([]byte(options), &v.Options); err != nil {
		return Variant{}, fmt.Errorf("variant %s options: %w", sku, err)
	}
	if compareAt.Valid {
		v.CompareAtPrice = &money.Money{Amount: compareAt.Int64, Currency: currency}
	}
	v.Availability = availability(available.Valid, available.Int64, low.Int64)
	return v, nil
}

// attachVariants loads the variants (with availability) of ps in one query.
func attachVariants(ctx context.Context, q querier, ps []Product) error {
	if len(ps) == 0 {
		return nil
	}
	idx := make(map[string]int, len(ps))
	args := make([]any, len(ps))
	marks := make([]string, len(ps))
	for i, p := range ps {
		idx[p.ID] = i
		args[i] = p.ID
		marks[i] = "$" + itoa(i+1)
	}
	rows, err := q.QueryContext(ctx, `SELECT v.product_id, v.sku, v.options, v.price, v.compare_at_price, v.currency,
			s.available, s.low_threshold
		FROM variants v LEFT JOIN variant_stock s ON s.sku = v.sku
		WHERE v.product_id IN (`+strings.Join(marks, ", ")+`)
		ORDER BY v.product_id, v.position`, args...)
	if err != nil {
		return fmt.Errorf("load variants: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			productID, sku, options, currency string
			price                             int64
			compareAt, available, low         sql.NullInt64
		)
		if err := rows.Scan(&productID, &sku, &options, &price, &compareAt, &currency, &available, &low); err != nil {
			return fmt.Errorf("load variants: %w", err)
		}
		v, err := variantOf(sku, options, price, compareAt, currency, available, low)
		if err != nil {
			return err
		}
		i := idx[productID]
		ps[i].Variants = append(ps[i].Variants, v)
	}
	return rows.Err()
}

// CreateProduct inserts a new product with its variants and emits
// product.created. It sets ID (when empty), the timestamps (when zero), the
// status (draft when empty) and a unique slug made from Slug or, when empty,
// Title. It is the one way products are made, over HTTP and by seeders.
// Errors: errs.Invalid for bad fields or an unknown category, errs.Conflict
// when a SKU is already used.
func (s *Store) CreateProduct(ctx context.Context, p *Product) error {
	if p.ID == "" {
		p.ID = uuid.Must(uuid.NewV7()).String()
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = now()
	}
	if p.UpdatedAt.IsZero() {
		p.UpdatedAt = p.CreatedAt
	}
	if p.Status == "" {
		p.Status = StatusDraft
	}
	normalize(p)
	if err := p.Validate(); err != nil {
		return err
	}
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := checkReferences(ctx, tx, p); err != nil {
			return err
		}
		base := p.Slug
		if !validSlug(base) {
			base = Slugify(p.Title)
		}
		slug, err := freeSlug(ctx, tx, base, p.ID)
		if err != nil {
			return err
		}
		p.Slug = slug
		attrs, images := mustJSON(p.Attributes), mustJSON(p.Images)
		lo := p.minPrice()
		if _, err := tx.ExecContext(ctx, `INSERT INTO products (id, seller_id, title, slug, description, brand, brand_key,
				category_id, attributes, images, status, hidden, currency, min_price, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
			p.ID, p.SellerID, p.Title, p.Slug, p.Description, p.Brand, brandKey(p.Brand),
			p.CategoryID, attrs, images, string(p.Status), p.Hidden, lo.Currency, lo.Amount, p.CreatedAt.UTC(), p.UpdatedAt.UTC()); err != nil {
			return fmt.Errorf("insert product: %w", err)
		}
		if err := insertVariants(ctx, tx, p); err != nil {
			return err
		}
		return s.enqueueProduct(ctx, tx, "product.created", p)
	})
	s.cache.drop(p.ID, p.Slug)
	if err != nil {
		return mapWriteErr(err)
	}
	for i := range p.Variants {
		p.Variants[i].Availability = OutOfStock // refined by reads once stock is known
	}
	return nil
}

// UpdateProduct loads the product with the given id or slug (locking it),
// lets fn change it, checks and saves the result and emits product.updated,
// or product.archived when the status became archived. fn may return
// ErrNoChange to save nothing. The seller, id, slug and creation time never
// change. It returns the product as stored. Errors: errs.NotFound,
// errs.Invalid, errs.Conflict (SKU used elsewhere), or whatever fn returns.
func (s *Store) UpdateProduct(ctx context.Context, idOrSlug string, fn func(p *Product) error) (Product, error) {
	var id, slug string
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		cur, err := getProduct(ctx, tx, idOrSlug, s.db.Dialect == sqldb.Postgres)
		if err != nil {
			return err
		}
		id, slug = cur.ID, cur.Slug
		p := cur
		p.Attributes = cloneMap(cur.Attributes)
		p.Images = append([]string(nil), cur.Images...)
		p.Variants = append([]Variant(nil), cur.Variants...)
		if err := fn(&p); err != nil {
			return err
		}
		p.ID, p.SellerID, p.Slug, p.CreatedAt = cur.ID, cur.SellerID, cur.Slug, cur.CreatedAt
		normalize(&p)
		if err := p.Validate(); err != nil {
			return err
		}
		if err := checkReferences(ctx, tx, &p); err != nil {
			return err
		}
		// Consumers keep the snapshot with the newest updated_at, so it
		// must grow even for two updates within one clock tick.
		p.UpdatedAt = later(now(), cur.UpdatedAt)
		lo := p.minPrice()
		if _, err := tx.ExecContext(ctx, `UPDATE products SET title = $2, description = $3, brand = $4, brand_key = $5,
				category_id = $6, attributes = $7, images = $8, status = $9, hidden = $10, currency = $11,
				min_price = $12, updated_at = $13
			WHERE id = $1`,
			p.ID, p.Title, p.Description, p.Brand, brandKey(p.Brand), p.CategoryID, mustJSON(p.Attributes),
			mustJSON(p.Images), string(p.Status), p.Hidden, lo.Currency, lo.Amount, p.UpdatedAt); err != nil {
			return fmt.Errorf("update product: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM variants WHERE product_id = $1`, p.ID); err != nil {
			return fmt.Errorf("replace variants: %w", err)
		}
		if err := insertVariants(ctx, tx, &p); err != nil {
			return err
		}
		typ := "product.updated"
		if p.Status == StatusArchived && cur.Status != StatusArchived {
			typ = "product.archived"
		}
		return s.enqueueProduct(ctx, tx, typ, &p)
	})
	if id != "" {
		s.cache.drop(id, slug)
	}
	if err != nil && !errors.Is(err, ErrNoChange) {
		return Product{}, mapWriteErr(err)
	}
	return s.Product(ctx, id)
}

func insertVariants(ctx context.Context, tx *sql.Tx, p *Product) error {
	for i, v := range p.Variants {
		var compareAt sql.NullInt64
		if v.CompareAtPrice != nil {
			compareAt = sql.NullInt64{Int64: v.CompareAtPrice.Amount, Valid: true}
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO variants (sku, product_id, position, options, price, compare_at_price, currency) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			v.SKU, p.ID, i, mustJSON(v.Options), v.Price.Amount, compareAt, v.Price.Currency); err != nil {
			return fmt.Errorf("insert variant %s: %w", v.SKU, err)
		}
	}
	return nil
}

// checkReferences checks what Validate cannot: that the category exists and
// that no other product uses one of the SKUs.
func checkReferences(ctx context.Context, tx *sql.Tx, p *Product) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM categories WHERE id = $1`, p.CategoryID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return errs.Field("category_id", "unknown category")
	}
	if err != nil {
		return fmt.Errorf("check category: %w", err)
	}
	args := []any{p.ID}
	marks := make([]string, len(p.Variants))
	pos := map[string]int{}
	for i, v := range p.Variants {
		args = append(args, v.SKU)
		marks[i] = "$" + itoa(i+2)
		pos[v.SKU] = i
	}
	rows, err := tx.QueryContext(ctx, `SELECT sku FROM variants WHERE product_id <> $1 AND sku IN (`+strings.Join(marks, ", ")+`)`, args...)
	if err != nil {
		return fmt.Errorf("check skus: %w", err)
	}
	defer rows.Close()
	taken := map[string]string{}
	for rows.Next() {
		var sku string
		if err := rows.Scan(&sku); err != nil {
			return fmt.Errorf("check skus: %w", err)
		}
		taken[fmt.Sprintf("variants[%d].sku", pos[sku])] = "is already used by another product"
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check skus: %w", err)
	}
	if len(taken) > 0 {
		return &errs.Error{Code: errs.Conflict, Message: "a SKU is already used by another product", Fields: taken}
	}
	return nil
}

// freeSlug returns base, or base with a suffix when another product has it.
func freeSlug(ctx context.Context, tx *sql.Tx, base, id string) (string, error) {
	tail := strings.ReplaceAll(id, "-", "")
	tail = tail[max(0, len(tail)-8):] // UUIDv7 ends in random bits
	for i := 1; i <= 4; i++ {
		cand := base
		switch {
		case i == 4:
			cand = base + "-" + strings.ToLower(tail)
		case i > 1:
			cand = base + "-" + itoa(i)
		}
		var owner string
		err := tx.QueryRowContext(ctx, `SELECT id FROM products WHERE slug = $1`, cand).Scan(&owner)
		if errors.Is(err, sql.ErrNoRows) || owner == id {
			return cand, nil
		}
		if err != nil {
			return "", fmt.Errorf("check slug: %w", err)
		}
	}
	return "", errs.E(errs.Conflict, "could not find a free slug for %q; try another title", base)
}

func (s *Store) enqueueProduct(ctx context.Context, tx *sql.Tx, typ string, p *Product) error {
	path, err := ancestorSlugs(ctx, tx, p.CategoryID)
	if err != nil {
		return err
	}
	snap := productSnapshot(p, path)
	if s.sellers != nil {
		snap.SellerName = s.sellers.StoreName(ctx, p.SellerID)
	}
	ev, err := events.New(ctx, Source, typ, p.ID, &eventsv1.ProductEvent{Product: snap})
	if err != nil {
		return err
	}
	return events.Enqueue(ctx, tx, ev)
}

// ancestorSlugs returns the category path of id, root first, walking up
// at most MaxCategoryDepth parents (a handful of indexed lookups, where
// loading the whole tree would cost every product write).
func ancestorSlugs(ctx context.Context, tx *sql.Tx, id string) ([]string, error) {
	var path []string
	for id != "" && len(path) < MaxCategoryDepth {
		var slug string
		var parent sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT slug, parent_id FROM categories WHERE id = $1`, id).Scan(&slug, &parent)
		if errors.Is(err, sql.ErrNoRows) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("category path: %w", err)
		}
		path = append([]string{slug}, path...)
		id = parent.String
	}
	return path, nil
}

// productSnapshot is the full product as events carry it (the caller adds
// the seller's store name, which lives in auth).
func productSnapshot(p *Product, categoryPath []string) *eventsv1.Product {
	out := &eventsv1.Product{
		Id: p.ID, SellerId: p.SellerID, Title: p.Title, Slug: p.Slug, Description: p.Description,
		Brand: p.Brand, CategoryId: p.CategoryID, CategoryPath: categoryPath,
		Attributes: cloneMap(p.Attributes), ImageUrls: append([]string(nil), p.Images...),
		Status: p.WireStatus(), CreatedAt: timestamppb.New(p.CreatedAt), UpdatedAt: timestamppb.New(p.UpdatedAt),
	}
	for _, v := range p.Variants {
		out.Variants = append(out.Variants, &eventsv1.ProductVariant{
			Sku: v.SKU, Options: cloneMap(v.Options), Price: moneyProto(&v.Price), CompareAtPrice: moneyProto(v.CompareAtPrice),
		})
	}
	return out
}

func moneyProto(m *money.Money) *commonv1.Money {
	if m == nil {
		return nil
	}
	return &commonv1.Money{Amount: m.Amount, Currency: m.Currency}
}

// --- lists ---

// Page is one page of a product list.
type Page struct {
	Items         []Product `json:"items"`
	NextPageToken string    `json:"next_page_token,omitempty"`
}

// ListProducts returns one page of the products q selects among those v may
// see (see ListQuery.Status), ordered by q.Sort with the id as tie-breaker,
// so keyset pages never repeat or skip an unchanged product.
func (s *Store) ListProducts(ctx context.Context, q ListQuery, v Viewer) (Page, error) {
	var (
		args  []any
		where = []string{"1 = 1"}
		with  string
	)
	arg := func(a any) string {
		args = append(args, a)
		return "$" + itoa(len(args))
	}
	if q.Category != "" {
		// UNION (not UNION ALL) ends the recursion even on a cyclic tree.
		c := arg(q.Category)
		with = `WITH RECURSIVE sub(id) AS (
			SELECT id FROM categories WHERE id = ` + c + ` OR slug = ` + c + `
			UNION SELECT categories.id FROM categories JOIN sub ON categories.parent_id = sub.id) `
		where = append(where, "p.category_id IN (SELECT id FROM sub)")
	}
	const public = "(p.status = 'active' AND NOT p.hidden)"
	switch {
	case q.Status == "":
		where = append(where, public)
	default:
		if q.Status != "all" {
			where = append(where, "p.status = "+arg(q.Status))
		}
		switch {
		case v.Admin:
		case v.UserID != "":
			where = append(where, "("+public+" OR p.seller_id = "+arg(v.UserID)+")")
		default:
			where = append(where, public)
		}
	}
	if q.Brand != "" {
		where = append(where, "p.brand_key = "+arg(brandKey(q.Brand)))
	}
	if q.Seller != "" {
		where = append(where, "p.seller_id = "+arg(q.Seller))
	}
	if q.MinPrice != nil {
		where = append(where, "p.min_price >= "+arg(*q.MinPrice))
	}
	if q.MaxPrice != nil {
		where = append(where, "p.min_price <= "+arg(*q.MaxPrice))
	}
	if q.InStock {
		where = append(where, `EXISTS (SELECT 1 FROM variants v JOIN variant_stock s ON s.sku = v.sku
			WHERE v.product_id = p.id AND s.available > 0)`)
	}
	var order string
	switch q.Sort {
	case SortPriceAsc, SortPriceDesc:
		dir, cmp := "ASC", ">"
		if q.Sort == SortPriceDesc {
			dir, cmp = "DESC", "<"
		}
		order = "p.min_price " + dir + ", p.id " + dir
		if t := q.After; t != nil {
			a, b := arg(t.Price), arg(t.ID)
			where = append(where, "(p.min_price "+cmp+" "+a+" OR (p.min_price = "+a+" AND p.id "+cmp+" "+b+"))")
		}
	default:
		order = "p.id DESC" // UUIDv7: newest first
		if t := q.After; t != nil {
			where = append(where, "p.id < "+arg(t.ID))
		}
	}
	size := q.PageSize
	if size < 1 || size > MaxPageSize {
		size = DefaultPageSize
	}
	query := with + `SELECT ` + productCols + ` FROM products p WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY ` + order + ` LIMIT ` + arg(size+1)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return Page{}, fmt.Errorf("list products: %w", err)
	}
	defer rows.Close()
	items := []Product{}
	for rows.Next() {
		p, err := scanProduct(rows)
		if err != nil {
			return Page{}, fmt.Errorf("list products: %w", err)
		}
		items = append(items, p)
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("list products: %w", err)
	}
	rows.Close()
	page := Page{Items: items}
	if len(items) > size {
		page.Items = items[:size]
	}
	if err := attachVariants(ctx, s.db, page.Items); err != nil {
		return Page{}, err
	}
	if len(items) > size {
		last := page.Items[size-1]
		t := PageToken{Sort: q.Sort, ID: last.ID}
		if q.Sort != SortNewest {
			t.Price = last.minPrice().Amount
		}
		page.NextPageToken = t.Encode()
	}
	return page, nil
}

// ProductsFor returns the products with one of ids or owning one of skus,
// each once, ordered by id. Unknown ids and SKUs are left out; visibility is
// the caller's business.
func (s *Store) ProductsFor(ctx context.Context, ids, skus []string) ([]Product, error) {
	var (
		args []any
		ors  []string
	)
	in := func(vals []string) string {
		marks := make([]string, len(vals))
		for i, v := range vals {
			args = append(args, v)
			marks[i] = "$" + itoa(len(args))
		}
		return "(" + strings.Join(marks, ", ") + ")"
	}
	if len(ids) > 0 {
		ors = append(ors, "p.id IN "+in(ids))
	}
	if len(skus) > 0 {
		ors = append(ors, "p.id IN (SELECT product_id FROM variants WHERE sku IN "+in(skus)+")")
	}
	if len(ors) == 0 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+productCols+` FROM products p WHERE `+strings.Join(ors, " OR ")+` ORDER BY p.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("products for: %w", err)
	}
	defer rows.Close()
	var out []Product
	for rows.Next() {
		p, err := scanProduct(rows)
		if err != nil {
			return nil, fmt.Errorf("products for: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("products for: %w", err)
	}
	rows.Close()
	return out, attachVariants(ctx, s.db, out)
}

// --- stock read model ---

// StockLevel is what catalog keeps of an inventory stock event.
type StockLevel struct {
	SKU          string
	Available    int64
	LowThreshold int64
	At           time.Time
}

// stockRowsPerStatement keeps one upsert's parameters (4 a row) well below
// the limits of SQLite (32766) and PostgreSQL (65535).
const stockRowsPerStatement = 1000

// applyStocks records stock levels, each unless a newer one is already
// known: the stock stream keeps only the latest event per subject, so a
// replay can deliver an older stock.changed after a newer stock.out. A few
// multi-row upserts, not one statement per level. The SKUs must be
// distinct: PostgreSQL refuses to update a row twice in one statement.
func applyStocks(ctx context.Context, tx *sql.Tx, levels []StockLevel) error {
	for len(levels) > 0 {
		chunk := levels[:min(len(levels), stockRowsPerStatement)]
		levels = levels[len(chunk):]
		var q strings.Builder
		q.WriteString(`INSERT INTO variant_stock (sku, available, low_threshold, observed_us) VALUES `)
		args := make([]any, 0, 4*len(chunk))
		for i, l := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			n := 4 * i
			q.WriteString("($" + itoa(n+1) + ", $" + itoa(n+2) + ", $" + itoa(n+3) + ", $" + itoa(n+4) + ")")
			args = append(args, l.SKU, l.Available, l.LowThreshold, l.At.UnixMicro())
		}
		q.WriteString(` ON CONFLICT (sku) DO UPDATE SET available = excluded.available, low_threshold = excluded.low_threshold,
			observed_us = excluded.observed_us
		WHERE variant_stock.observed_us <= excluded.observed_us`)
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("apply stock of %s..%s: %w", chunk[0].SKU, chunk[len(chunk)-1].SKU, err)
		}
	}
	return nil
}

// --- helpers ---

func normalize(p *Product) {
	p.Title, p.Brand = strings.TrimSpace(p.Title), strings.TrimSpace(p.Brand)
	if p.Attributes == nil {
		p.Attributes = map[string]string{}
	}
	if p.Images == nil {
		p.Images = []string{}
	}
	for i := range p.Variants {
		if p.Variants[i].Options == nil {
			p.Variants[i].Options = map[string]string{}
		}
	}
}

func brandKey(brand string) string { return strings.ToLower(strings.TrimSpace(brand)) }

func later(t, prev time.Time) time.Time {
	if !t.After(prev) {
		return prev.Add(time.Microsecond)
	}
	return t
}

func nullable(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// mustJSON encodes maps and slices of strings, which cannot fail.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// mapWriteErr turns a unique violation that slipped past the checks (two
// writers racing for a slug or SKU) into a conflict the caller can retry.
func mapWriteErr(err error) error {
	if err != nil && sqldb.IsUniqueViolation(err) {
		return errs.E(errs.Conflict, "a slug or SKU was taken at the same moment; try again")
	}
	return err
}
