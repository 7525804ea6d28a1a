package catalog

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/mallhive/mallhive/internal/gen/mallhive/catalog/v1"
	"github.com/mallhive/mallhive/internal/gen/mallhive/catalog/v1/catalogv1connect"
)

// RPC bounds: a checkout or cart never prices more than a few hundred lines.
const (
	maxRPCKeys = 500
	maxRPCBody = 256 << 10
)

// RPC returns the connect handler of CatalogService.
func (s *Service) RPC() map[string]http.Handler {
	path, h := catalogv1connect.NewCatalogServiceHandler(rpcServer{store: s.store},
		append(slices.Clone(s.env.RPCHandlerOptions), connect.WithReadMaxBytes(maxRPCBody))...)
	return map[string]http.Handler{path: h}
}

// rpcServer answers with every product, whatever its status: callers (cart,
// checkout, order history) decide what they may sell from the status.
type rpcServer struct {
	store *Store
}

var _ catalogv1connect.CatalogServiceHandler = rpcServer{}

func (r rpcServer) GetProducts(ctx context.Context, req *connect.Request[catalogv1.GetProductsRequest]) (*connect.Response[catalogv1.GetProductsResponse], error) {
	ids, skus := req.Msg.GetProductIds(), req.Msg.GetSkus()
	if err := checkKeys(len(ids) + len(skus)); err != nil {
		return nil, err
	}
	ps, err := r.store.ProductsFor(ctx, cleanKeys(ids), cleanKeys(skus))
	if err != nil {
		return nil, err
	}
	out := &catalogv1.GetProductsResponse{}
	for i := range ps {
		p := &ps[i]
		rp := &catalogv1.Product{
			Id: p.ID, SellerId: p.SellerID, Title: p.Title, Slug: p.Slug, Status: p.WireStatus(),
			CategoryId: p.CategoryID, Brand: p.Brand, UpdatedAt: timestamppb.New(p.UpdatedAt),
		}
		for _, v := range p.Variants {
			rp.Variants = append(rp.Variants, &catalogv1.Variant{
				Sku: v.SKU, Options: v.Options, Price: moneyProto(&v.Price), CompareAtPrice: moneyProto(v.CompareAtPrice),
			})
		}
		out.Products = append(out.Products, rp)
	}
	return connect.NewResponse(out), nil
}

func (r rpcServer) GetVariants(ctx context.Context, req *connect.Request[catalogv1.GetVariantsRequest]) (*connect.Response[catalogv1.GetVariantsResponse], error) {
	skus := req.Msg.GetSkus()
	if err := checkKeys(len(skus)); err != nil {
		return nil, err
	}
	skus = cleanKeys(skus)
	ps, err := r.store.ProductsFor(ctx, nil, skus)
	if err != nil {
		return nil, err
	}
	bySKU := map[string]*catalogv1.VariantInfo{}
	for i := range ps {
		p := &ps[i]
		image := ""
		if len(p.Images) > 0 {
			image = p.Images[0]
		}
		for _, v := range p.Variants {
			bySKU[v.SKU] = &catalogv1.VariantInfo{
				Sku: v.SKU, ProductId: p.ID, SellerId: p.SellerID, ProductTitle: p.Title,
				ProductStatus: p.WireStatus(), Options: v.Options, Price: moneyProto(&v.Price), ImageUrl: image,
			}
		}
	}
	// Answer in the caller's order, which makes pricing output stable.
	out := &catalogv1.GetVariantsResponse{}
	for _, sku := range skus {
		if vi, ok := bySKU[sku]; ok {
			out.Variants = append(out.Variants, vi)
		}
	}
	return connect.NewResponse(out), nil
}

func checkKeys(n int) error {
	switch {
	case n == 0:
		return connect.NewError(connect.CodeInvalidArgument, errors.New("name at least one product id or SKU"))
	case n > maxRPCKeys:
		return connect.NewError(connect.CodeInvalidArgument, errors.New("at most 500 product ids and SKUs per call"))
	}
	return nil
}

// cleanKeys drops duplicates and keys that cannot exist (too long, control
// characters): an unknown key is simply left out of the answer.
func cleanKeys(keys []string) []string {
	seen := make(map[string]bool, len(keys))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if _, ok := parseID(k); ok && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}
