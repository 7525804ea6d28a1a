package httpx

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

type clientIPKey struct{}

// ClientIP returns the caller's address that the ClientIPs middleware found.
func ClientIP(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return ip
}

// ClientIPs finds the real client address: the TCP peer, unless the peer is
// a trusted proxy (the gateway, a load balancer), in which case the
// right-most X-Forwarded-For entry that is not itself trusted. Throttling
// and audit logs key on it.
func ClientIPs(trusted []netip.Prefix) func(http.Handler) http.Handler {
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			host, _, err := net.SplitHostPort(r.RemoteAddr)
			if err != nil {
				host = r.RemoteAddr
			}
			ip := host
			// A peer that forwards no one (a service calling another) has
			// no hops to walk.
			xff := r.Header.Values("X-Forwarded-For")
			if peer, err := netip.ParseAddr(host); len(xff) > 0 && err == nil && isTrusted(peer) {
				hops := strings.Split(strings.Join(xff, ","), ",")
				for i := len(hops) - 1; i >= 0; i-- {
					a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
					if err != nil {
						break
					}
					ip = a.Unmap().String()
					if !isTrusted(a) {
						break
					}
				}
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientIPKey{}, ip)))
		})
	}
}
