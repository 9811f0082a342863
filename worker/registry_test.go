package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
	"github.com/jobwire/jobwire/worker"
	"github.com/jobwire/jobwire/worker/workertest"
)

func registry(t *testing.T, env *workertest.Env) jetstream.KeyValue {
	t.Helper()
	kv, err := env.JS.KeyValue(context.Background(), streams.BucketJobTypes)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func TestStartRegistersTypesAndStopRemovesTheWorker(t *testing.T) {
	env := workertest.New(t)
	typ := sumType
	typ.Options = worker.TypeOptions{MaxInFlight: 7, Concurrency: 3}
	w := env.Start(t, worker.Config{Name: "box-1"}, typ)
	kv := registry(t, env)
	ctx := context.Background()

	entry, err := kv.Get(ctx, streams.TypeKey("test.sum"))
	if err != nil {
		t.Fatal(err)
	}
	var reg streams.TypeEntry
	if err := streams.DecodeRegistryEntry(entry.Value(), &reg); err != nil {
		t.Fatal(err)
	}
	if reg.Description != "adds numbers" || reg.RegisteredBy != "box-1" || reg.Options.MaxInFlight != 7 || reg.Options.MaxAttempts != worker.DefaultMaxAttempts {
		t.Fatalf("registration %+v", reg)
	}
	var schema map[string]any
	if err := json.Unmarshal(reg.Schema, &schema); err != nil || schema["required"].([]any)[0] != "numbers" || schema["additionalProperties"] != false {
		t.Fatalf("derived schema %s", reg.Schema)
	}
	if e, err := kv.Get(ctx, streams.SchemaKey("test.sum", reg.SchemaHash)); err != nil || string(e.Value()) != string(reg.Schema) {
		t.Fatalf("schema version: %v", err)
	}
	var we streams.WorkerEntry
	e, err := kv.Get(ctx, streams.WorkerKey("test.sum", w.ID()))
	if err != nil || streams.DecodeRegistryEntry(e.Value(), &we) != nil || we.Concurrency != 3 || we.SchemaHash != reg.SchemaHash || we.Name != "box-1" {
		t.Fatalf("worker entry %+v: %v", we, err)
	}
	cons, err := env.JS.Consumer(ctx, streams.StreamJobs, streams.WorkerConsumer("test.sum"))
	if err != nil || cons.CachedInfo().Config.MaxAckPending != 7 {
		t.Fatalf("consumer: %v", err)
	}

	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, streams.WorkerKey("test.sum", w.ID())); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("worker entry after Stop: %v", err)
	}
	if _, err := kv.Get(ctx, streams.TypeKey("test.sum")); err != nil {
		t.Fatalf("the type is still known after its last worker stopped: %v", err)
	}
}

func TestAVanishedWorkersEntryExpires(t *testing.T) {
	env := workertest.New(t)
	nc, _ := env.Server.Connect(t)
	w, err := worker.New(nc, worker.Config{Logger: workertest.Logger(), PresenceTTL: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Register(sumType); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	kv := registry(t, env)
	watch, err := kv.Watch(context.Background(), streams.WorkerKey("test.sum", w.ID()), jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Stop()
	nc.Close() // the process is gone: nothing renews the entry, nothing removes it
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-watch.Updates():
			if e != nil && e.Operation() != jetstream.KeyValuePut {
				return // the watcher saw the worker go
			}
		case <-deadline:
			t.Fatal("the worker entry did not expire within 10 s of a 3 s TTL")
		}
	}
}

func TestHostileRegistrationsAreRefused(t *testing.T) {
	env := workertest.New(t)
	huge := fmt.Sprintf(`{"type":"object","description":%q}`, strings.Repeat("x", streams.MaxSchemaBytes))
	cases := []struct {
		name string
		typ  worker.JobType
		want string
	}{
		{"name with a wildcard", worker.Type[json.RawMessage, json.RawMessage]{Name: "jobs.*", Handle: ok}, "invalid job type"},
		{"name with a space", worker.Type[json.RawMessage, json.RawMessage]{Name: "send email", Handle: ok}, "invalid job type"},
		{"upper case", worker.Type[json.RawMessage, json.RawMessage]{Name: "Email", Handle: ok}, "invalid job type"},
		{"subject injection", worker.Type[json.RawMessage, json.RawMessage]{Name: "a.>", Handle: ok}, "invalid job type"},
		{"empty", worker.Type[json.RawMessage, json.RawMessage]{Handle: ok}, "invalid job type"},
		{"no handler", worker.Type[json.RawMessage, json.RawMessage]{Name: "a.b"}, "no Handle"},
		{"schema not JSON", worker.Type[json.RawMessage, json.RawMessage]{Name: "a.b", Handle: ok, Schema: json.RawMessage(`{"type":`)}, "invalid input schema"},
		{"schema does not compile", worker.Type[json.RawMessage, json.RawMessage]{Name: "a.b", Handle: ok, Schema: json.RawMessage(`{"type":"no-such-type"}`)}, "invalid input schema"},
		{"bad pattern", worker.Type[json.RawMessage, json.RawMessage]{Name: "a.b", Handle: ok, Schema: json.RawMessage(`{"pattern":"(?<=x)"}`)}, "invalid input schema"},
		{"remote reference", worker.Type[json.RawMessage, json.RawMessage]{Name: "a.b", Handle: ok, Schema: json.RawMessage(`{"$ref":"https://example.com/s.json"}`)}, "may only refer to itself"},
		{"file reference", worker.Type[json.RawMessage, json.RawMessage]{Name: "a.b", Handle: ok, Schema: json.RawMessage(`{"$ref":"file:///etc/passwd"}`)}, "may only refer to itself"},
		{"huge schema", worker.Type[json.RawMessage, json.RawMessage]{Name: "a.b", Handle: ok, Schema: json.RawMessage(huge)}, "the limit is 65536"},
		{"huge description", worker.Type[json.RawMessage, json.RawMessage]{Name: "a.b", Handle: ok, Description: strings.Repeat("d", 1001)}, "description"},
		{"zero-second timeout", worker.Type[json.RawMessage, json.RawMessage]{Name: "a.b", Handle: ok, Options: worker.TypeOptions{Timeout: time.Millisecond}}, "timeout must be at least 1s"},
		{"negative concurrency", worker.Type[json.RawMessage, json.RawMessage]{Name: "a.b", Handle: ok, Options: worker.TypeOptions{Concurrency: -1}}, "concurrency"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, err := worker.New(env.NC, worker.Config{Logger: workertest.Logger()})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Register(c.typ); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Register: %v, want an error with %q", err, c.want)
			}
			if err := w.Start(context.Background()); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Start: %v, want an error with %q", err, c.want)
			}
		})
	}
	w, _ := worker.New(env.NC, worker.Config{Logger: workertest.Logger()})
	if err := w.Register(sumType); err != nil {
		t.Fatal(err)
	}
	if err := w.Register(sumType); err == nil {
		t.Fatal("a type registered twice")
	}
	if err := w.Start(context.Background()); err == nil {
		t.Fatal("Start after a failed registration")
	}
	empty, _ := worker.New(env.NC, worker.Config{})
	if err := empty.Start(context.Background()); err == nil {
		t.Fatal("Start with no type")
	}
	// Nothing of the refused types reached the registry.
	keys, err := registry(t, env).ListKeys(context.Background())
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		t.Fatal(err)
	}
	if keys != nil {
		for k := range keys.Keys() {
			t.Errorf("registry holds %s", k)
		}
	}
}

func TestStartWaitsForTheTopology(t *testing.T) {
	srv := streamstest.RunServer(t)
	nc, js := srv.Connect(t)
	w, _ := worker.New(nc, worker.Config{Logger: workertest.Logger()})
	if err := w.Register(sumType); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := w.Start(ctx); err == nil || !strings.Contains(err.Error(), streams.StreamEvents) {
		t.Fatalf("Start without a topology: %v", err)
	}
	go func() {
		time.Sleep(500 * time.Millisecond)
		_ = streams.Ensure(context.Background(), js, streams.Config{})
	}()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	if err := w.Start(ctx2); err != nil {
		t.Fatalf("Start once the topology exists: %v", err)
	}
	_ = w.Stop(context.Background())
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("JOBWIRE_WORKER_CONCURRENCY", "9")
	t.Setenv("JOBWIRE_WORKER_MAX_IN_FLIGHT", "40")
	t.Setenv("JOBWIRE_WORKER_JOB_TIMEOUT", "90s")
	t.Setenv("JOBWIRE_WORKER_NAME", "importer-7")
	cfg, err := worker.ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Defaults
	if cfg.Name != "importer-7" || d.Concurrency != 9 || d.MaxInFlight != 40 || d.Timeout != 90*time.Second ||
		d.MaxAttempts != worker.DefaultMaxAttempts || d.AckWait != worker.DefaultAckWait || cfg.ShutdownGrace != worker.DefaultShutdownGrace {
		t.Fatalf("%+v", cfg)
	}
	t.Setenv("JOBWIRE_WORKER_ACK_WAIT", "soon")
	t.Setenv("JOBWIRE_WORKER_MAX_ATTEMPTS", "many")
	_, err = worker.ConfigFromEnv()
	if err == nil || !strings.Contains(err.Error(), "JOBWIRE_WORKER_ACK_WAIT") || !strings.Contains(err.Error(), "JOBWIRE_WORKER_MAX_ATTEMPTS") {
		t.Fatalf("want both bad variables named: %v", err)
	}
	t.Setenv("JOBWIRE_WORKER_ACK_WAIT", "10ms")
	t.Setenv("JOBWIRE_WORKER_MAX_ATTEMPTS", "3")
	if _, err = worker.ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "ack wait") {
		t.Fatalf("an ack wait below 1s: %v", err)
	}
}
