package cart

import (
	"net/http"
	"strings"
	"time"

	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/httpx"
)

// stockJSON is a SKU's stock as sellers see it.
type stockJSON struct {
	SKU          string    `json:"sku"`
	ProductID    string    `json:"product_id"`
	SellerID     string    `json:"seller_id"`
	OnHand       int64     `json:"on_hand"`
	Reserved     int64     `json:"reserved"`
	Available    int64     `json:"available"`
	LowThreshold int64     `json:"low_threshold"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func stockView(l Level) stockJSON {
	return stockJSON{SKU: l.SKU, ProductID: l.ProductID, SellerID: l.SellerID, OnHand: l.OnHand, Reserved: l.Reserved,
		Available: l.Available(), LowThreshold: l.LowThreshold, UpdatedAt: l.UpdatedAt}
}

type ledgerJSON struct {
	ID            string    `json:"id"`
	DeltaOnHand   int64     `json:"delta_on_hand"`
	DeltaReserved int64     `json:"delta_reserved"`
	Reason        string    `json:"reason"`
	Actor         string    `json:"actor"`
	OrderID       string    `json:"order_id,omitempty"`
	Note          string    `json:"note,omitempty"`
	At            time.Time `json:"at"`
}

// seller returns the calling seller: 401 for anonymous callers, 403 for
// callers without the seller role.
func seller(r *http.Request) (authn.Principal, error) {
	return authn.Require(r.Context(), authn.RoleSeller)
}

// putStock: PUT /api/v1/inventory/{sku} {"on_hand", "low_threshold"?}.
// 201 when the SKU had no stock yet, 200 otherwise.
func (s *Service) putStock(w http.ResponseWriter, r *http.Request) error {
	p, err := seller(r)
	if err != nil {
		return err
	}
	sku, err := pathSKU(r)
	if err != nil {
		return err
	}
	var in struct {
		OnHand       *int64 `json:"on_hand"`
		LowThreshold *int64 `json:"low_threshold"`
	}
	if err := httpx.DecodeJSON(w, r, &in, maxBody); err != nil {
		return err
	}
	f := errs.Fields{}
	required(f, in.OnHand != nil, "on_hand")
	if err := f.Err(); err != nil {
		return err
	}
	l, created, err := s.inventory.Set(r.Context(), p.UserID, sku, *in.OnHand, in.LowThreshold)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	httpx.WriteJSON(w, status, stockView(l))
	return nil
}

// adjustStock: POST /api/v1/inventory/{sku}/adjustments {"delta", "reason"}.
func (s *Service) adjustStock(w http.ResponseWriter, r *http.Request) error {
	p, err := seller(r)
	if err != nil {
		return err
	}
	sku, err := pathSKU(r)
	if err != nil {
		return err
	}
	var in struct {
		Delta  *int64  `json:"delta"`
		Reason *string `json:"reason"`
	}
	if err := httpx.DecodeJSON(w, r, &in, maxBody); err != nil {
		return err
	}
	f := errs.Fields{}
	required(f, in.Delta != nil, "delta")
	required(f, in.Reason != nil, "reason")
	if err := f.Err(); err != nil {
		return err
	}
	l, err := s.inventory.Adjust(r.Context(), p.UserID, sku, *in.Delta, *in.Reason)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, stockView(l))
	return nil
}

// getStock: GET /api/v1/inventory/{sku}, the owner only.
func (s *Service) getStock(w http.ResponseWriter, r *http.Request) error {
	p, err := seller(r)
	if err != nil {
		return err
	}
	sku, err := pathSKU(r)
	if err != nil {
		return err
	}
	l, err := s.inventory.Get(r.Context(), p.UserID, sku)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, stockView(l))
	return nil
}

// listStock: GET /api/v1/inventory?page_size=&page_token=, the caller's SKUs
// in SKU order.
func (s *Service) listStock(w http.ResponseWriter, r *http.Request) error {
	p, err := seller(r)
	if err != nil {
		return err
	}
	size, after, err := page(r, func(sku string) bool { return checkSKU("", sku) == nil })
	if err != nil {
		return err
	}
	levels, err := s.inventory.List(r.Context(), p.UserID, after, size+1)
	if err != nil {
		return err
	}
	out := struct {
		Items         []stockJSON `json:"items"`
		NextPageToken string      `json:"next_page_token,omitempty"`
	}{Items: []stockJSON{}}
	if len(levels) > size {
		levels = levels[:size]
		out.NextPageToken = pageToken(levels[size-1].SKU)
	}
	for _, l := range levels {
		out.Items = append(out.Items, stockView(l))
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

// stockLedger: GET /api/v1/inventory/{sku}/ledger, newest first, the owner
// only.
func (s *Service) stockLedger(w http.ResponseWriter, r *http.Request) error {
	p, err := seller(r)
	if err != nil {
		return err
	}
	sku, err := pathSKU(r)
	if err != nil {
		return err
	}
	size, before, err := page(r, func(id string) bool { return validID(id, 64) && !strings.Contains(id, ":") })
	if err != nil {
		return err
	}
	entries, err := s.inventory.Ledger(r.Context(), p.UserID, sku, before, size+1)
	if err != nil {
		return err
	}
	out := struct {
		Items         []ledgerJSON `json:"items"`
		NextPageToken string       `json:"next_page_token,omitempty"`
	}{Items: []ledgerJSON{}}
	if len(entries) > size {
		entries = entries[:size]
		out.NextPageToken = pageToken(entries[size-1].ID)
	}
	for _, e := range entries {
		out.Items = append(out.Items, ledgerJSON{ID: e.ID, DeltaOnHand: e.DeltaOnHand, DeltaReserved: e.DeltaReserved,
			Reason: e.Reason, Actor: e.Actor, OrderID: e.OrderID, Note: e.Note, At: e.At})
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}
