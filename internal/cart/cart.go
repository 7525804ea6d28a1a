package cart

// This file is the cart half of the service: carts of guests and users, the
// rules for adding to them, pricing from the catalog and merging a guest's
// cart into a user's. Storage is behind Store (cart_store*.go); REST in
// cart_http.go.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/money"
)

// Bounds on carts.
const (
	// MaxQuantity bounds the units of one line.
	MaxQuantity = 99
	// MaxLines bounds the lines of one cart.
	MaxLines = 100
	// MaxUserIDLen bounds the user ids the RPC API accepts.
	MaxUserIDLen = 128
)

// Key identifies a cart: a user's, or a guest's by the hash of its token.
// The two never collide, so a cart token can never name a user's cart.
type Key struct {
	guest bool
	id    string // user id, or hex SHA-256 of the guest token
}

// UserKey is the key of a user's cart.
func UserKey(userID string) Key { return Key{id: userID} }

// Guest reports whether k names a guest cart.
func (k Key) Guest() bool { return k.guest }

// String renders the key as stored: "u:<user id>" or "g:<token hash>".
func (k Key) String() string {
	if k.guest {
		return "g:" + k.id
	}
	return "u:" + k.id
}

// guestTokenBytes is the entropy of a guest cart token.
const guestTokenBytes = 32

// newGuestToken returns a fresh guest cart token and its key. Only the
// token's hash is ever stored, so a leaked database or Redis dump does not
// open anyone's cart.
func newGuestToken() (string, Key) {
	var b [guestTokenBytes]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	return tok, guestKey(b[:])
}

// parseGuestToken returns the key of a well-formed token.
func parseGuestToken(tok string) (Key, bool) {
	if len(tok) != base64.RawURLEncoding.EncodedLen(guestTokenBytes) {
		return Key{}, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	if err != nil || len(b) != guestTokenBytes {
		return Key{}, false
	}
	return guestKey(b), true
}

func guestKey(raw []byte) Key {
	sum := sha256.Sum256(raw)
	return Key{guest: true, id: hex.EncodeToString(sum[:])}
}

// Line is one SKU in a cart.
type Line struct {
	SKU      string
	Quantity int
	// AddedPrice is the unit price when the line was added, so a later
	// price change can be pointed out to the buyer.
	AddedPrice money.Money
	AddedAt    time.Time
}

// Cart is a cart's stored content: lines in the order they were added.
type Cart struct {
	Lines []Line
}

func (c *Cart) index(sku string) int {
	return slices.IndexFunc(c.Lines, func(l Line) bool { return l.SKU == sku })
}

// currency is the currency of the cart's lines other than skip ("" when
// none): a cart holds one currency.
func (c *Cart) currency(skip string) string {
	for _, l := range c.Lines {
		if l.SKU != skip {
			return l.AddedPrice.Currency
		}
	}
	return ""
}

// sortLines puts lines in the order they were added; stores call it after
// loading.
func (c *Cart) sortLines() {
	slices.SortFunc(c.Lines, func(a, b Line) int {
		if c := a.AddedAt.Compare(b.AddedAt); c != 0 {
			return c
		}
		if a.SKU < b.SKU {
			return -1
		}
		return 1
	})
}

// carts holds the cart operations.
type carts struct {
	store     Store
	catalog   Catalog
	inventory *Inventory
	now       func() time.Time
}

// LineView is a cart line priced from the catalog.
type LineView struct {
	SKU       string            `json:"sku"`
	ProductID string            `json:"product_id,omitempty"`
	SellerID  string            `json:"seller_id,omitempty"`
	Title     string            `json:"title,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
	ImageURL  string            `json:"image_url,omitempty"`
	Quantity  int               `json:"quantity"`
	// UnitPrice is the catalog's current price (the added price when the
	// catalog no longer knows the SKU).
	UnitPrice money.Money `json:"unit_price"`
	LineTotal money.Money `json:"line_total"`
	// AddedPrice is the unit price when the line was added; PriceChanged
	// says it differs from UnitPrice.
	AddedPrice   money.Money `json:"added_price"`
	PriceChanged bool        `json:"price_changed"`
	// Unavailable lines cannot be bought now and are left out of the
	// subtotal; UnavailableReason is one of unknown_sku, inactive,
	// out_of_stock, currency.
	Unavailable       bool   `json:"unavailable"`
	UnavailableReason string `json:"unavailable_reason,omitempty"`
	// Available is the stock that can still be bought; a quantity above it
	// will fail at checkout.
	Available int64     `json:"available"`
	AddedAt   time.Time `json:"added_at"`
}

// View is a cart priced from the catalog.
type View struct {
	Lines []LineView `json:"lines"`
	// ItemCount is the number of units in the cart.
	ItemCount int `json:"item_count"`
	// Subtotal sums the available lines; null when there is none.
	Subtotal *money.Money `json:"subtotal"`
}

// price builds the view of a cart from current catalog prices and stock.
func (cs *carts) price(ctx context.Context, c Cart) (View, error) {
	v := View{Lines: []LineView{}}
	if len(c.Lines) == 0 {
		return v, nil
	}
	skus := make([]string, len(c.Lines))
	for i, l := range c.Lines {
		skus[i] = l.SKU
	}
	variants, err := cs.catalog.Variants(ctx, skus)
	if err != nil {
		return View{}, err
	}
	levels, err := cs.inventory.Levels(ctx, skus)
	if err != nil {
		return View{}, err
	}
	currency := ""
	for _, l := range c.Lines {
		lv := LineView{SKU: l.SKU, Quantity: l.Quantity, AddedPrice: l.AddedPrice, UnitPrice: l.AddedPrice,
			AddedAt: l.AddedAt, Available: max(levels[l.SKU].Available(), 0)}
		vr, known := variants[l.SKU]
		if known {
			lv.ProductID, lv.SellerID, lv.Title, lv.Options, lv.ImageURL = vr.ProductID, vr.SellerID, vr.Title, vr.Options, vr.ImageURL
			lv.UnitPrice = vr.Price
			lv.PriceChanged = vr.Price != l.AddedPrice
		}
		lv.LineTotal = lv.UnitPrice.Times(int64(l.Quantity))
		switch {
		case !known:
			lv.UnavailableReason = "unknown_sku"
		case vr.Status != ProductActive:
			lv.UnavailableReason = "inactive"
		case lv.Available == 0:
			lv.UnavailableReason = "out_of_stock"
		case currency != "" && vr.Price.Currency != currency:
			lv.UnavailableReason = "currency"
		}
		lv.Unavailable = lv.UnavailableReason != ""
		v.ItemCount += l.Quantity
		if !lv.Unavailable {
			currency = lv.UnitPrice.Currency
			if v.Subtotal == nil {
				v.Subtotal = &money.Money{Currency: currency}
			}
			v.Subtotal.Amount += lv.LineTotal.Amount
		}
		v.Lines = append(v.Lines, lv)
	}
	return v, nil
}

// variant returns the catalog's facts about a SKU that can be bought.
// Errors: NotFound for an unknown SKU; Conflict for an inactive product.
func (cs *carts) variant(ctx context.Context, sku string) (Variant, int64, error) {
	vs, err := cs.catalog.Variants(ctx, []string{sku})
	if err != nil {
		return Variant{}, 0, err
	}
	v, ok := vs[sku]
	if !ok {
		return Variant{}, 0, errs.E(errs.NotFound, "unknown SKU %s", sku)
	}
	if v.Status != ProductActive {
		return Variant{}, 0, errs.E(errs.Conflict, "%s is not for sale right now", sku)
	}
	if err := v.Price.Validate(); err != nil {
		return Variant{}, 0, fmt.Errorf("catalog price of %s: %w", sku, err)
	}
	levels, err := cs.inventory.Levels(ctx, []string{sku})
	if err != nil {
		return Variant{}, 0, err
	}
	return v, max(levels[sku].Available(), 0), nil
}

func checkQuantity(q int) error {
	if q < 1 || q > MaxQuantity {
		return errs.Field("quantity", fmt.Sprintf("must be between 1 and %d", MaxQuantity))
	}
	return nil
}

// Add adds quantity units of sku to the cart, merging with a line of the
// same SKU. Errors: Invalid for bad input; NotFound for an unknown SKU;
// Conflict for an inactive product, a line above MaxQuantity or above the
// available stock (the message says how many are available), a full cart, or
// a price in another currency than the cart's.
func (cs *carts) Add(ctx context.Context, key Key, sku string, quantity int) (Cart, error) {
	if err := checkSKU("sku", sku); err != nil {
		return Cart{}, err
	}
	if err := checkQuantity(quantity); err != nil {
		return Cart{}, err
	}
	v, available, err := cs.variant(ctx, sku)
	if err != nil {
		return Cart{}, err
	}
	now := cs.now().UTC().Truncate(time.Microsecond) // as precise as every store
	return cs.store.Update(ctx, key, func(c *Cart) error {
		if cur := c.currency(sku); cur != "" && cur != v.Price.Currency {
			return errs.E(errs.Conflict, "your cart is priced in %s and %s in %s; check out or remove those items first", cur, sku, v.Price.Currency)
		}
		i := c.index(sku)
		have := 0
		if i >= 0 {
			have = c.Lines[i].Quantity
		} else if len(c.Lines) >= MaxLines {
			return errs.E(errs.Conflict, "a cart holds at most %d different items", MaxLines)
		}
		want := have + quantity
		switch {
		case want > MaxQuantity:
			return errs.E(errs.Conflict, "a cart line holds at most %d units; %d are already in your cart", MaxQuantity, have)
		case int64(want) > available:
			return errs.E(errs.Conflict, "only %d of %s available; %d are already in your cart", available, sku, have)
		}
		if i < 0 {
			c.Lines = append(c.Lines, Line{SKU: sku, Quantity: want, AddedPrice: v.Price, AddedAt: now})
			return nil
		}
		// Adding again means the buyer saw the current price.
		c.Lines[i].Quantity, c.Lines[i].AddedPrice = want, v.Price
		return nil
	})
}

// SetQuantity sets the quantity of a line in the cart. Raising it checks the
// product and stock like Add; lowering it always works. Errors: Invalid for
// bad input; NotFound when the SKU is not in the cart (or not in the catalog
// when raising); Conflict as for Add.
func (cs *carts) SetQuantity(ctx context.Context, key Key, sku string, quantity int) (Cart, error) {
	if err := checkSKU("sku", sku); err != nil {
		return Cart{}, err
	}
	if err := checkQuantity(quantity); err != nil {
		return Cart{}, err
	}
	cur, err := cs.store.Get(ctx, key)
	if err != nil {
		return Cart{}, err
	}
	i := cur.index(sku)
	if i < 0 {
		return Cart{}, errNotInCart(sku)
	}
	available := int64(MaxQuantity)
	if quantity > cur.Lines[i].Quantity {
		if _, available, err = cs.variant(ctx, sku); err != nil {
			return Cart{}, err
		}
	}
	return cs.store.Update(ctx, key, func(c *Cart) error {
		i := c.index(sku)
		if i < 0 {
			return errNotInCart(sku)
		}
		if quantity > c.Lines[i].Quantity && int64(quantity) > available {
			return errs.E(errs.Conflict, "only %d of %s available", available, sku)
		}
		c.Lines[i].Quantity = quantity
		return nil
	})
}

func errNotInCart(sku string) error { return errs.E(errs.NotFound, "%s is not in your cart", sku) }

// Remove removes a SKU from the cart; removing a SKU that is not there
// succeeds. Errors: Invalid for a bad SKU.
func (cs *carts) Remove(ctx context.Context, key Key, sku string) (Cart, error) {
	if err := checkSKU("sku", sku); err != nil {
		return Cart{}, err
	}
	cur, err := cs.store.Get(ctx, key)
	if err != nil || cur.index(sku) < 0 {
		return cur, err // nothing to remove: write nothing
	}
	return cs.store.Update(ctx, key, func(c *Cart) error {
		if i := c.index(sku); i >= 0 {
			c.Lines = slices.Delete(c.Lines, i, i+1)
		}
		return nil
	})
}

// Merge moves a guest's cart into a user's and retires the guest cart.
// Quantities of a SKU in both add up, bounded by MaxQuantity and the
// available stock, but never below what the user already had; a guest line
// whose SKU is out of stock comes over with one unit (flagged unavailable)
// rather than being lost. Guest lines in another currency than the user's
// cart, or beyond MaxLines, are dropped.
func (cs *carts) Merge(ctx context.Context, guest, user Key) (Cart, error) {
	g, err := cs.store.Get(ctx, guest)
	if err != nil {
		return Cart{}, err
	}
	if len(g.Lines) == 0 {
		if err := cs.store.Delete(ctx, guest); err != nil {
			return Cart{}, err
		}
		return cs.store.Get(ctx, user)
	}
	skus := make([]string, len(g.Lines))
	for i, l := range g.Lines {
		skus[i] = l.SKU
	}
	variants, err := cs.catalog.Variants(ctx, skus)
	if err != nil {
		return Cart{}, err
	}
	levels, err := cs.inventory.Levels(ctx, skus)
	if err != nil {
		return Cart{}, err
	}
	return cs.store.Merge(ctx, guest, user, func(from Cart, to *Cart) error {
		currency := to.currency("")
		for _, gl := range from.Lines {
			lineCurrency := gl.AddedPrice.Currency
			if v, ok := variants[gl.SKU]; ok {
				lineCurrency = v.Price.Currency
			}
			if currency != "" && lineCurrency != currency {
				continue
			}
			bound := int(min(max(levels[gl.SKU].Available(), 1), MaxQuantity))
			if i := to.index(gl.SKU); i >= 0 {
				have := to.Lines[i].Quantity
				to.Lines[i].Quantity = max(have, min(have+gl.Quantity, bound))
				continue
			}
			if len(to.Lines) >= MaxLines {
				continue
			}
			gl.Quantity = min(gl.Quantity, bound)
			to.Lines = append(to.Lines, gl)
			currency = gl.AddedPrice.Currency
		}
		return nil
	})
}
