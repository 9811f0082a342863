package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/services/internal/registry"
	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/streams/streamstest"
	"github.com/jobwire/jobwire/worker/workertest"
)

const maxN = `{"type":"object","properties":{"n":{"type":"integer","maximum":%s},"label":{"type":"string"}},"required":["n"]}`

func TestCheckFollowsTheServedVersions(t *testing.T) {
	srv := streamstest.RunServer(t)
	_, js := srv.Ensure(t)
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, streams.BucketJobTypes)
	if err != nil {
		t.Fatal(err)
	}
	write := func(key string, v any) {
		data, ok := v.([]byte)
		if !ok {
			data, _ = json.Marshal(v)
		}
		if _, err := kv.Put(ctx, key, data); err != nil {
			t.Fatal(err)
		}
	}
	small, big := []byte(strings.Replace(maxN, "%s", "5", 1)), []byte(strings.Replace(maxN, "%s", "50", 1))
	write(streams.TypeKey("a.b"), streams.TypeEntry{V: 1, Name: "a.b", Schema: big, SchemaHash: streams.SchemaHash(big), NameField: "label"})
	write(streams.SchemaKey("a.b", streams.SchemaHash(small)), small)
	worker := streams.NewWorkerID(time.Now())
	write(streams.WorkerKey("a.b", worker), streams.WorkerEntry{V: 1, ID: worker, Type: "a.b", SchemaHash: streams.SchemaHash(small)})

	r := registry.New(kv, workertest.Logger())
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	check := func(input string) error {
		_, err := r.Check("a.b", json.RawMessage(input))
		return err
	}
	if _, err := r.Check("c.d", nil); !errors.Is(err, registry.ErrUnknownType) {
		t.Fatalf("unknown type: %v", err)
	}
	// The online worker serves the small version: it decides, not the latest registration.
	if err := check(`{"n":9}`); err == nil {
		t.Fatal("n=9 passed while the only online worker allows 5")
	}
	checked, err := r.Check("a.b", json.RawMessage(`{"n":1,"label":"`+strings.Repeat("é", 150)+`"}`))
	name := checked.Name
	if err != nil || len(name) > registry.MaxName || !strings.HasPrefix(name, "éé") {
		t.Fatalf("name %q (%d bytes): %v", name, len(name), err)
	}
	// The worker's schema document goes: the registration's own version decides, the check stays.
	if err := kv.Delete(ctx, streams.SchemaKey("a.b", streams.SchemaHash(small))); err != nil {
		t.Fatal(err)
	}
	streamstest.WaitFor(t, 5*time.Second, func() error { return check(`{"n":9}`) })
	if err := check(`{"n":99}`); err == nil {
		t.Fatal("n=99 passed the registration's schema")
	}
	// Deleting the registration's own version cannot leave the type unchecked.
	if err := kv.Delete(ctx, streams.SchemaKey("a.b", streams.SchemaHash(big))); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, streams.WorkerKey("a.b", worker)); err != nil {
		t.Fatal(err)
	}
	streamstest.WaitFor(t, 5*time.Second, func() error {
		if list := r.List(); len(list) != 1 || list[0].Online {
			return errors.New("the worker is still listed")
		}
		return nil
	})
	if err := check(`{"n":99}`); err == nil {
		t.Fatal("n=99 passed after the schema keys were deleted")
	}
}
