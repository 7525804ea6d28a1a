package cart

import (
	"context"
	"net/http"

	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/httpx"
)

// How guests carry their cart token: browsers by cookie, other clients by
// header. Both are sent back by the first write of a guest cart.
const (
	CartTokenHeader = "X-Cart-Token"
	CartCookie      = "mallhive_cart"
)

// cartCaller is whose cart a request acts on.
type cartCaller struct {
	key Key
	// ok is false for a guest without a (well-formed) token: no cart yet.
	ok bool
	// token is the guest's token; empty for users.
	token string
}

// resolveCart finds the caller's cart. A user's request that also carries a
// guest token merges the guest cart into the user's, retires it and clears
// the cookie. A guest token only ever names a guest cart.
func (s *Service) resolveCart(w http.ResponseWriter, r *http.Request) (cartCaller, error) {
	tok := r.Header.Get(CartTokenHeader)
	fromCookie := false
	if tok == "" {
		if c, err := r.Cookie(CartCookie); err == nil {
			tok, fromCookie = c.Value, true
		}
	}
	guest, validToken := parseGuestToken(tok)
	if p, ok := authn.FromContext(r.Context()); ok {
		if !validID(p.UserID, MaxUserIDLen) {
			return cartCaller{}, errs.E(errs.Unauthenticated, "the access token names no user")
		}
		user := UserKey(p.UserID)
		if validToken {
			if _, err := s.carts.Merge(r.Context(), guest, user); err != nil {
				return cartCaller{}, err
			}
		}
		if tok != "" {
			s.clearCartCookie(w, r)
		}
		return cartCaller{key: user, ok: true}, nil
	}
	if !validToken {
		if fromCookie {
			s.clearCartCookie(w, r)
		}
		return cartCaller{}, nil
	}
	return cartCaller{key: guest, ok: true, token: tok}, nil
}

// issueToken gives a guest a cart of their own for their first write. A
// token whose cart does not exist is replaced too, so that a token planted
// in a browser cannot collect what its owner adds.
func (s *Service) issueToken(ctx context.Context, c cartCaller) (cartCaller, error) {
	if c.ok && !c.key.Guest() {
		return c, nil
	}
	if c.ok {
		cur, err := s.carts.store.Get(ctx, c.key)
		if err != nil || len(cur.Lines) > 0 {
			return c, err
		}
	}
	tok, key := newGuestToken()
	return cartCaller{key: key, ok: true, token: tok}, nil
}

// sendToken returns a guest's token after a write, renewing the cookie.
func (s *Service) sendToken(w http.ResponseWriter, r *http.Request, c cartCaller) {
	if c.token == "" {
		return
	}
	w.Header().Set(CartTokenHeader, c.token)
	http.SetCookie(w, &http.Cookie{
		Name: CartCookie, Value: c.token, Path: "/",
		MaxAge:   int(s.cfg.GuestCartTTL.Seconds()),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode,
	})
}

func (s *Service) clearCartCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: CartCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode,
	})
}

// writeCart answers with the priced cart, or returns why it could not be
// priced.
func (s *Service) writeCart(w http.ResponseWriter, r *http.Request, c Cart) error {
	v, err := s.carts.price(r.Context(), c)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, v)
	return nil
}

// getCart: GET /api/v1/cart.
func (s *Service) getCart(w http.ResponseWriter, r *http.Request) error {
	c, err := s.resolveCart(w, r)
	if err != nil {
		return err
	}
	var cart Cart
	if c.ok {
		if cart, err = s.carts.store.Get(r.Context(), c.key); err != nil {
			return err
		}
	}
	return s.writeCart(w, r, cart)
}

// clearCart: DELETE /api/v1/cart.
func (s *Service) clearCart(w http.ResponseWriter, r *http.Request) error {
	c, err := s.resolveCart(w, r)
	if err != nil {
		return err
	}
	if c.ok {
		if err := s.carts.store.Delete(r.Context(), c.key); err != nil {
			return err
		}
	}
	return s.writeCart(w, r, Cart{})
}

// addItem: POST /api/v1/cart/items {"sku", "quantity"}.
func (s *Service) addItem(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		SKU      *string `json:"sku"`
		Quantity *int    `json:"quantity"`
	}
	if err := httpx.DecodeJSON(w, r, &in, maxBody); err != nil {
		return err
	}
	f := errs.Fields{}
	required(f, in.SKU != nil, "sku")
	required(f, in.Quantity != nil, "quantity")
	if in.SKU != nil {
		f.Check(checkSKU("sku", *in.SKU) == nil, "sku", "must be 1 to 100 characters of A-Z a-z 0-9 . _ -")
	}
	if in.Quantity != nil {
		f.Check(checkQuantity(*in.Quantity) == nil, "quantity", "must be between 1 and 99")
	}
	if err := f.Err(); err != nil {
		return err
	}
	c, err := s.resolveCart(w, r)
	if err == nil {
		c, err = s.issueToken(r.Context(), c)
	}
	if err != nil {
		return err
	}
	cart, err := s.carts.Add(r.Context(), c.key, *in.SKU, *in.Quantity)
	if err != nil {
		return err
	}
	s.sendToken(w, r, c)
	return s.writeCart(w, r, cart)
}

// setItem: PATCH /api/v1/cart/items/{sku} {"quantity"}.
func (s *Service) setItem(w http.ResponseWriter, r *http.Request) error {
	sku, err := pathSKU(r)
	if err != nil {
		return err
	}
	var in struct {
		Quantity *int `json:"quantity"`
	}
	if err := httpx.DecodeJSON(w, r, &in, maxBody); err != nil {
		return err
	}
	if in.Quantity == nil {
		return errs.Field("quantity", "is required")
	}
	if err := checkQuantity(*in.Quantity); err != nil {
		return err
	}
	c, err := s.resolveCart(w, r)
	if err != nil {
		return err
	}
	if !c.ok {
		return errNotInCart(sku)
	}
	cart, err := s.carts.SetQuantity(r.Context(), c.key, sku, *in.Quantity)
	if err != nil {
		return err
	}
	s.sendToken(w, r, c)
	return s.writeCart(w, r, cart)
}

// removeItem: DELETE /api/v1/cart/items/{sku}; removing a SKU that is not in
// the cart succeeds.
func (s *Service) removeItem(w http.ResponseWriter, r *http.Request) error {
	sku, err := pathSKU(r)
	if err != nil {
		return err
	}
	c, err := s.resolveCart(w, r)
	if err != nil {
		return err
	}
	var cart Cart
	if c.ok {
		if cart, err = s.carts.Remove(r.Context(), c.key, sku); err != nil {
			return err
		}
	}
	if len(cart.Lines) > 0 {
		s.sendToken(w, r, c)
	}
	return s.writeCart(w, r, cart)
}
