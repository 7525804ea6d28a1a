package cart

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	cartv1 "github.com/mallhive/mallhive/internal/gen/mallhive/cart/v1"
	"github.com/mallhive/mallhive/internal/gen/mallhive/cart/v1/cartv1connect"
	commonv1 "github.com/mallhive/mallhive/internal/gen/mallhive/common/v1"
	"github.com/mallhive/mallhive/internal/platform/errs"
)

// MaxStockQuery bounds the SKUs of one GetStock call.
const MaxStockQuery = 500

// maxRPCBytes bounds an RPC request; the largest is a 100-line Reserve.
const maxRPCBytes = 256 << 10

// RPC implements svc.Service: the InventoryService and CartService handlers.
func (s *Service) RPC() map[string]http.Handler {
	opts := append(slices.Clone(s.rpcOpts), connect.WithReadMaxBytes(maxRPCBytes))
	invPath, inv := cartv1connect.NewInventoryServiceHandler(inventoryRPC{s}, opts...)
	cartPath, cart := cartv1connect.NewCartServiceHandler(cartRPC{s}, opts...)
	return map[string]http.Handler{invPath: inv, cartPath: cart}
}

type inventoryRPC struct{ s *Service }

func (h inventoryRPC) Reserve(ctx context.Context, req *connect.Request[cartv1.ReserveRequest]) (*connect.Response[cartv1.ReserveResponse], error) {
	if len(req.Msg.GetLines()) > MaxReserveLines {
		return nil, errs.Field("lines", "too many lines")
	}
	lines := make([]ReserveLine, len(req.Msg.GetLines()))
	for i, l := range req.Msg.GetLines() {
		lines[i] = ReserveLine{SKU: l.GetSku(), Quantity: int64(l.GetQuantity())}
	}
	var ttl = req.Msg.GetTtl().AsDuration()
	if req.Msg.GetTtl() != nil && req.Msg.GetTtl().CheckValid() != nil {
		return nil, errs.Field("ttl", "is not a valid duration")
	}
	res, err := h.s.inventory.Reserve(ctx, req.Msg.GetOrderId(), lines, ttl)
	if errors.Is(err, errLinesDiffer) {
		// The domain calls it a conflict; the RPC contract says already_exists.
		return nil, connect.NewError(connect.CodeAlreadyExists, err)
	}
	if err != nil {
		return nil, err
	}
	out := &cartv1.ReserveResponse{ReservationId: res.OrderID, ExpiresAt: timestamppb.New(res.ExpiresAt)}
	for _, l := range res.Lines {
		out.Lines = append(out.Lines, &cartv1.ReserveLine{Sku: l.SKU, Quantity: int32(l.Quantity)})
	}
	return connect.NewResponse(out), nil
}

func (h inventoryRPC) Commit(ctx context.Context, req *connect.Request[cartv1.CommitRequest]) (*connect.Response[cartv1.CommitResponse], error) {
	if err := h.s.inventory.Commit(ctx, req.Msg.GetOrderId()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&cartv1.CommitResponse{}), nil
}

func (h inventoryRPC) Release(ctx context.Context, req *connect.Request[cartv1.ReleaseRequest]) (*connect.Response[cartv1.ReleaseResponse], error) {
	if err := h.s.inventory.Release(ctx, req.Msg.GetOrderId(), req.Msg.GetReason()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&cartv1.ReleaseResponse{}), nil
}

func (h inventoryRPC) GetStock(ctx context.Context, req *connect.Request[cartv1.GetStockRequest]) (*connect.Response[cartv1.GetStockResponse], error) {
	skus := req.Msg.GetSkus()
	if len(skus) == 0 || len(skus) > MaxStockQuery {
		return nil, errs.Field("skus", "must hold 1 to 500 SKUs")
	}
	for _, sku := range skus {
		if err := checkSKU("skus", sku); err != nil {
			return nil, err
		}
	}
	levels, err := h.s.inventory.Levels(ctx, skus)
	if err != nil {
		return nil, err
	}
	out := &cartv1.GetStockResponse{}
	seen := map[string]bool{}
	for _, sku := range skus {
		l, ok := levels[sku]
		if !ok || seen[sku] {
			continue
		}
		seen[sku] = true
		out.Levels = append(out.Levels, &cartv1.StockLevel{Sku: l.SKU, SellerId: l.SellerID, OnHand: l.OnHand,
			Reserved: l.Reserved, Available: l.Available(), LowThreshold: l.LowThreshold})
	}
	return connect.NewResponse(out), nil
}

type cartRPC struct{ s *Service }

func checkUserID(id string) error {
	if !validID(id, MaxUserIDLen) {
		return errs.Field("user_id", "must be a user id")
	}
	return nil
}

// GetCart returns the user's lines that the catalog still sells in the
// cart's currency, priced now. Stock is not checked here: Reserve does that
// at checkout.
func (h cartRPC) GetCart(ctx context.Context, req *connect.Request[cartv1.GetCartRequest]) (*connect.Response[cartv1.GetCartResponse], error) {
	userID := req.Msg.GetUserId()
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	c, err := h.s.carts.store.Get(ctx, UserKey(userID))
	if err != nil {
		return nil, err
	}
	v, err := h.s.carts.price(ctx, c)
	if err != nil {
		return nil, err
	}
	out := &cartv1.Cart{Id: userID, UserId: userID}
	var subtotal *commonv1.Money
	for _, l := range v.Lines {
		if l.UnavailableReason == "unknown_sku" || l.UnavailableReason == "currency" ||
			(subtotal != nil && l.LineTotal.Currency != subtotal.Currency) {
			continue
		}
		out.Lines = append(out.Lines, &cartv1.CartLine{
			Sku: l.SKU, ProductId: l.ProductID, SellerId: l.SellerID, Title: l.Title, Quantity: int32(l.Quantity),
			UnitPrice: &commonv1.Money{Amount: l.UnitPrice.Amount, Currency: l.UnitPrice.Currency},
			LineTotal: &commonv1.Money{Amount: l.LineTotal.Amount, Currency: l.LineTotal.Currency},
		})
		if subtotal == nil {
			subtotal = &commonv1.Money{Currency: l.LineTotal.Currency}
		}
		subtotal.Amount += l.LineTotal.Amount
	}
	out.Subtotal = subtotal
	return connect.NewResponse(&cartv1.GetCartResponse{Cart: out}), nil
}

func (h cartRPC) ClearCart(ctx context.Context, req *connect.Request[cartv1.ClearCartRequest]) (*connect.Response[cartv1.ClearCartResponse], error) {
	if err := checkUserID(req.Msg.GetUserId()); err != nil {
		return nil, err
	}
	if err := h.s.carts.store.Delete(ctx, UserKey(req.Msg.GetUserId())); err != nil {
		return nil, err
	}
	return connect.NewResponse(&cartv1.ClearCartResponse{}), nil
}
