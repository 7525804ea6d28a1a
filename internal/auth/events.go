package auth

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/mallhive/mallhive/internal/gen/mallhive/events/v1"
	"github.com/mallhive/mallhive/internal/platform/events"
)

// EventSource is the source of every event the auth service emits.
const EventSource = "mallhive/" + ServiceName

// The event types auth emits (all on the "user" stream). Each is enqueued
// in the transaction of the change it announces.
const (
	// EventUserRegistered carries eventsv1.UserRegistered.
	EventUserRegistered = "user.registered"
	// EventEmailVerificationRequested carries
	// eventsv1.EmailVerificationRequested, with the plain one-time token.
	EventEmailVerificationRequested = "user.email_verification_requested"
	// EventPasswordResetRequested carries eventsv1.PasswordResetRequested,
	// with the plain one-time token.
	EventPasswordResetRequested = "user.password_reset_requested"
	// EventUserDisabled carries eventsv1.UserDisabled.
	EventUserDisabled = "user.disabled"
)

func newUserEvent(ctx context.Context, typ, userID string, msg proto.Message) (events.Event, error) {
	return events.New(ctx, EventSource, typ, userID, msg)
}

// userRegisteredEvent announces a new account; role is the role it signed
// up with (buyer or seller).
func userRegisteredEvent(ctx context.Context, u User, role string) (events.Event, error) {
	msg := &eventsv1.UserRegistered{
		UserId: u.ID,
		Email:  u.Email,
		Name:   u.Name,
		Role:   role,
		At:     timestamppb.New(u.CreatedAt),
	}
	if u.Seller != nil {
		msg.StoreName = u.Seller.StoreName
	}
	return newUserEvent(ctx, EventUserRegistered, u.ID, msg)
}

// emailVerificationEvent hands a verification token to the notify service.
func emailVerificationEvent(ctx context.Context, u User, token string, expires time.Time) (events.Event, error) {
	return newUserEvent(ctx, EventEmailVerificationRequested, u.ID, &eventsv1.EmailVerificationRequested{
		UserId:    u.ID,
		Email:     u.Email,
		Name:      u.Name,
		Token:     token,
		ExpiresAt: timestamppb.New(expires),
	})
}

// passwordResetEvent hands a reset token to the notify service.
func passwordResetEvent(ctx context.Context, u User, token string, expires time.Time) (events.Event, error) {
	return newUserEvent(ctx, EventPasswordResetRequested, u.ID, &eventsv1.PasswordResetRequested{
		UserId:    u.ID,
		Email:     u.Email,
		Name:      u.Name,
		Token:     token,
		ExpiresAt: timestamppb.New(expires),
	})
}

// userDisabledEvent announces that an admin disabled an account.
func userDisabledEvent(ctx context.Context, u User, at time.Time) (events.Event, error) {
	return newUserEvent(ctx, EventUserDisabled, u.ID, &eventsv1.UserDisabled{
		UserId: u.ID,
		Email:  u.Email,
		At:     timestamppb.New(at),
	})
}
