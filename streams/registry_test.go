package streams_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jobwire/jobwire/streams"
)

func TestWorkerConsumerNamesNeverCollide(t *testing.T) {
	seen := map[string]string{}
	for _, typ := range []string{"a_b.c", "a.b_c", "a_.b", "a.b", "a_b_c", "a__b.c", "a.b.c", "playlist.import"} {
		name := streams.WorkerConsumer(typ)
		if other, ok := seen[name]; ok {
			t.Errorf("%q and %q share consumer %q", typ, other, name)
		}
		if strings.ContainsAny(name, ".*> ") {
			t.Errorf("consumer name %q is not a valid name", name)
		}
		seen[name] = typ
	}
}

func TestRegistryKeys(t *testing.T) {
	id := streams.NewWorkerID(time.Now())
	hash := streams.SchemaHash([]byte(`{}`))
	for _, c := range []struct {
		key  string
		kind streams.RegistryKeyKind
		typ  string
		id   string
	}{
		{streams.TypeKey("playlist.import"), streams.RegistryType, "playlist.import", ""},
		{streams.WorkerKey("demo.count", id), streams.RegistryWorker, "demo.count", id},
		{streams.SchemaKey("a.b.c", hash), streams.RegistrySchema, "a.b.c", hash},
		{"type.Bad", streams.RegistryUnknown, "", ""},
		{"worker.demo.count.not-an-id", streams.RegistryUnknown, "", ""},
		{"schema.demo.count.XYZ", streams.RegistryUnknown, "", ""},
		{"worker." + id, streams.RegistryUnknown, "", ""},
		{"other", streams.RegistryUnknown, "", ""},
	} {
		kind, typ, id := streams.ParseRegistryKey(c.key)
		if kind != c.kind || typ != c.typ || id != c.id {
			t.Errorf("ParseRegistryKey(%q) = %v %q %q", c.key, kind, typ, id)
		}
	}
	owner, job, ok := streams.ParseCancelSubject(streams.CancelSubject("alice", id))
	if !ok || owner != "alice" || job != id {
		t.Fatalf("ParseCancelSubject: %q %q %v", owner, job, ok)
	}
	if _, _, ok := streams.ParseCancelSubject("jobs.cancel.alice.*"); ok {
		t.Fatal("a wildcard cancel subject parsed")
	}
}

func TestSchemaValidationNamesThePointer(t *testing.T) {
	s, err := streams.CompileSchema([]byte(`{"type":"object","properties":{"n":{"type":"integer","minimum":1},"a/b":{"type":"string"}},"required":["n"],"additionalProperties":false}`))
	if err != nil {
		t.Fatal(err)
	}
	for input, want := range map[string]string{
		`{"n":"x"}`:          "input at /n: got string, want integer",
		`{"n":0}`:            "input at /n: minimum: got 0, want 1",
		`{"n":1,"x":2}`:      "input: additional properties 'x' not allowed",
		`{"n":1,"a/b":2}`:    "input at /a~1b: got number, want string",
		``:                   "input: got null, want object",
		`{"n":1} trailing`:   "input: not JSON",
		`{"n":1,"a/b":"ok"}`: "",
	} {
		err := s.Validate(json.RawMessage(input))
		var ie *streams.InputError
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", input, err)
		case want != "" && (!errors.As(err, &ie) || !strings.HasPrefix(err.Error(), want)):
			t.Errorf("%s: %v, want %q", input, err, want)
		}
	}
	long := `{"n":1,"a/b":` + strings.Repeat(`[`, 1) + `"` + strings.Repeat("y", 5000) + `"]}`
	if err := s.Validate(json.RawMessage(long)); err == nil || len(err.Error()) > 700 {
		t.Fatalf("a long value's error is %d bytes", len(err.Error()))
	}
}

func TestRetryStopsOnFinalErrorsAndDeadlines(t *testing.T) {
	calls := 0
	err := streams.Retry{Wait: time.Millisecond, For: 50 * time.Millisecond}.Do(context.Background(), func(context.Context) error {
		calls++
		return errors.New("unavailable")
	})
	if err == nil || calls < 3 {
		t.Fatalf("%v after %d calls", err, calls)
	}
	calls = 0
	final := errors.New("final")
	err = streams.Retry{Wait: time.Millisecond, Final: func(err error) bool { return errors.Is(err, final) }}.Do(context.Background(), func(context.Context) error {
		calls++
		return final
	})
	if !errors.Is(err, final) || calls != 1 {
		t.Fatalf("%v after %d calls", err, calls)
	}
	calls = 0
	err = streams.Retry{}.Do(context.Background(), func(context.Context) error {
		if calls++; calls < 3 {
			return errors.New("once more")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("%v after %d calls", err, calls)
	}
}
