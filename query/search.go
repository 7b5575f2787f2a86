package query

import (
	"context"
	"iter"

	"github.com/strata-events/strata"
)

// Queryable returns the store's strata.QueryStore, or an Invalid error naming what is missing.
func Queryable(store strata.Store) (strata.QueryStore, error) {
	qs, ok := store.(strata.QueryStore)
	if !ok {
		return nil, strata.Errorf(strata.Invalid, "query", "the store (%T) cannot be searched (no strata.QueryStore)", store)
	}
	return qs, nil
}

// Page returns one page of q.
func Page(ctx context.Context, store strata.Store, q strata.EventQuery) (strata.EventPage, error) {
	qs, err := Queryable(store)
	if err != nil {
		return strata.EventPage{}, err
	}
	return qs.QueryEvents(ctx, q)
}

// Count returns how many events match q.
func Count(ctx context.Context, store strata.Store, q strata.EventQuery) (int64, error) {
	qs, err := Queryable(store)
	if err != nil {
		return 0, err
	}
	return qs.CountEvents(ctx, q)
}

// Search yields every event that matches q from q.Cursor on, page after page of q.Limit, up to
// what is committed when the last page is read.
func Search(ctx context.Context, store strata.Store, q strata.EventQuery) iter.Seq2[strata.Event, error] {
	return func(yield func(strata.Event, error) bool) {
		qs, err := Queryable(store)
		if err != nil {
			yield(strata.Event{}, err)
			return
		}
		for {
			p, err := qs.QueryEvents(ctx, q)
			if err != nil {
				yield(strata.Event{}, err)
				return
			}
			for _, e := range p.Events {
				if !yield(e, nil) {
					return
				}
			}
			if p.Next == "" {
				return
			}
			q.Cursor = p.Next
		}
	}
}

// ByCorrelation yields the tenant's events of one correlation (one request, one workflow).
func ByCorrelation(ctx context.Context, store strata.Store, tenant, correlation string) iter.Seq2[strata.Event, error] {
	return byField(ctx, store, strata.EventQuery{Tenant: tenant, Correlation: correlation}, correlation, "correlation")
}

// BySession yields the tenant's events of one session (what one operator did in one sitting).
func BySession(ctx context.Context, store strata.Store, tenant, session string) iter.Seq2[strata.Event, error] {
	return byField(ctx, store, strata.EventQuery{Tenant: tenant, Session: session}, session, "session")
}

func byField(ctx context.Context, store strata.Store, q strata.EventQuery, v, name string) iter.Seq2[strata.Event, error] {
	if v == "" {
		return func(yield func(strata.Event, error) bool) {
			yield(strata.Event{}, strata.Errorf(strata.Invalid, "query", "an empty %s", name))
		}
	}
	q.Limit = strata.MaxQueryLimit
	return Search(ctx, store, q)
}
