package streams_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jobwire/jobwire/streams"
)

// Any input a client sends is checked against a schema without a panic, and a refusal is always an
// InputError whose text is bounded.
func FuzzSchemaValidate(f *testing.F) {
	s, err := streams.CompileSchema([]byte(`{"type":"object","properties":{"n":{"type":"integer","minimum":1},
		"tags":{"type":"array","items":{"type":"string","pattern":"^[a-z]+$"}},"x":{"oneOf":[{"type":"string"},{"type":"number"}]}},
		"required":["n"],"additionalProperties":false}`))
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{`{"n":1}`, `{"n":0}`, `{"tags":["A"]}`, `null`, `[`, `{"n":1e400}`, `{"x":{}}`, `"\ud800"`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		err := s.Validate(json.RawMessage(input))
		var ie *streams.InputError
		if err != nil && (!errors.As(err, &ie) || len(err.Error()) > 1000) {
			t.Fatalf("Validate(%q) = %v", input, err)
		}
	})
}

// A registry key written by anyone parses into a kind with valid parts, or into nothing.
func FuzzParseRegistryKey(f *testing.F) {
	for _, seed := range []string{"type.a.b", "worker.a.01JAAAAAAAAAAAAAAAAAAAAAAA", "schema.a." + strings.Repeat("0", 32), "worker..x", "type."} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, key string) {
		kind, typ, id := streams.ParseRegistryKey(key)
		switch kind {
		case streams.RegistryUnknown:
			if typ != "" || id != "" {
				t.Fatalf("%q: unknown with parts %q %q", key, typ, id)
			}
		case streams.RegistryType:
			if !streams.ValidJobType(typ) || streams.TypeKey(typ) != key {
				t.Fatalf("%q: type %q", key, typ)
			}
		case streams.RegistryWorker:
			if streams.WorkerKey(typ, id) != key || !streams.ValidWorkerID(id) {
				t.Fatalf("%q: worker %q %q", key, typ, id)
			}
		case streams.RegistrySchema:
			if streams.SchemaKey(typ, id) != key || !streams.ValidSchemaHash(id) {
				t.Fatalf("%q: schema %q %q", key, typ, id)
			}
		}
	})
}
