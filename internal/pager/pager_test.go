package pager

import (
	"errors"
	"slices"
	"testing"
)

func TestSeq(t *testing.T) {
	items := make([]uint64, 23)
	for i := range items {
		items[i] = uint64(i)
	}
	calls := 0
	fetch := func(buf []uint64, from uint64) ([]uint64, error) {
		calls++
		for _, v := range items {
			if v >= from && len(buf) < 5 {
				buf = append(buf, v)
			}
		}
		return buf, nil
	}
	next := func(v uint64) uint64 { return v + 1 }
	var got []uint64
	for v, err := range Seq(5, 3, fetch, next) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	// 20 items: four full pages, then an empty one that ends the loop.
	if !slices.Equal(got, items[3:]) || calls != 5 {
		t.Fatalf("got %v in %d pages", got, calls)
	}
	// Stopping early, and an error on the second page.
	for range Seq(5, 0, fetch, next) {
		break
	}
	boom := errors.New("boom")
	n := 0
	var last error
	for _, err := range Seq(5, 0, func(buf []uint64, from uint64) ([]uint64, error) {
		if from > 0 {
			return nil, boom
		}
		return fetch(buf, from)
	}, next) {
		n++
		last = err
	}
	if n != 6 || !errors.Is(last, boom) {
		t.Fatalf("%d yields, last error %v", n, last)
	}
}
