package catalog

import (
	"context"
	"sync"
	"time"

	"connectrpc.com/connect"

	authv1 "github.com/mallhive/mallhive/internal/gen/mallhive/auth/v1"
	"github.com/mallhive/mallhive/internal/gen/mallhive/auth/v1/authv1connect"
)

// SellerNames tells the store name of a seller, for the snapshots that
// product events carry (search shows it). Names live in auth.
type SellerNames interface {
	StoreName(ctx context.Context, sellerID string) string
}

// authSellers asks auth's GetUser RPC and remembers answers for a while. A
// failed lookup gives "" (the event still goes out; the next write of the
// product carries the name): a product write never waits on auth for long.
type authSellers struct {
	client authv1connect.AuthServiceClient

	mu    sync.Mutex
	names map[string]cachedName
}

type cachedName struct {
	name string
	at   time.Time
}

const sellerNameTTL = 10 * time.Minute

func newAuthSellers(client authv1connect.AuthServiceClient) *authSellers {
	return &authSellers{client: client, names: map[string]cachedName{}}
}

func (a *authSellers) StoreName(ctx context.Context, sellerID string) string {
	a.mu.Lock()
	c, ok := a.names[sellerID]
	a.mu.Unlock()
	if ok && time.Since(c.at) < sellerNameTTL {
		return c.name
	}
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	resp, err := a.client.GetUser(ctx, connect.NewRequest(&authv1.GetUserRequest{Id: sellerID}))
	if err != nil {
		return c.name // the stale name, if any, beats none
	}
	name := resp.Msg.GetUser().GetStoreName()
	a.mu.Lock()
	if len(a.names) > 10_000 {
		clear(a.names) // bounded memory; names are cheap to fetch again
	}
	a.names[sellerID] = cachedName{name: name, at: time.Now()}
	a.mu.Unlock()
	return name
}
