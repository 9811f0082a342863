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
}

// Report is the outcome of a rebuild.
type Report struct {
	Bucket   string        `json:"bucket"`
	Events   int           `json:"events"`
	Jobs     int           `json:"jobs"`
	Skipped  int           `json:"skipped"` // jobs that changed while the rebuild ran, or expired as designed
	Diffs    []Difference  `json:"differences"`
	Duration time.Duration `json:"durationNs"`
}

// Rebuild replays JOB_EVENTS up to its current last sequence into a fresh bucket named bucket (dropped
// first if it exists) and compares the result with the live JOB_STATE. Jobs that received events after
// the replay began, and finished jobs that expired from JOB_STATE after retention, are not differences.
// The fresh bucket is kept unless keep is false.
func Rebuild(ctx context.Context, js jetstream.JetStream, bucket string, retention time.Duration, keep bool) (Report, error) {
	start := time.Now()
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
			rep.Diffs = append(rep.Diffs, Difference{Key: key, Kind: "missing_live", Rebuilt: wantJSON})
			continue
		}
		if err != nil {
			return rep, fmt.Errorf("rebuild: read live %s: %w", key, err)
		}
		got, err := streams.DecodeState(entry.Value(), 0)
		if err != nil {
			rep.Diffs = append(rep.Diffs, Difference{Key: key, Kind: "different", Live: entry.Value(), Rebuilt: wantJSON})
			continue
		}
		if got.EventSeq > lastSeq {
			rep.Skipped++ // changed after the replay began
			continue
		}
		got.Revision = 0
		gotJSON, _ := json.Marshal(got)
		if !bytes.Equal(gotJSON, wantJSON) {
			rep.Diffs = append(rep.Diffs, Difference{Key: key, Kind: "different", Live: gotJSON, Rebuilt: wantJSON})
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
		rep.Diffs = append(rep.Diffs, Difference{Key: key, Kind: "missing_rebuilt", Live: entry.Value()})
	}
	sort.Slice(rep.Diffs, func(i, j int) bool { return rep.Diffs[i].Key < rep.Diffs[j].Key })
	rep.Duration = time.Since(start)
	return rep, nil
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
