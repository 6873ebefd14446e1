package switchboard

// Iterators over pages: each fetches one page at a time (PageSize, default DefaultPageSize)
// from a start cursor (After, default the beginning) and yields its items, so a loop holds
// one page, never the whole list:
//
//	for id, err := range sb.ClientsInGroup("lobby") {
//		if err != nil { return err }
//		…
//	}

import "iter"

// DefaultPageSize is the page size of the iterators unless PageSize says otherwise.
const DefaultPageSize = 256

// PageOption adjusts an iterator: After, PageSize.
type PageOption func(*paging)

type paging struct {
	after string
	size  uint32
}

// After starts the walk strictly after cursor (an id, uid or group, as the list sorts).
func After(cursor string) PageOption { return func(p *paging) { p.after = cursor } }

// PageSize fetches n items per call (1..=1000; the host refuses others with
// ErrInvalidArgument, which the iterator yields).
func PageSize(n uint32) PageOption { return func(p *paging) { p.size = n } }

// pages walks fetch's pages: each item, then the error that ended the walk (if any) with a
// zero item. An empty page is the end.
func pages[T any](fetch func(after string, limit uint32) ([]T, error), key func(T) string, opts []PageOption) iter.Seq2[T, error] {
	p := paging{size: DefaultPageSize}
	for _, o := range opts {
		o(&p)
	}
	return func(yield func(T, error) bool) {
		after := p.after
		for {
			page, err := fetch(after, p.size)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			if len(page) == 0 {
				return
			}
			for _, item := range page {
				if !yield(item, nil) {
					return
				}
			}
			after = key(page[len(page)-1])
		}
	}
}

func itself(s string) string { return s }

// Clients walks every connected client, sorted by id.
func Clients(opts ...PageOption) iter.Seq2[string, error] {
	return pages(GetClientList, itself, opts)
}

// ClientsInGroup walks every member of group, sorted by id.
func ClientsInGroup(group string, opts ...PageOption) iter.Seq2[string, error] {
	return pages(func(a string, n uint32) ([]string, error) { return GetClientListByGroup(group, a, n) }, itself, opts)
}

// ClientsOfUID walks every client bound to uid, sorted by id.
func ClientsOfUID(uid string, opts ...PageOption) iter.Seq2[string, error] {
	return pages(func(a string, n uint32) ([]string, error) { return GetClientListByUID(uid, a, n) }, itself, opts)
}

// UIDs walks every bound uid, sorted, each once across the cluster.
func UIDs(opts ...PageOption) iter.Seq2[string, error] {
	return pages(GetUIDListPaged, itself, opts)
}

// UIDsInGroup walks every uid bound to a member of group, sorted.
func UIDsInGroup(group string, opts ...PageOption) iter.Seq2[string, error] {
	return pages(func(a string, n uint32) ([]string, error) { return GetUIDListByGroupPaged(group, a, n) }, itself, opts)
}

// Groups walks every group that has members, sorted.
func Groups(opts ...PageOption) iter.Seq2[string, error] {
	return pages(GetGroupListPaged, itself, opts)
}

func clientOf(c ClientSession) string { return c.Client }

// Sessions walks every connected client with its session, sorted by id.
func Sessions(opts ...PageOption) iter.Seq2[ClientSession, error] {
	return pages(GetClientSessions, clientOf, opts)
}

// SessionsInGroup walks every member of group with its session, sorted by id.
func SessionsInGroup(group string, opts ...PageOption) iter.Seq2[ClientSession, error] {
	return pages(func(a string, n uint32) ([]ClientSession, error) { return GetClientSessionsByGroup(group, a, n) }, clientOf, opts)
}

// Collect gathers what an iterator yields, stopping at its first error.
func Collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for item, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, item)
	}
	return out, nil
}
