package projector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/api"
	"github.com/jobwire/jobwire/streams"
)

// Difference is one job whose rebuilt state differs from the live one.
type Difference struct {
	Key string `json:"key"`
	// Kind is "missing_live" (rebuilt, but not in JOB_STATE), "missing_rebuilt" (in JOB_STATE, but no
	// events produce it) or "different".
	Kind    string          `json:"kind"`
	Live    json.RawMessage `json:"live,omitempty"`
	Rebuilt json.RawMessage `json:"rebuilt,omitempty"`
	// Repaired: with RebuildOptions.Apply, the live entry was replaced by the rebuilt state (or, for
	// missing_rebuilt, deleted). False when the live entry changed in the meantime: it is newer.
	Repaired bool `json:"repaired,omitempty"`

	liveRev uint64        // the live entry's revision (or its key's last marker) when compared
	state   *api.JobState // the rebuilt state, nil for missing_rebuilt
}

// Report is the outcome of a rebuild.
type Report struct {
	Bucket   string        `json:"bucket"`
	Events   int           `json:"events"`
	Jobs     int           `json:"jobs"`
	Skipped  int           `json:"skipped"` // jobs that changed while the rebuild ran, or expired as designed
	Diffs    []Difference  `json:"differences"`
	Repaired int           `json:"repaired"` // differences written back to JOB_STATE (RebuildOptions.Apply)
	Duration time.Duration `json:"durationNs"`
}

// RebuildOptions say where a rebuild replays to and whether it repairs JOB_STATE.
type RebuildOptions struct {
	// Bucket is the fresh bucket the log is replayed into (dropped first if it exists). Never JOB_STATE.
	Bucket string
	// Retention is the TTL of finished jobs' states (default streams.DefaultStateRetention). A repaired
	// finished job's state keeps it from the repair on.
	Retention time.Duration
	// Keep keeps the fresh bucket for inspection.
	Keep bool
	// Apply writes every difference back to JOB_STATE: the rebuilt state over a different or missing
	// one, a delete for an entry no event produces. Each write is a compare-and-swap on the revision
	// compared, so an entry the projector changed meanwhile (it is newer than the replay) is left alone.
	Apply bool
}

// Rebuild replays JOB_EVENTS up to its current last sequence into a fresh bucket (opts.Bucket) and
// compares the result with the live JOB_STATE; with opts.Apply it repairs every difference. Jobs that
// received events after the replay began, and finished jobs that expired from JOB_STATE after
// retention, are not differences. It is safe while the projector runs.
func Rebuild(ctx context.Context, js jetstream.JetStream, opts RebuildOptions) (Report, error) {
	start := time.Now()
	bucket, retention, keep := opts.Bucket, opts.Retention, opts.Keep
	rep := Report{Bucket: bucket, Diffs: []Difference{}}
	if bucket == streams.BucketState {
		return rep, errors.New("rebuild: refusing to overwrite the live bucket")
	}
	if retention == 0 {
		retention = streams.DefaultStateRetention
	}
	rebuilt, events, lastSeq, err := replay(ctx, js)
	if err != nil {
		return rep, err
	}
	rep.Events, rep.Jobs = events, len(rebuilt)

	live, err := js.KeyValue(ctx, streams.BucketState)
	if err != nil {
		return rep, fmt.Errorf("rebuild: open live bucket: %w", err)
	}
	if err := js.DeleteKeyValue(ctx, bucket); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return rep, fmt.Errorf("rebuild: drop old %s: %w", bucket, err)
	}
	cfg := streams.Config{}.BucketConfigs()[0]
	liveStatus, err := live.Status(ctx)
	if err == nil {
		cfg.Replicas = liveStatus.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas
	}
	cfg.Bucket, cfg.Description = bucket, "jobwire JOB_STATE rebuilt from JOB_EVENTS"
	fresh, err := js.CreateKeyValue(ctx, cfg)
	if err != nil {
		return rep, fmt.Errorf("rebuild: create %s: %w", bucket, err)
	}
	if !keep {
		defer js.DeleteKeyValue(context.WithoutCancel(ctx), bucket)
	}
	w := NewWriter(js, fresh, retention)
	keys := make([]string, 0, len(rebuilt))
	for key := range rebuilt {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	if err := w.writeAll(ctx, keys, rebuilt); err != nil {
		return rep, fmt.Errorf("rebuild: %w", err)
	}

	liveKeys := map[string]bool{}
	lister, err := live.ListKeys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return rep, fmt.Errorf("rebuild: list live keys: %w", err)
	}
	if lister != nil {
		for k := range lister.Keys() {
			liveKeys[k] = true
		}
	}
	now := time.Now()
	for _, key := range keys {
		want := rebuilt[key]
		wantJSON, _ := json.Marshal(want)
		entry, err := live.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if want.State.Terminal() && want.FinishedAt != nil && now.Sub(*want.FinishedAt) >= retention-time.Minute {
				rep.Skipped++ // expired from JOB_STATE as designed
				continue
			}
			rep.Diffs = append(rep.Diffs, Difference{Key: key, Kind: "missing_live", Rebuilt: wantJSON, state: &want})
			continue
		}
		if err != nil {
			return rep, fmt.Errorf("rebuild: read live %s: %w", key, err)
		}
		got, err := streams.DecodeState(entry.Value(), 0)
		if err != nil {
			rep.Diffs = append(rep.Diffs, Difference{Key: key, Kind: "different", Live: entry.Value(), Rebuilt: wantJSON, liveRev: entry.Revision(), state: &want})
			continue
		}
		if got.EventSeq > lastSeq {
			rep.Skipped++ // changed after the replay began
			continue
		}
		got.Revision = 0
		gotJSON, _ := json.Marshal(got)
		if !bytes.Equal(gotJSON, wantJSON) {
			rep.Diffs = append(rep.Diffs, Difference{Key: key, Kind: "different", Live: gotJSON, Rebuilt: wantJSON, liveRev: entry.Revision(), state: &want})
		}
	}
	for key := range liveKeys {
		if _, ok := rebuilt[key]; ok {
			continue
		}
		entry, err := live.Get(ctx, key)
		if err != nil {
			continue
		}
		if got, err := streams.DecodeState(entry.Value(), 0); err == nil && got.EventSeq > lastSeq {
			rep.Skipped++
			continue
		}
		rep.Diffs = append(rep.Diffs, Difference{Key: key, Kind: "missing_rebuilt", Live: entry.Value(), liveRev: entry.Revision()})
	}
	sort.Slice(rep.Diffs, func(i, j int) bool { return rep.Diffs[i].Key < rep.Diffs[j].Key })
	if opts.Apply {
		if err := repair(ctx, NewWriter(js, live, retention), live, &rep); err != nil {
			return rep, err
		}
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// repair writes the rebuilt states of rep's differences to the live bucket, each a compare-and-swap on
// the revision it was compared at: a write that finds the entry changed leaves it (it is newer).
func repair(ctx context.Context, w *Writer, live jetstream.KeyValue, rep *Report) error {
	for i := range rep.Diffs {
		d := &rep.Diffs[i]
		var err error
		switch {
		case d.state == nil:
			err = live.Delete(ctx, d.Key, jetstream.LastRevision(d.liveRev))
		default:
			rev := d.liveRev
			if d.Kind == "missing_live" {
				if rev, err = w.lastSeq(ctx, d.Key); err != nil {
					return fmt.Errorf("rebuild: repair %s: %w", d.Key, err)
				}
			}
			_, err = w.write(ctx, fold{key: d.Key, st: *d.state, rev: rev})
		}
		switch {
		case err == nil:
			d.Repaired = true
			rep.Repaired++
		case !streams.IsWrongLastSequence(err) && !errors.Is(err, jetstream.ErrKeyExists):
			return fmt.Errorf("rebuild: repair %s: %w", d.Key, err)
		}
	}
	return nil
}

// replay folds every event of JOB_EVENTS up to its last sequence at the start, with an ordered
// consumer that the server removes by itself when the replay ends.
func replay(ctx context.Context, js jetstream.JetStream) (map[string]api.JobState, int, uint64, error) {
	stream, err := js.Stream(ctx, streams.StreamEvents)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("rebuild: open %s: %w", streams.StreamEvents, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("rebuild: stream info: %w", err)
	}
	lastSeq := info.State.LastSeq
	states := map[string]api.JobState{}
	if info.State.Msgs == 0 {
		return states, 0, lastSeq, nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, 0, 0, fmt.Errorf("rebuild: ordered consumer: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, 0, 0, fmt.Errorf("rebuild: read events: %w", err)
	}
	defer it.Stop()
	events := 0
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return nil, 0, 0, fmt.Errorf("rebuild: read events: %w", err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return nil, 0, 0, fmt.Errorf("rebuild: metadata: %w", err)
		}
		if ev, err := streams.DecodeEvent(msg.Data(), meta.Sequence.Stream); err == nil {
			key := streams.StateKey(ev.Owner, ev.JobID)
			st := states[key]
			streams.Apply(&st, ev)
			states[key] = st
			events++
		}
		if meta.Sequence.Stream >= lastSeq {
			return states, events, lastSeq, nil
		}
	}
}
