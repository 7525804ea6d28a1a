package catalog

import (
	"net/http"
	"net/url"

	"github.com/mallhive/mallhive/internal/platform/authn"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/httpx"
	"github.com/mallhive/mallhive/internal/platform/money"
)

// Body limits. A product with every field at its limit (100 variants of 10
// options, 50 attributes, 10,000 characters of description) stays well
// under maxProductBody.
const (
	maxProductBody  = 512 << 10
	maxCategoryBody = 16 << 10
	maxQuery        = 4 << 10
)

// Handler serves the catalog's REST routes. Callers are authenticated
// upstream (authn middleware); handlers read the principal from the context.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/categories", httpx.HandlerFunc(s.getCategories))
	mux.Handle("POST /api/v1/categories", httpx.HandlerFunc(s.createCategory))
	mux.Handle("PATCH /api/v1/categories/{id}", httpx.HandlerFunc(s.updateCategory))
	mux.Handle("DELETE /api/v1/categories/{id}", httpx.HandlerFunc(s.deleteCategory))
	mux.Handle("GET /api/v1/products", httpx.HandlerFunc(s.listProducts))
	mux.Handle("POST /api/v1/products", httpx.HandlerFunc(s.createProduct))
	mux.Handle("GET /api/v1/products/{id}", httpx.HandlerFunc(s.getProduct))
	mux.Handle("PATCH /api/v1/products/{id}", httpx.HandlerFunc(s.updateProduct))
	mux.Handle("DELETE /api/v1/products/{id}", httpx.HandlerFunc(s.archiveProduct))
	mux.Handle("POST /api/v1/products/{id}/images", httpx.HandlerFunc(s.uploadImage))
	mux.Handle("GET /api/v1/images/{key}", httpx.HandlerFunc(s.getImage))
	return mux
}

func viewerOf(r *http.Request) Viewer {
	p, ok := authn.FromContext(r.Context())
	if !ok {
		return Viewer{}
	}
	return Viewer{UserID: p.UserID, Admin: p.HasRole(authn.RoleAdmin)}
}

func pathID(r *http.Request, what string) (string, error) {
	id, ok := parseID(r.PathValue("id"))
	if !ok {
		return "", errs.E(errs.NotFound, "no such %s", what)
	}
	return id, nil
}

// --- categories ---

type categoryInput struct {
	ParentID *string `json:"parent_id"`
	Slug     *string `json:"slug"`
	Name     *string `json:"name"`
	Position *int    `json:"position"`
}

func (in categoryInput) apply(c *Category) {
	if in.ParentID != nil {
		c.ParentID = *in.ParentID // "" moves it to the root
	}
	if in.Slug != nil {
		c.Slug = *in.Slug
	}
	if in.Name != nil {
		c.Name = *in.Name
	}
	if in.Position != nil {
		c.Position = *in.Position
	}
}

func (s *Service) getCategories(w http.ResponseWriter, r *http.Request) error {
	tree, err := s.store.CategoryTree(r.Context())
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": tree})
	return nil
}

func (s *Service) createCategory(w http.ResponseWriter, r *http.Request) error {
	if _, err := authn.Require(r.Context(), authn.RoleAdmin); err != nil {
		return err
	}
	var in categoryInput
	if err := httpx.DecodeJSON(w, r, &in, maxCategoryBody); err != nil {
		return err
	}
	var c Category
	in.apply(&c)
	if err := s.store.CreateCategory(r.Context(), &c); err != nil {
		return err
	}
	c.Children = []*Category{}
	httpx.WriteJSON(w, http.StatusCreated, c)
	return nil
}

func (s *Service) updateCategory(w http.ResponseWriter, r *http.Request) error {
	if _, err := authn.Require(r.Context(), authn.RoleAdmin); err != nil {
		return err
	}
	id, err := pathID(r, "category")
	if err != nil {
		return err
	}
	var in categoryInput
	if err := httpx.DecodeJSON(w, r, &in, maxCategoryBody); err != nil {
		return err
	}
	c, err := s.store.UpdateCategory(r.Context(), id, func(c *Category) error {
		in.apply(c)
		return nil
	})
	if err != nil {
		return err
	}
	c.Children = []*Category{}
	httpx.WriteJSON(w, http.StatusOK, c)
	return nil
}

func (s *Service) deleteCategory(w http.ResponseWriter, r *http.Request) error {
	if _, err := authn.Require(r.Context(), authn.RoleAdmin); err != nil {
		return err
	}
	id, err := pathID(r, "category")
	if err != nil {
		return err
	}
	if err := s.store.DeleteCategory(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- products ---

type variantInput struct {
	SKU            string            `json:"sku"`
	Options        map[string]string `json:"options"`
	Price          *money.Money      `json:"price"`
	CompareAtPrice *money.Money      `json:"compare_at_price"`
}

func toVariants(in []variantInput) ([]Variant, error) {
	f := errs.Fields{}
	out := make([]Variant, len(in))
	for i, v := range in {
		f.Check(v.Price != nil, "variants["+itoa(i)+"].price", "is required")
		out[i] = Variant{SKU: v.SKU, Options: v.Options, CompareAtPrice: v.CompareAtPrice}
		if v.Price != nil {
			out[i].Price = *v.Price
		}
	}
	return out, f.Err()
}

// productInput is what a seller sends to create a product; anything else
// (ids, slug, seller, hidden, timestamps) is set by the service.
type productInput struct {
	Title       string            `json:"title"`
	Description string            `json:"description"`
	Brand       string            `json:"brand"`
	CategoryID  string            `json:"category_id"`
	Status      Status            `json:"status"`
	Attributes  map[string]string `json:"attributes"`
	Images      []string          `json:"images"`
	Variants    []variantInput    `json:"variants"`
}

// productPatch changes the fields it names; lists and maps are replaced
// whole. Only admins may set hidden.
type productPatch struct {
	Title       *string            `json:"title"`
	Description *string            `json:"description"`
	Brand       *string            `json:"brand"`
	CategoryID  *string            `json:"category_id"`
	Status      *Status            `json:"status"`
	Attributes  *map[string]string `json:"attributes"`
	Images      *[]string          `json:"images"`
	Variants    *[]variantInput    `json:"variants"`
	Hidden      *bool              `json:"hidden"`
}

// sellerFields reports whether the patch touches anything but hidden.
func (in productPatch) sellerFields() bool {
	return in.Title != nil || in.Description != nil || in.Brand != nil || in.CategoryID != nil ||
		in.Status != nil || in.Attributes != nil || in.Images != nil || in.Variants != nil
}

func (s *Service) listProducts(w http.ResponseWriter, r *http.Request) error {
	if len(r.URL.RawQuery) > maxQuery {
		return errs.E(errs.Invalid, "the query string is longer than %d bytes", maxQuery)
	}
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return errs.E(errs.Invalid, "the query string is malformed")
	}
	q, err := ParseListQuery(vals)
	if err != nil {
		return err
	}
	page, err := s.store.ListProducts(r.Context(), q, viewerOf(r))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, page)
	return nil
}

func (s *Service) getProduct(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "product")
	if err != nil {
		return err
	}
	p, err := s.store.productJSON(r.Context(), id)
	if err != nil {
		return err
	}
	if !p.visibleTo(viewerOf(r)) {
		return errs.E(errs.NotFound, "no such product")
	}
	httpx.WriteJSONBytes(w, http.StatusOK, p.body)
	return nil
}

func (s *Service) createProduct(w http.ResponseWriter, r *http.Request) error {
	pr, err := authn.Require(r.Context(), authn.RoleSeller)
	if err != nil {
		return err
	}
	var in productInput
	if err := httpx.DecodeJSON(w, r, &in, maxProductBody); err != nil {
		return err
	}
	if in.Status == StatusArchived {
		return errs.Field("status", "a new product is draft or active")
	}
	variants, err := toVariants(in.Variants)
	if err != nil {
		return err
	}
	p := Product{
		SellerID: pr.UserID, Title: in.Title, Description: in.Description, Brand: in.Brand,
		CategoryID: in.CategoryID, Status: in.Status, Attributes: in.Attributes, Images: in.Images, Variants: variants,
	}
	if err := s.store.CreateProduct(r.Context(), &p); err != nil {
		return err
	}
	// Read back: stock may have been announced before the product existed.
	created, err := s.store.Product(r.Context(), p.ID)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/products/"+p.ID)
	httpx.WriteJSON(w, http.StatusCreated, created)
	return nil
}

func (s *Service) updateProduct(w http.ResponseWriter, r *http.Request) error {
	pr, err := authn.Require(r.Context(), authn.RoleSeller, authn.RoleAdmin)
	if err != nil {
		return err
	}
	id, err := pathID(r, "product")
	if err != nil {
		return err
	}
	var in productPatch
	if err := httpx.DecodeJSON(w, r, &in, maxProductBody); err != nil {
		return err
	}
	var variants []Variant
	if in.Variants != nil {
		if variants, err = toVariants(*in.Variants); err != nil {
			return err
		}
	}
	admin := pr.HasRole(authn.RoleAdmin)
	p, err := s.store.UpdateProduct(r.Context(), id, func(p *Product) error {
		owner := p.SellerID == pr.UserID
		switch {
		case !owner && !admin:
			return errs.E(errs.NotFound, "no such product") // never reveal another seller's product
		case !owner && in.sellerFields():
			return errs.E(errs.Forbidden, "admins may only change hidden on other sellers' products")
		case in.Hidden != nil && !admin:
			return errs.E(errs.Forbidden, "only admins can hide products")
		case !in.sellerFields() && in.Hidden == nil:
			return ErrNoChange
		}
		setIf(&p.Title, in.Title)
		setIf(&p.Description, in.Description)
		setIf(&p.Brand, in.Brand)
		setIf(&p.CategoryID, in.CategoryID)
		setIf(&p.Status, in.Status)
		setIf(&p.Attributes, in.Attributes)
		setIf(&p.Images, in.Images)
		setIf(&p.Hidden, in.Hidden)
		if in.Variants != nil {
			p.Variants = variants
		}
		return nil
	})
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, p)
	return nil
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// archiveProduct is DELETE: products are archived, never removed, because
// orders and analytics keep pointing at them.
func (s *Service) archiveProduct(w http.ResponseWriter, r *http.Request) error {
	pr, err := authn.Require(r.Context(), authn.RoleSeller)
	if err != nil {
		return err
	}
	id, err := pathID(r, "product")
	if err != nil {
		return err
	}
	p, err := s.store.UpdateProduct(r.Context(), id, func(p *Product) error {
		if p.SellerID != pr.UserID {
			return errs.E(errs.NotFound, "no such product")
		}
		if p.Status == StatusArchived {
			return ErrNoChange
		}
		p.Status = StatusArchived
		return nil
	})
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, p)
	return nil
}
