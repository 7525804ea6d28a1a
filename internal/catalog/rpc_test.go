package catalog

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"

	catalogv1 "github.com/mallhive/mallhive/internal/gen/mallhive/catalog/v1"
	"github.com/mallhive/mallhive/internal/gen/mallhive/catalog/v1/catalogv1connect"
	"github.com/mallhive/mallhive/internal/platform/money"
	"github.com/mallhive/mallhive/internal/platform/sqldb"
)

func TestRPC(t *testing.T) {
	t.Parallel()
	ts := newTestService(t, sqldb.SQLite, nil)
	ctx := context.Background()
	cat := ts.category("things", "", 0)
	active := ts.product(sellerA, "Rpc active", cat.ID, StatusActive, 1999, 2999)
	draft := ts.product(sellerB, "Rpc draft", cat.ID, StatusDraft, 500)
	if _, err := ts.store.UpdateProduct(ctx, active.ID, func(p *Product) error {
		p.Images = []string{"https://cdn.example.com/a.png"}
		p.Variants[0].CompareAtPrice = &money.Money{Amount: 2499, Currency: "EUR"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	mux := http.NewServeMux()
	for path, h := range ts.RPC() {
		mux.Handle(path, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := catalogv1connect.NewCatalogServiceClient(srv.Client(), srv.URL)

	t.Run("GetVariants returns authoritative prices and status", func(t *testing.T) {
		skus := []string{draft.Variants[0].SKU, "UNKNOWN", active.Variants[1].SKU, active.Variants[0].SKU}
		res, err := client.GetVariants(ctx, connect.NewRequest(&catalogv1.GetVariantsRequest{Skus: skus}))
		if err != nil {
			t.Fatal(err)
		}
		got := res.Msg.GetVariants()
		if len(got) != 3 {
			t.Fatalf("%d variants, want 3 (unknown left out)", len(got))
		}
		want := []struct {
			sku, status, seller string
			amount              int64
		}{
			{draft.Variants[0].SKU, "draft", sellerB.id, 500},
			{active.Variants[1].SKU, "active", sellerA.id, 2999},
			{active.Variants[0].SKU, "active", sellerA.id, 1999},
		}
		for i, w := range want {
			v := got[i]
			if v.GetSku() != w.sku || v.GetProductStatus() != w.status || v.GetSellerId() != w.seller ||
				v.GetPrice().GetAmount() != w.amount || v.GetPrice().GetCurrency() != "EUR" {
				t.Fatalf("variant %d: %v, want %+v", i, v, w)
			}
		}
		if got[2].GetImageUrl() != "https://cdn.example.com/a.png" || got[2].GetProductTitle() != "Rpc active" {
			t.Fatalf("variant facts %v", got[2])
		}
	})

	t.Run("GetProducts by ids and skus, each once", func(t *testing.T) {
		res, err := client.GetProducts(ctx, connect.NewRequest(&catalogv1.GetProductsRequest{
			ProductIds: []string{active.ID, "nope", active.ID},
			Skus:       []string{active.Variants[0].SKU, draft.Variants[0].SKU},
		}))
		if err != nil {
			t.Fatal(err)
		}
		ps := res.Msg.GetProducts()
		if len(ps) != 2 || ps[0].GetId() != active.ID || ps[1].GetId() != draft.ID {
			t.Fatalf("products %v", ps)
		}
		if v := ps[0].GetVariants()[0]; v.GetCompareAtPrice().GetAmount() != 2499 || ps[0].GetUpdatedAt() == nil {
			t.Fatalf("variant %v", v)
		}
	})

	t.Run("bounds", func(t *testing.T) {
		tooMany := make([]string, 501)
		for i := range tooMany {
			tooMany[i] = fmt.Sprint("SKU-", i)
		}
		tests := []struct {
			name string
			call func() error
		}{
			{"no skus", func() error {
				_, err := client.GetVariants(ctx, connect.NewRequest(&catalogv1.GetVariantsRequest{}))
				return err
			}},
			{"501 skus", func() error {
				_, err := client.GetVariants(ctx, connect.NewRequest(&catalogv1.GetVariantsRequest{Skus: tooMany}))
				return err
			}},
			{"nothing named", func() error {
				_, err := client.GetProducts(ctx, connect.NewRequest(&catalogv1.GetProductsRequest{}))
				return err
			}},
			{"501 keys", func() error {
				_, err := client.GetProducts(ctx, connect.NewRequest(&catalogv1.GetProductsRequest{ProductIds: tooMany[:300], Skus: tooMany[300:]}))
				return err
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if code := connect.CodeOf(tt.call()); code != connect.CodeInvalidArgument {
					t.Fatalf("code %v, want invalid_argument", code)
				}
			})
		}
		res, err := client.GetVariants(ctx, connect.NewRequest(&catalogv1.GetVariantsRequest{Skus: tooMany[:500]}))
		if err != nil || len(res.Msg.GetVariants()) != 0 {
			t.Fatalf("500 unknown skus: %v, %v", res, err)
		}
	})
}
