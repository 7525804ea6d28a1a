package cart

// This file is the inventory half of the service: stock per SKU, set by its
// seller, and reservations held for orders. The SQL lives in
// inventory_store.go; REST in inventory_http.go; RPC in rpc.go.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mallhive/mallhive/internal/platform/errs"
)

// Bounds on inventory input.
const (
	// MaxOnHand bounds a SKU's stock, so sums never overflow.
	MaxOnHand int64 = 1_000_000_000
	// MaxReserveLines bounds the lines of one reservation.
	MaxReserveLines = 100
	// MaxReserveQuantity bounds one reservation line.
	MaxReserveQuantity int64 = 1_000_000
	// MaxSKULen bounds a SKU; SKUs are [A-Za-z0-9._-].
	MaxSKULen = 100
	// MaxOrderIDLen bounds an order id; ids are [A-Za-z0-9._:-].
	MaxOrderIDLen = 128
	// MaxNoteLen bounds the free-text reason of an adjustment or release.
	MaxNoteLen = 200
)

// Reservation statuses. A reservation starts reserved and moves exactly once
// to one of the three others.
const (
	StatusReserved  = "reserved"
	StatusCommitted = "committed"
	StatusReleased  = "released"
	StatusExpired   = "expired"
)

// Reasons recorded in the ledger and carried by stock events.
const (
	ReasonAdjusted  = "adjusted"  // the seller set the stock, or lowered it
	ReasonRestocked = "restocked" // the seller added stock
	ReasonReserved  = "reserved"
	ReasonCommitted = "committed"
	ReasonReleased  = "released"
	ReasonExpired   = "expired"
)

// Actors recorded in the ledger besides seller user ids.
const (
	actorSystem  = "system"  // an RPC caller (the order service)
	actorSweeper = "sweeper" // the expiry sweeper
)

// Level is the stock of one SKU.
type Level struct {
	SKU          string
	SellerID     string
	ProductID    string
	OnHand       int64
	Reserved     int64
	LowThreshold int64
	UpdatedAt    time.Time
}

// Available is what can still be reserved.
func (l Level) Available() int64 { return l.OnHand - l.Reserved }

// ReserveLine is a quantity of one SKU held for an order.
type ReserveLine struct {
	SKU      string
	Quantity int64
}

// Reservation is the stock held for one order.
type Reservation struct {
	OrderID   string
	Status    string
	ExpiresAt time.Time
	// Lines are sorted by SKU.
	Lines []ReserveLine
}

// LedgerEntry is one recorded change of a SKU's stock.
type LedgerEntry struct {
	ID            string
	SKU           string
	DeltaOnHand   int64
	DeltaReserved int64
	Reason        string
	Actor         string
	OrderID       string
	Note          string
	At            time.Time
}

// errLinesDiffer marks a Reserve for an order that already holds a
// reservation with other lines; the RPC edge answers already_exists.
var errLinesDiffer = errors.New("reservation lines differ")

// Inventory is the stock half of the service.
type Inventory struct {
	store      *inventoryStore
	catalog    Catalog
	log        *slog.Logger
	now        func() time.Time
	defaultTTL time.Duration
	maxTTL     time.Duration
	defaultLow int64
	results    *prometheus.CounterVec // reservation outcomes; nil in tests
}

// clock is now as precise as both databases store it (PostgreSQL keeps
// microseconds), so what a call returns equals what a retry reads back.
func (inv *Inventory) clock() time.Time { return inv.now().UTC().Truncate(time.Microsecond) }

func (inv *Inventory) count(result string) {
	if inv.results != nil {
		inv.results.WithLabelValues(result).Inc()
	}
}

// Get returns the stock of a SKU owned by seller. Errors: NotFound when the
// SKU has no stock or belongs to another seller.
func (inv *Inventory) Get(ctx context.Context, sellerID, sku string) (Level, error) {
	if err := checkSKU("sku", sku); err != nil {
		return Level{}, err
	}
	l, found, err := inv.store.level(ctx, inv.store.db, sku, false)
	if err != nil {
		return Level{}, err
	}
	if !found || l.SellerID != sellerID {
		return Level{}, errNoStock(sku)
	}
	return l, nil
}

// List returns up to limit of the seller's SKUs ordered by SKU, starting
// after the SKU after ("" for the first page).
func (inv *Inventory) List(ctx context.Context, sellerID, after string, limit int) ([]Level, error) {
	return inv.store.list(ctx, sellerID, after, limit)
}

// Ledger returns up to limit ledger entries of a SKU owned by seller, newest
// first, older than the entry id before ("" for the newest). Errors:
// NotFound as for Get.
func (inv *Inventory) Ledger(ctx context.Context, sellerID, sku, before string, limit int) ([]LedgerEntry, error) {
	if _, err := inv.Get(ctx, sellerID, sku); err != nil {
		return nil, err
	}
	return inv.store.ledger(ctx, sku, before, limit)
}

// Levels returns the stock of the known SKUs among skus.
func (inv *Inventory) Levels(ctx context.Context, skus []string) (map[string]Level, error) {
	return inv.store.levels(ctx, skus)
}

// Set sets a SKU's on-hand stock (and its low threshold when low is not
// nil) for its seller. The first Set of a SKU asks the catalog who owns it.
// created reports whether the SKU had no stock before. Errors: Invalid for
// bad input; NotFound for a SKU the catalog does not know or that another
// seller owns; Conflict when onHand is below what is reserved; Unavailable
// when the catalog cannot be asked.
func (inv *Inventory) Set(ctx context.Context, sellerID, sku string, onHand int64, low *int64) (l Level, created bool, err error) {
	f := errs.Fields{}
	f.Check(onHand >= 0 && onHand <= MaxOnHand, "on_hand", fmt.Sprintf("must be between 0 and %d", MaxOnHand))
	f.Check(low == nil || (*low >= 0 && *low <= MaxOnHand), "low_threshold", fmt.Sprintf("must be between 0 and %d", MaxOnHand))
	if err := f.Err(); err != nil {
		return Level{}, false, err
	}
	if err := checkSKU("sku", sku); err != nil {
		return Level{}, false, err
	}
	// Two first Sets can race; the loser of the insert updates instead.
	for range 3 {
		cur, found, err := inv.store.level(ctx, inv.store.db, sku, false)
		if err != nil {
			return Level{}, false, err
		}
		if found {
			if cur.SellerID != sellerID {
				return Level{}, false, errNoStock(sku)
			}
			l, err := inv.store.set(ctx, sellerID, sku, onHand, low, inv.clock())
			return l, false, err
		}
		v, err := inv.ownedVariant(ctx, sellerID, sku)
		if err != nil {
			return Level{}, false, err
		}
		threshold := inv.defaultLow
		if low != nil {
			threshold = *low
		}
		l, ok, err := inv.store.create(ctx, Level{
			SKU: sku, SellerID: sellerID, ProductID: v.ProductID, OnHand: onHand, LowThreshold: threshold,
		}, inv.clock())
		if err != nil || ok {
			return l, ok, err
		}
	}
	return Level{}, false, errs.E(errs.Conflict, "stock of %s is being changed concurrently; try again", sku)
}

// ownedVariant asks the catalog whether seller sells sku.
func (inv *Inventory) ownedVariant(ctx context.Context, sellerID, sku string) (Variant, error) {
	vs, err := inv.catalog.Variants(ctx, []string{sku})
	if err != nil {
		return Variant{}, fmt.Errorf("look up owner of %s: %w", sku, err)
	}
	v, ok := vs[sku]
	if !ok || v.SellerID != sellerID {
		return Variant{}, errs.E(errs.NotFound, "SKU %s not found among your products", sku)
	}
	return v, nil
}

// Adjust changes a SKU's on-hand stock by delta, with the seller's reason.
// Errors: Invalid for bad input; NotFound when the SKU has no stock or
// another seller owns it; Conflict when on hand would drop below what is
// reserved or exceed MaxOnHand.
func (inv *Inventory) Adjust(ctx context.Context, sellerID, sku string, delta int64, reason string) (Level, error) {
	f := errs.Fields{}
	f.Check(delta != 0 && delta >= -MaxOnHand && delta <= MaxOnHand, "delta", fmt.Sprintf("must be non-zero, between %d and %d", -MaxOnHand, MaxOnHand))
	f.Check(validNote(reason) && strings.TrimSpace(reason) != "", "reason", fmt.Sprintf("must be 1 to %d printable characters", MaxNoteLen))
	if err := f.Err(); err != nil {
		return Level{}, err
	}
	if err := checkSKU("sku", sku); err != nil {
		return Level{}, err
	}
	return inv.store.adjust(ctx, sellerID, sku, delta, strings.TrimSpace(reason), inv.clock())
}

// Reserve holds every line for the order, or nothing. It is idempotent per
// order: the same lines again return the existing reservation. ttl 0 means
// the default; longer than the maximum is capped. Errors: Invalid for bad
// input; NotFound for an unknown SKU; Conflict when a SKU lacks stock (the
// message says how many are available), or when the order's reservation was
// already released or expired, or (wrapping errLinesDiffer) when it holds
// other lines.
func (inv *Inventory) Reserve(ctx context.Context, orderID string, lines []ReserveLine, ttl time.Duration) (Reservation, error) {
	return inv.reserveAt(ctx, orderID, lines, ttl, inv.clock())
}

func (inv *Inventory) reserveAt(ctx context.Context, orderID string, lines []ReserveLine, ttl time.Duration, now time.Time) (Reservation, error) {
	lines, err := inv.checkReserve(orderID, lines, ttl)
	if err != nil {
		return Reservation{}, err
	}
	switch {
	case ttl == 0:
		ttl = inv.defaultTTL
	case ttl > inv.maxTTL:
		ttl = inv.maxTTL
	}
	now = now.UTC().Truncate(time.Microsecond)
	res, existed, err := inv.store.reserve(ctx, orderID, lines, now, now.Add(ttl))
	if err != nil {
		if errs.Is(err, errs.Conflict) {
			inv.count("insufficient")
		}
		return Reservation{}, err
	}
	if !existed {
		inv.count(ReasonReserved)
		return res, nil
	}
	switch {
	case res.Status == StatusReleased || res.Status == StatusExpired:
		return Reservation{}, errs.E(errs.Conflict, "the reservation for order %s was %s; use a new order id", orderID, res.Status)
	case !slices.Equal(res.Lines, lines):
		return Reservation{}, &errs.Error{Code: errs.Conflict, Err: errLinesDiffer,
			Message: fmt.Sprintf("order %s already holds a reservation with other lines", orderID)}
	}
	return res, nil
}

func (inv *Inventory) checkReserve(orderID string, lines []ReserveLine, ttl time.Duration) ([]ReserveLine, error) {
	f := errs.Fields{}
	f.Check(validID(orderID, MaxOrderIDLen), "order_id", fmt.Sprintf("must be 1 to %d characters of A-Z a-z 0-9 . _ : -", MaxOrderIDLen))
	f.Check(len(lines) > 0 && len(lines) <= MaxReserveLines, "lines", fmt.Sprintf("must hold 1 to %d lines", MaxReserveLines))
	f.Check(ttl >= 0, "ttl", "must not be negative")
	if err := f.Err(); err != nil {
		return nil, err
	}
	sorted := slices.Clone(lines)
	slices.SortFunc(sorted, func(a, b ReserveLine) int { return strings.Compare(a.SKU, b.SKU) })
	for i, l := range sorted {
		name := fmt.Sprintf("lines[%d]", slices.Index(lines, l))
		f.Check(validID(l.SKU, MaxSKULen) && !strings.Contains(l.SKU, ":"), name+".sku", "must be a SKU")
		f.Check(l.Quantity > 0 && l.Quantity <= MaxReserveQuantity, name+".quantity", fmt.Sprintf("must be between 1 and %d", MaxReserveQuantity))
		f.Check(i == 0 || sorted[i-1].SKU != l.SKU, name+".sku", "appears twice")
	}
	// Sorted lines also lock stock rows in one order, so two concurrent
	// reservations can never deadlock on PostgreSQL.
	return sorted, f.Err()
}

// Commit turns the order's reservation into a sale. Committing twice
// succeeds. Errors: Invalid for a bad order id; NotFound when there is no
// reservation; Conflict when it was released or has expired (an expired one
// is released here if the sweeper has not yet done it).
func (inv *Inventory) Commit(ctx context.Context, orderID string) error {
	return inv.commitAt(ctx, orderID, inv.clock())
}

func (inv *Inventory) commitAt(ctx context.Context, orderID string, now time.Time) error {
	if !validID(orderID, MaxOrderIDLen) {
		return errs.Field("order_id", "must be an order id")
	}
	status, err := inv.store.commit(ctx, orderID, now)
	if err != nil {
		return err
	}
	switch status {
	case "":
		return errs.E(errs.NotFound, "no reservation for order %s", orderID)
	case StatusCommitted:
		inv.count(ReasonCommitted)
		return nil
	default:
		return errs.E(errs.Conflict, "the reservation for order %s was %s", orderID, status)
	}
}

// Release returns the order's reserved stock. It succeeds when there is no
// reservation (leaving a tombstone, so a late Reserve for the order fails)
// and when it was already released or expired. Errors: Invalid for bad
// input; Conflict when the reservation was committed.
func (inv *Inventory) Release(ctx context.Context, orderID, reason string) error {
	if !validID(orderID, MaxOrderIDLen) {
		return errs.Field("order_id", "must be an order id")
	}
	if !validNote(reason) {
		return errs.Field("reason", fmt.Sprintf("must be at most %d printable characters", MaxNoteLen))
	}
	status, err := inv.store.release(ctx, orderID, reason, inv.clock())
	if err != nil {
		return err
	}
	if status == StatusCommitted {
		return errs.E(errs.Conflict, "the reservation for order %s was committed", orderID)
	}
	inv.count(ReasonReleased)
	return nil
}

// SweepExpired releases reservations whose time is up and returns how many.
func (inv *Inventory) SweepExpired(ctx context.Context) (int, error) {
	return inv.sweepAt(ctx, inv.clock())
}

func (inv *Inventory) sweepAt(ctx context.Context, now time.Time) (int, error) {
	const batch = 100
	n := 0
	for range 20 { // bound one sweep; the next tick continues
		ids, err := inv.store.expiredOrders(ctx, now, batch)
		if err != nil {
			return n, err
		}
		for _, id := range ids {
			expired, err := inv.store.expire(ctx, id, now)
			if err != nil {
				return n, err
			}
			if expired {
				n++
				inv.count(ReasonExpired)
			}
		}
		if len(ids) < batch {
			break
		}
	}
	return n, nil
}

func errNoStock(sku string) error {
	return errs.E(errs.NotFound, "no stock recorded for SKU %s among your products", sku)
}

// checkSKU validates a SKU given by a caller.
func checkSKU(field, sku string) error {
	if !validID(sku, MaxSKULen) || strings.Contains(sku, ":") {
		return errs.Field(field, fmt.Sprintf("must be 1 to %d characters of A-Z a-z 0-9 . _ -", MaxSKULen))
	}
	return nil
}

// validID reports whether s is 1..max characters of [A-Za-z0-9._:-].
func validID(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':') {
			return false
		}
	}
	return true
}

// validNote reports whether s is short, valid UTF-8 without control characters.
func validNote(s string) bool {
	if len(s) > MaxNoteLen*4 || utf8.RuneCountInString(s) > MaxNoteLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
