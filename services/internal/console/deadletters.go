package console

import (
	"context"
	"maps"

	"github.com/jobwire/jobwire/services/internal/jobstore"
)

// DeadLetterReader reads JOBS_DLQ (jobstore.Store).
type DeadLetterReader interface {
	DeadLetterExtent(ctx context.Context, deleted bool) (jobstore.DeadLetterExtent, error)
	DeadLetterTypes(ctx context.Context, from, upTo uint64, fn func(seq uint64, jobType string)) error
}

// deadLetterIndex counts the dead letters per job type. A dead letter's type is in its body, not its
// subject, so the index keeps the type of every message of JOBS_DLQ by sequence, reading each new one
// once; a refresh asks only for the stream's state (one request), plus the new messages in batches, plus
// the removed sequences when some were removed (a retry or purge). The index outlives the consoles, so
// a console opened again reads only what changed meanwhile. Only the sampler uses it.
type deadLetterIndex struct {
	r      DeadLetterReader
	bySeq  map[uint64]string
	byType map[string]int
	next   uint64 // the first sequence not read yet
	total  int    // messages in JOBS_DLQ, malformed ones included
}

func newDeadLetterIndex(r DeadLetterReader) *deadLetterIndex {
	return &deadLetterIndex{r: r, bySeq: map[uint64]string{}, byType: map[string]int{}}
}

// refresh brings the index up to JOBS_DLQ's state.
func (d *deadLetterIndex) refresh(ctx context.Context) error {
	ext, err := d.r.DeadLetterExtent(ctx, false)
	if err != nil {
		return err
	}
	if ext.Last+1 < d.next { // the stream was made again: start over
		d.bySeq, d.byType, d.next = map[uint64]string{}, map[string]int{}, 0
	}
	if from := max(d.next, ext.First); from <= ext.Last {
		if err := d.r.DeadLetterTypes(ctx, from, ext.Last, d.add); err != nil {
			return err
		}
		d.next = ext.Last + 1
	}
	if uint64(len(d.bySeq)) != ext.Msgs {
		d.dropBefore(ext.First) // aged out
	}
	if uint64(len(d.bySeq)) != ext.Msgs {
		if ext, err = d.r.DeadLetterExtent(ctx, true); err != nil {
			return err
		}
		d.dropBefore(ext.First)
		for _, seq := range ext.Deleted {
			d.remove(seq)
		}
	}
	d.total = int(ext.Msgs)
	return nil
}

func (d *deadLetterIndex) add(seq uint64, jobType string) {
	if _, ok := d.bySeq[seq]; ok {
		return
	}
	d.bySeq[seq] = jobType
	if jobType != "" {
		d.byType[jobType]++
	}
}

func (d *deadLetterIndex) remove(seq uint64) {
	jobType, ok := d.bySeq[seq]
	if !ok {
		return
	}
	delete(d.bySeq, seq)
	if jobType != "" {
		if d.byType[jobType]--; d.byType[jobType] <= 0 {
			delete(d.byType, jobType)
		}
	}
}

func (d *deadLetterIndex) dropBefore(first uint64) {
	for seq := range d.bySeq {
		if seq < first {
			d.remove(seq)
		}
	}
}

// counts returns the dead letters per job type (a copy) and in all.
func (d *deadLetterIndex) counts() (map[string]int, int) {
	return maps.Clone(d.byType), d.total
}
