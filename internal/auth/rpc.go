package auth

import (
	"context"
	"errors"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/mallhive/mallhive/internal/gen/mallhive/auth/v1"
	"github.com/mallhive/mallhive/internal/gen/mallhive/auth/v1/authv1connect"
)

// RPC returns the AuthService connect handler, keyed by its path.
func (s *Service) RPC() map[string]http.Handler {
	path, h := authv1connect.NewAuthServiceHandler(rpcServer{s}, s.rpcOpts...)
	return map[string]http.Handler{path: h}
}

// rpcServer implements authv1connect.AuthServiceHandler.
type rpcServer struct{ s *Service }

var _ authv1connect.AuthServiceHandler = rpcServer{}

// GetUser returns one user (never credentials).
func (r rpcServer) GetUser(ctx context.Context, req *connect.Request[authv1.GetUserRequest]) (*connect.Response[authv1.GetUserResponse], error) {
	id := req.Msg.GetId()
	if id == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("id is required"))
	}
	if !validID(id) {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("user not found"))
	}
	u, err := r.s.store.UserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&authv1.GetUserResponse{User: userProto(u)}), nil
}

// GetUsers returns the users that exist among the ids.
func (r rpcServer) GetUsers(ctx context.Context, req *connect.Request[authv1.GetUsersRequest]) (*connect.Response[authv1.GetUsersResponse], error) {
	ids := req.Msg.GetIds()
	if len(ids) == 0 {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("ids is required"))
	}
	if len(ids) > MaxBatchIDs {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("too many ids"))
	}
	seen := make(map[string]bool, len(ids))
	valid := make([]string, 0, len(ids))
	for _, id := range ids {
		if validID(id) && !seen[id] {
			seen[id] = true
			valid = append(valid, id)
		}
	}
	us, err := r.s.store.UsersByIDs(ctx, valid)
	if err != nil {
		return nil, err
	}
	out := &authv1.GetUsersResponse{Users: make([]*authv1.User, len(us))}
	for i, u := range us {
		out.Users[i] = userProto(u)
	}
	return connect.NewResponse(out), nil
}

func userProto(u User) *authv1.User {
	p := &authv1.User{
		Id:            u.ID,
		Email:         u.Email,
		Name:          u.Name,
		Roles:         u.Roles,
		Disabled:      u.Disabled,
		EmailVerified: u.EmailVerified,
		CreatedAt:     timestamppb.New(u.CreatedAt),
	}
	if u.Seller != nil {
		p.StoreName = u.Seller.StoreName
	}
	return p
}
