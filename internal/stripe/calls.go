package stripe

import (
	"context"
	"time"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/stripe-operator/stripe-operator/internal/identity"
)

// Helpers the calls of every object type share.

// callFor is call for a request that returns a value.
func callFor[T any](ctx context.Context, c *Client, op string, fn func(ctx context.Context) (T, error)) (T, error) {
	var out T
	err := c.call(ctx, op, func(ctx context.Context) error {
		var err error
		out, err = fn(ctx)
		return err
	})
	return out, err
}

// iterator is the part of stripe-go's list and search iterators a scan
// needs.
type iterator interface {
	Next() bool
	Err() error
}

// listParams sets up a list call's first page of 100 (stripe-go pages on
// from there).
func listParams(ctx context.Context, p *stripego.ListParams) {
	p.Context = ctx
	p.Limit = stripego.Int64(ListPageSize)
}

// createdSince filters a list by creation time (nil: no filter).
func createdSince(t time.Time) *stripego.RangeQueryParams {
	if t.IsZero() {
		return nil
	}
	return &stripego.RangeQueryParams{GreaterThanOrEqual: t.Unix()}
}

// firstMadeBy returns the first object of it whose metadata records owner's
// UID (the crash-safety lookup of a create that may have gone through), the
// zero T when none.
func firstMadeBy[S any, T any](it iterator, cur func() S, md func(S) map[string]string, owner Owner, conv func(S) T) (T, error) {
	for it.Next() {
		if x := cur(); identity.SameUID(owner, md(x)) {
			return conv(x), nil
		}
	}
	var zero T
	return zero, it.Err()
}

// all converts every object of it that keep accepts.
func all[S any, T any](it iterator, cur func() S, keep func(S) bool, conv func(S) T) ([]T, error) {
	var out []T
	for it.Next() {
		if x := cur(); keep(x) {
			out = append(out, conv(x))
		}
	}
	return out, it.Err()
}

func always[S any](S) bool { return true }
