package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

// productCache keeps recent answers of GET /api/v1/products/{id} in memory:
// the encoded JSON and what the visibility check needs, by the id or slug
// that was asked for. A product page is read far more often than it changes,
// and the read (product, variants and stock in one query, then encoding) is
// most of that request's cost.
//
// Why an entry can be trusted:
//   - Every change to what an entry shows goes through its Store: product
//     writes (CreateProduct, UpdateProduct) and stock levels (the stock
//     consumer). Each drops the product's entries after its transaction
//     commits, and bumps gen, so a read that began before the commit (and
//     may have seen the old rows) is not kept. Within one process a reader
//     never sees a product older than the last committed change.
//   - Several catalog replicas share one PostgreSQL database, but each sees
//     only its own writes, and each stock event reaches one replica (the
//     consumer is durable and shared). So entries also expire after ttl:
//     a replica may show a product up to ttl older than a change made
//     through another replica. Availability is an event-fed read model and
//     already lags inventory by about that much.
//
// A ttl of 0 turns the cache off.
type productCache struct {
	ttl time.Duration

	mu      sync.Mutex
	gen     uint64 // bumped by every drop
	entries map[string]*productEntry
	size    int // bytes of JSON held
}

// maxCacheBytes bounds the JSON the cache holds; a full cache forgets
// expired entries first, and everything if that is not enough.
const maxCacheBytes = 16 << 20

// productEntry is one cached product. It is shared by concurrent requests
// and never changed after it is stored.
type productEntry struct {
	id, slug string
	sellerID string
	status   Status
	hidden   bool
	// body is the product as httpx.WriteJSON encodes it (newline included).
	body    []byte
	expires time.Time
}

func (e *productEntry) visibleTo(v Viewer) bool {
	p := Product{SellerID: e.sellerID, Status: e.status, Hidden: e.hidden}
	return p.VisibleTo(v)
}

func newProductCache(ttl time.Duration) *productCache {
	return &productCache{ttl: ttl, entries: map[string]*productEntry{}}
}

// get returns a fresh entry for key, or nil and the generation a fill must
// pass to put.
func (c *productCache) get(key string, now time.Time) (*productEntry, uint64) {
	if c.ttl <= 0 {
		return nil, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[key]; e != nil && now.Before(e.expires) {
		return e, 0
	}
	return nil, c.gen
}

// put stores e under key unless something was dropped since the get that
// returned gen: the fill may then have read rows older than that change.
func (c *productCache) put(key string, e *productEntry, gen uint64) {
	if c.ttl <= 0 || len(e.body) > maxCacheBytes/16 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if old := c.entries[key]; old != nil {
		c.size -= len(old.body)
		delete(c.entries, key)
	}
	if c.size+len(e.body) > maxCacheBytes {
		now := time.Now()
		for k, old := range c.entries {
			if !now.Before(old.expires) {
				c.size -= len(old.body)
				delete(c.entries, k)
			}
		}
		if c.size+len(e.body) > maxCacheBytes {
			clear(c.entries)
			c.size = 0
		}
	}
	c.entries[key] = e
	c.size += len(e.body)
}

// drop forgets a product, under both keys it can be asked for by. Call it
// after the change has committed.
func (c *productCache) drop(id, slug string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, k := range [2]string{id, slug} {
		if old := c.entries[k]; old != nil {
			c.size -= len(old.body)
			delete(c.entries, k)
		}
	}
}

// dropAll forgets every product, for when the changed one is unknown.
func (c *productCache) dropAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
	c.size = 0
}

// productJSON returns the product with the given id or slug encoded as
// httpx.WriteJSON would, from the cache while it is fresh. Visibility is the
// caller's business (productEntry.visibleTo). Errors: errs.NotFound.
func (s *Store) productJSON(ctx context.Context, idOrSlug string) (*productEntry, error) {
	now := time.Now()
	e, gen := s.cache.get(idOrSlug, now)
	if e != nil {
		return e, nil
	}
	p, err := s.Product(ctx, idOrSlug)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode product %s: %w", p.ID, err)
	}
	e = &productEntry{
		id: p.ID, slug: p.Slug, sellerID: p.SellerID, status: p.Status, hidden: p.Hidden,
		body: append(body, '\n'), expires: now.Add(s.cache.ttl),
	}
	s.cache.put(idOrSlug, e, gen)
	return e, nil
}

// stockChanged drops the cached products that hold skus, once their new
// stock levels have committed: one query for a whole batch. The holders
// are looked up after the commit, so a variant moved to another product
// meanwhile is found where it is now.
func (s *Store) stockChanged(ctx context.Context, skus ...string) {
	if s.cache.ttl <= 0 || len(skus) == 0 {
		return
	}
	in, args := sqldb.Placeholders(skus)
	rows, err := s.db.QueryContext(ctx, `SELECT p.id, p.slug FROM variants v JOIN products p ON p.id = v.product_id
		WHERE v.sku IN (`+in+`)`, args...)
	if err != nil {
		s.cache.dropAll()
		return
	}
	defer rows.Close()
	for rows.Next() {
		var id, slug string
		if err := rows.Scan(&id, &slug); err != nil {
			s.cache.dropAll()
			return
		}
		s.cache.drop(id, slug)
	}
	if rows.Err() != nil {
		s.cache.dropAll()
	}
}
