package jobstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// ErrNoDeadLetter: the key names no dead letter (never, or no longer: retried or purged).
var ErrNoDeadLetter = errors.New("no such dead letter")

// ErrMalformedRetry: a malformed message was never a job, so it cannot be retried (only purged).
var ErrMalformedRetry = errors.New("a malformed message was never a job: it can only be purged")

// maxDeadLetterScan bounds the dead letters one page reads, matching or not: a page that reaches it
// ends early, with a cursor to go on from.
const maxDeadLetterScan = 10000

// DeadLetters returns up to limit dead letters matching f, oldest first, after the JOBS_DLQ sequence
// after (0: from the start), and the cursor of the next page (0 on the last). It reads JOBS_DLQ one
// message at a time (a get of the next message on its subjects), so a page costs a round trip per
// dead letter read.
func (s *Store) DeadLetters(ctx context.Context, f api.DeadLetterFilter, after uint64, limit int) ([]api.DeadLetter, uint64, error) {
	out := []api.DeadLetter{}
	seq := after
	for scanned := 0; scanned < maxDeadLetterScan; scanned++ {
		msg, err := s.dlq.GetMsg(ctx, seq+1, jetstream.WithGetMsgSubject(streams.DeadLetters))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, 0, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read dead letters: %w", err)
		}
		seq = msg.Sequence
		if f.Until != nil && !msg.Time.Before(*f.Until) {
			return out, 0, nil // stored in time order: nothing later matches
		}
		dl, ok := decodeDeadLetter(msg)
		if !ok || !selects(f, dl) {
			continue
		}
		out = append(out, dl)
		if len(out) == limit {
			return out, seq, nil
		}
	}
	return out, seq, nil
}

// decodeDeadLetter reads a JOBS_DLQ message: its headers, and the job type from the job message.
func decodeDeadLetter(msg *jetstream.RawStreamMsg) (api.DeadLetter, bool) {
	key, ok := streams.DeadLetterKey(msg.Subject)
	if !ok {
		return api.DeadLetter{}, false
	}
	code, message, _ := strings.Cut(msg.Header.Get(streams.HeaderDeadError), ": ")
	dl := api.DeadLetter{Key: key, Seq: msg.Sequence, DeadAt: msg.Time.UTC(), Error: api.JobError{Code: code, Message: message}}
	owner, jobID, malformedSeq, ok := streams.ParseDeadLetterKey(key)
	switch {
	case !ok:
		return api.DeadLetter{}, false
	case malformedSeq > 0:
		dl.Malformed, dl.QueueSubject = true, msg.Header.Get(streams.HeaderDeadQueueSubject)
		return dl, true
	}
	dl.Owner, dl.JobID = owner, jobID
	dl.Attempts, _ = strconv.Atoi(msg.Header.Get(streams.HeaderDeadAttempts))
	dl.Type = jobTypeOf(msg.Data)
	return dl, true
}

// deadLetterType is the job type of the dead letter on subject with body data: "" for a malformed one.
func deadLetterType(subject string, data []byte) string {
	key, _ := streams.DeadLetterKey(subject)
	if _, _, malformedSeq, ok := streams.ParseDeadLetterKey(key); !ok || malformedSeq > 0 {
		return ""
	}
	return jobTypeOf(data)
}

// jobTypeOf is the job type a dead letter's body (the job message) names, "" when it names none.
func jobTypeOf(data []byte) string {
	var jm streams.JobMessage
	if json.Unmarshal(data, &jm) != nil {
		return ""
	}
	return jm.Type
}

// selects reports whether f selects dl (Until is DeadLetters' to check: it ends the scan).
func selects(f api.DeadLetterFilter, dl api.DeadLetter) bool {
	switch {
	case f.Type != "" && dl.Type != f.Type:
		return false
	case f.Code != "" && dl.Error.Code != f.Code:
		return false
	case f.Since != nil && dl.DeadAt.Before(*f.Since):
		return false
	}
	return true
}

// RetryDeadLetter re-queues the job of the dead letter key (Retry, for any owner: an operator's).
func (s *Store) RetryDeadLetter(ctx context.Context, key string) (api.JobState, error) {
	owner, jobID, malformedSeq, ok := streams.ParseDeadLetterKey(key)
	switch {
	case !ok:
		return api.JobState{}, ErrNoDeadLetter
	case malformedSeq > 0:
		if _, err := s.deadLetterSeq(ctx, key); err != nil {
			return api.JobState{}, err
		}
		return api.JobState{}, ErrMalformedRetry
	}
	st, err := s.Retry(ctx, owner, jobID)
	if errors.Is(err, ErrNotFound) {
		return st, ErrNoDeadLetter
	}
	return st, err
}

// PurgeDeadLetter removes the dead letter key: its job stays failed and can no longer be retried.
func (s *Store) PurgeDeadLetter(ctx context.Context, key string) error {
	if _, _, _, ok := streams.ParseDeadLetterKey(key); !ok {
		return ErrNoDeadLetter
	}
	seq, err := s.deadLetterSeq(ctx, key)
	if err != nil {
		return err
	}
	if err := s.dlq.DeleteMsg(ctx, seq); err != nil {
		if isNoMessage(err) {
			return ErrNoDeadLetter // purged or retried meanwhile
		}
		return fmt.Errorf("purge dead letter: %w", err)
	}
	return nil
}

// deadLetterSeq is the JOBS_DLQ sequence of the dead letter key.
func (s *Store) deadLetterSeq(ctx context.Context, key string) (uint64, error) {
	msg, err := s.dlq.GetLastMsgForSubject(ctx, streams.DeadLetterSubjectOf(key))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return 0, ErrNoDeadLetter
	case err != nil:
		return 0, fmt.Errorf("read dead letter: %w", err)
	}
	return msg.Sequence, nil
}

// SelectDeadLetters returns the keys of the first max dead letters f selects, oldest first.
func (s *Store) SelectDeadLetters(ctx context.Context, f api.DeadLetterFilter, max int) ([]string, error) {
	var keys []string
	var after uint64
	for {
		page, next, err := s.DeadLetters(ctx, f, after, max-len(keys))
		if err != nil {
			return nil, err
		}
		for _, dl := range page {
			keys = append(keys, dl.Key)
		}
		if next == 0 || len(keys) == max {
			return keys, nil
		}
		after = next
	}
}

// AuditAction records what an operator did (streams.PublishAudit), retried while NATS is briefly away.
func (s *Store) AuditAction(ctx context.Context, rec streams.AuditRecord) error {
	rec.At = s.now().UTC()
	return streams.Retry{For: 10 * time.Second}.Do(ctx, func(ctx context.Context) error { return streams.PublishAudit(ctx, s.js, rec) })
}

// DeadLetterExtent is what JOBS_DLQ holds: its first and last sequence, how many messages, and (when
// asked for) the sequences between the two that were removed (retried or purged).
type DeadLetterExtent struct {
	First, Last, Msgs uint64
	Deleted           []uint64
}

// DeadLetterExtent reads JOBS_DLQ's state: one request; deleted asks for the removed sequences too.
func (s *Store) DeadLetterExtent(ctx context.Context, deleted bool) (DeadLetterExtent, error) {
	info, err := s.dlq.Info(ctx, jetstream.WithDeletedDetails(deleted))
	if err != nil {
		return DeadLetterExtent{}, fmt.Errorf("read %s state: %w", streams.StreamDeadLetters, err)
	}
	st := info.State
	return DeadLetterExtent{First: st.FirstSeq, Last: st.LastSeq, Msgs: st.Msgs, Deleted: st.Deleted}, nil
}

// typesBatch is how many dead letters one request of DeadLetterTypes takes.
const typesBatch = 128

// DeadLetterTypes calls fn with the sequence and job type (empty for a malformed message) of every dead
// letter from sequence from up to upTo, read through a consumer of its own, made for the read (one
// request), fetched from in batches (one request each) and deleted after it: no other read path
// changes, and the consumer expires by itself should the delete not reach NATS.
func (s *Store) DeadLetterTypes(ctx context.Context, from, upTo uint64, fn func(seq uint64, jobType string)) error {
	cons, err := s.dlq.CreateConsumer(ctx, jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq: max(from, 1), AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: time.Minute, MemoryStorage: true, Replicas: 1})
	if err != nil {
		return fmt.Errorf("read dead letters: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.dlq.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	for {
		batch, err := cons.FetchNoWait(typesBatch)
		if err != nil {
			return fmt.Errorf("read dead letters: %w", err)
		}
		n, done := typesOf(batch, upTo, fn)
		if err := batch.Error(); err != nil {
			return fmt.Errorf("read dead letters: %w", err)
		}
		if done || n < typesBatch {
			return nil
		}
	}
}

// typesOf calls fn for each dead letter of batch up to sequence upTo; it returns how many messages the
// batch held and whether it reached upTo.
func typesOf(batch jetstream.MessageBatch, upTo uint64, fn func(seq uint64, jobType string)) (n int, done bool) {
	for m := range batch.Messages() {
		n++
		meta, err := m.Metadata()
		if err != nil {
			continue
		}
		if seq := meta.Sequence.Stream; seq <= upTo && !done {
			fn(seq, deadLetterType(m.Subject(), m.Data()))
		}
		done = done || meta.Sequence.Stream >= upTo
	}
	return n, done
}
