package auth

import (
	"context"
	"sync"
	"testing"
	"time"

	eventsv1 "github.com/mallhive/mallhive/internal/gen/mallhive/events/v1"
	"github.com/mallhive/mallhive/internal/platform/events"
)

// TestEventsPublished runs the service and checks that what each change
// put in the outbox reaches JetStream, with its envelope and payload.
func TestEventsPublished(t *testing.T) {
	eachEngine(t, func(t *testing.T, h *harness) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- h.svc.Run(ctx) }()
		defer func() {
			cancel()
			<-done
		}()
		if err := h.svc.Ready(t.Context()); err != nil {
			t.Fatal(err)
		}

		var mu sync.Mutex
		got := map[string]events.Event{}
		sub, err := h.env.Bus.Consume(t.Context(), events.ConsumerConfig{Name: "auth_test", Domain: "user"}, func(_ context.Context, e events.Event) error {
			mu.Lock()
			got[e.Type] = e
			mu.Unlock()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Stop()

		admin, _ := h.createAdmin("ev-admin@example.com")
		u := h.register("ev@example.com", pw1, "Eve")
		h.do("POST", "/api/v1/auth/password-reset", map[string]string{"email": "ev@example.com"})
		expect(t, h.do("PATCH", "/api/v1/admin/users/"+u.ID, map[string]any{"disabled": true}, bearer(admin.AccessToken)), 200, "disable")

		want := []string{EventUserRegistered, EventEmailVerificationRequested, EventPasswordResetRequested, EventUserDisabled}
		deadline := time.Now().Add(15 * time.Second)
		for {
			mu.Lock()
			n := 0
			for _, typ := range want {
				if e, ok := got[typ]; ok && e.Subject == u.ID {
					n++
				}
			}
			mu.Unlock()
			if n == len(want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("published %v, want all of %v", keys(got), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, typ := range want {
			if e := got[typ]; e.Source != EventSource || e.ID == "" {
				t.Errorf("%s envelope %+v", typ, e)
			}
		}
		var reg eventsv1.UserRegistered
		if err := got[EventUserRegistered].Decode(&reg); err != nil || reg.GetUserId() != u.ID || reg.GetName() != "Eve" {
			t.Errorf("registered payload %v %v", &reg, err)
		}
		var reset eventsv1.PasswordResetRequested
		wantExp := h.clock.Now().Add(h.svc.cfg.ResetTTL)
		if err := got[EventPasswordResetRequested].Decode(&reset); err != nil || reset.GetToken() == "" ||
			!reset.GetExpiresAt().AsTime().Equal(wantExp) || reset.GetEmail() != "ev@example.com" {
			t.Errorf("reset payload %v (want expiry %v) %v", &reset, wantExp, err)
		}
		var disabled eventsv1.UserDisabled
		if err := got[EventUserDisabled].Decode(&disabled); err != nil || disabled.GetUserId() != u.ID {
			t.Errorf("disabled payload %v %v", &disabled, err)
		}
		// The relay empties the outbox once it has published.
		for deadline := time.Now().Add(10 * time.Second); len(h.outbox("")) > 0; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d events left in the outbox", len(h.outbox("")))
			}
		}
	})
}

func keys(m map[string]events.Event) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
