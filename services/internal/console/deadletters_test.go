package console

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/jobwire/jobwire/services/internal/jobstore"
)

// fakeDLQ is a JOBS_DLQ in memory: messages by sequence, and the requests made of it.
type fakeDLQ struct {
	msgs              map[uint64]string
	last              uint64
	extents, detailed int
	read              []uint64
}

func (f *fakeDLQ) append(types ...string) {
	for _, t := range types {
		f.last++
		f.msgs[f.last] = t
	}
}

func (f *fakeDLQ) DeadLetterExtent(_ context.Context, deleted bool) (jobstore.DeadLetterExtent, error) {
	f.extents++
	seqs := slices.Sorted(maps.Keys(f.msgs))
	ext := jobstore.DeadLetterExtent{First: f.last + 1, Last: f.last, Msgs: uint64(len(seqs))}
	if len(seqs) > 0 {
		ext.First = seqs[0]
	}
	if deleted {
		f.detailed++
		for seq := ext.First; seq <= ext.Last; seq++ {
			if _, ok := f.msgs[seq]; !ok {
				ext.Deleted = append(ext.Deleted, seq)
			}
		}
	}
	return ext, nil
}

func (f *fakeDLQ) DeadLetterTypes(_ context.Context, from, upTo uint64, fn func(uint64, string)) error {
	for seq := from; seq <= upTo; seq++ {
		if t, ok := f.msgs[seq]; ok {
			f.read = append(f.read, seq)
			fn(seq, t)
		}
	}
	return nil
}

// The index reads each dead letter once, asks for the removed sequences only when some were removed,
// forgets what aged out, and starts over when the stream was made again.
func TestDeadLetterIndex(t *testing.T) {
	f := &fakeDLQ{msgs: map[uint64]string{}}
	d := newDeadLetterIndex(f)
	refresh := func(want map[string]int, total int) {
		t.Helper()
		if err := d.refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got, n := d.counts(); !maps.Equal(got, want) || n != total {
			t.Fatalf("counts %v %d, want %v %d", got, n, want, total)
		}
	}
	refresh(map[string]int{}, 0)
	f.append("a", "a", "b", "") // the last one malformed
	refresh(map[string]int{"a": 2, "b": 1}, 4)
	refresh(map[string]int{"a": 2, "b": 1}, 4)
	if len(f.read) != 4 || f.detailed != 0 {
		t.Fatalf("read %v, %d detailed extents: want each message once, no details", f.read, f.detailed)
	}
	delete(f.msgs, 2) // a retry or purge in the middle
	f.append("b")
	refresh(map[string]int{"a": 1, "b": 2}, 4)
	if len(f.read) != 5 || f.detailed != 1 {
		t.Fatalf("read %v, %d detailed extents", f.read, f.detailed)
	}
	delete(f.msgs, 1) // aged out at the head: no details needed
	refresh(map[string]int{"b": 2}, 3)
	if f.detailed != 1 {
		t.Fatalf("%d detailed extents", f.detailed)
	}
	f.msgs, f.last = map[uint64]string{}, 0 // the stream was made again
	f.append("c")
	refresh(map[string]int{"c": 1}, 1)
}
