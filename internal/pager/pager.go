// Package pager turns a function that reads one bounded page into a lazy iterator over all
// pages: the loop every backend's paged read would otherwise repeat.
package pager

import "iter"

// Seq yields the items of consecutive pages, starting at from. fetch reads the page that starts
// at from, at most size items, appending them to buf (passed empty, to be reused); next returns
// where the page after an item starts. Seq stops after a page shorter than size, after the
// first error (which it yields), or when the caller stops ranging.
func Seq[T any](size int, from uint64, fetch func(buf []T, from uint64) ([]T, error), next func(T) uint64) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		buf := make([]T, 0, size)
		for {
			var err error
			if buf, err = fetch(buf[:0], from); err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, v := range buf {
				if !yield(v, nil) {
					return
				}
			}
			if len(buf) < size {
				return
			}
			from = next(buf[len(buf)-1])
		}
	}
}
