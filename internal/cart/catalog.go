package cart

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	catalogv1 "github.com/mallhive/mallhive/internal/gen/mallhive/catalog/v1"
	"github.com/mallhive/mallhive/internal/gen/mallhive/catalog/v1/catalogv1connect"
	"github.com/mallhive/mallhive/internal/platform/errs"
	"github.com/mallhive/mallhive/internal/platform/money"
)

// ProductActive is the only product status that can be bought.
const ProductActive = "active"

// Variant is what the cart service needs to know about a SKU from the
// catalog: who sells it, its current price and whether it can be bought.
type Variant struct {
	SKU       string
	ProductID string
	SellerID  string
	Title     string
	// Status is the owning product's status; only ProductActive sells.
	Status   string
	Options  map[string]string
	Price    money.Money
	ImageURL string
}

// Catalog is the part of the catalog service the cart service uses.
type Catalog interface {
	// Variants returns the known SKUs among skus; unknown ones are left out.
	// Errors are errs.Unavailable when the catalog cannot be reached.
	Variants(ctx context.Context, skus []string) (map[string]Variant, error)
}

// catalogBatch bounds one GetVariants call; a merge can price two full carts.
const catalogBatch = 100

// catalogClient reaches the catalog through its RPC client, also when both
// services share a process.
type catalogClient struct {
	rpc catalogv1connect.CatalogServiceClient
}

// NewCatalog returns a Catalog backed by the catalog service's RPC API.
func NewCatalog(rpc catalogv1connect.CatalogServiceClient) Catalog {
	return catalogClient{rpc: rpc}
}

func (c catalogClient) Variants(ctx context.Context, skus []string) (map[string]Variant, error) {
	out := make(map[string]Variant, len(skus))
	for start := 0; start < len(skus); start += catalogBatch {
		batch := skus[start:min(start+catalogBatch, len(skus))]
		res, err := c.rpc.GetVariants(ctx, connect.NewRequest(&catalogv1.GetVariantsRequest{Skus: batch}))
		if err != nil {
			return nil, catalogError(err)
		}
		for _, v := range res.Msg.GetVariants() {
			out[v.GetSku()] = Variant{
				SKU:       v.GetSku(),
				ProductID: v.GetProductId(),
				SellerID:  v.GetSellerId(),
				Title:     v.GetProductTitle(),
				Status:    v.GetProductStatus(),
				Options:   v.GetOptions(),
				Price:     money.Money{Amount: v.GetPrice().GetAmount(), Currency: v.GetPrice().GetCurrency()},
				ImageURL:  v.GetImageUrl(),
			}
		}
	}
	return out, nil
}

// catalogError keeps the caller's cancellation and turns every other
// catalog failure into Unavailable: our callers did nothing wrong.
func catalogError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("catalog get variants: %w", err)
	}
	return &errs.Error{Code: errs.Unavailable, Message: "the catalog is unavailable; try again later", Err: err}
}
