package streams_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
)

func TestEnsureIsIdempotent(t *testing.T) {
	srv := streamstest.RunServer(t)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if err := streams.Check(ctx, js); err == nil {
		t.Fatal("Check passed on an empty server")
	}
	if err := streams.Ensure(ctx, js, streams.Config{}); err != nil {
		t.Fatalf("first Ensure: %v", err)
	}
	if err := streams.Check(ctx, js); err != nil {
		t.Fatalf("Check after Ensure: %v", err)
	}
	// Data written between the two starts must survive the second one untouched.
	if _, err := js.Publish(ctx, streams.EventSubject("alice", streams.NewJobID(time.Now())), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	before := snapshot(ctx, t, js)
	if err := streams.Ensure(ctx, js, streams.Config{}); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	after := snapshot(ctx, t, js)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("second Ensure changed the topology:\nbefore %+v\nafter  %+v", before, after)
	}
	if n := after[streams.StreamEvents].State.Msgs; n != 1 {
		t.Fatalf("JOB_EVENTS has %d messages after the second Ensure, want 1", n)
	}
	if cfg := after[streams.StreamJobs].Config; cfg.Retention != jetstream.WorkQueuePolicy || cfg.Storage != jetstream.FileStorage {
		t.Fatalf("JOBS config: %+v", cfg)
	}
	if cfg := after["KV_"+streams.BucketState].Config; !cfg.AllowMsgTTL || cfg.SubjectDeleteMarkerTTL == 0 || cfg.MaxMsgsPerSubject != 1 {
		t.Fatalf("JOB_STATE must keep one value per key and mark expiry: %+v", cfg)
	}
}

func TestEnsureRejectsBadConfig(t *testing.T) {
	srv := streamstest.RunServer(t)
	_, js := srv.Connect(t)
	if err := streams.Ensure(context.Background(), js, streams.Config{Replicas: 7}); err == nil {
		t.Fatal("Ensure accepted 7 replicas")
	}
}

func snapshot(ctx context.Context, t *testing.T, js jetstream.JetStream) map[string]jetstream.StreamInfo {
	t.Helper()
	out := map[string]jetstream.StreamInfo{}
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info := *s.CachedInfo()
		info.TimeStamp = time.Time{}
		out[name] = info
	}
	return out
}

func TestRetentionWindowsMustAgree(t *testing.T) {
	for _, c := range []streams.Config{
		{EventsMaxAge: time.Hour, StateRetention: time.Hour},
		{EventsMaxAge: 24 * time.Hour, StateRetention: 24*time.Hour - time.Minute},
		{DeadLetterMaxAge: 30 * 24 * time.Hour},
	} {
		c.SetDefaults()
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: accepted", c)
		}
	}
	ok := streams.Config{}
	ok.SetDefaults()
	if err := ok.Validate(); err != nil || ok.DeadLetterMaxAge != ok.EventsMaxAge || ok.MaxRunAhead() != 6*24*time.Hour {
		t.Fatalf("defaults: %v %+v", err, ok)
	}
}
