package streams

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// MaxSchemaBytes bounds a job type's input schema, so a registration stays a small KV value.
const MaxSchemaBytes = 64 << 10

// ErrInvalidSchema is returned by CompileSchema for a document that is not a usable JSON Schema.
var ErrInvalidSchema = errors.New("invalid input schema")

// Schema is a compiled JSON Schema of a job type's input. It is safe for concurrent use.
type Schema struct {
	schema *jsonschema.Schema
	// Hash is the schema document's SchemaHash.
	Hash string
}

// schemaURL is where a schema document lives for the compiler: in memory, never fetched.
const schemaURL = "mem:///input.schema.json"

// CompileSchema compiles a JSON Schema document (draft 2020-12 unless its $schema names another).
// References may only point into the document itself: nothing is loaded from files or the network.
// Patterns use Go's regexp syntax (linear time). A document over MaxSchemaBytes is refused.
func CompileSchema(doc []byte) (*Schema, error) {
	if len(doc) > MaxSchemaBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrInvalidSchema, len(doc), MaxSchemaBytes)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrInvalidSchema, err)
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(refuseLoader{})
	if err := c.AddResource(schemaURL, v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	s, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	return &Schema{schema: s, Hash: SchemaHash(doc)}, nil
}

type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("%s: a job type's schema may only refer to itself", url)
}

// InputError says where and why a job's input does not match its type's schema.
type InputError struct {
	// Pointer is the JSON pointer of the offending value in the input ("" for the input itself).
	Pointer string
	Reason  string
}

func (e *InputError) Error() string {
	if e.Pointer == "" {
		return "input: " + e.Reason
	}
	return "input at " + e.Pointer + ": " + e.Reason
}

var schemaPrinter = message.NewPrinter(language.English)

// Validate checks input (a JSON document; empty means null) against the schema. A mismatch is an
// *InputError naming the first offending value.
func (s *Schema) Validate(input json.RawMessage) error {
	if len(bytes.TrimSpace(input)) == 0 {
		input = json.RawMessage("null")
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(input))
	if err != nil {
		return &InputError{Reason: "not JSON: " + err.Error()}
	}
	err = s.schema.Validate(v)
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	for len(ve.Causes) > 0 {
		ve = ve.Causes[0]
	}
	return &InputError{Pointer: shorten(jsonPointer(ve.InstanceLocation)), Reason: shorten(ve.ErrorKind.LocalizedString(schemaPrinter))}
}

// maxReason bounds the pointer and reason of an InputError: a reason may quote the offending value.
const maxReason = 300

func shorten(s string) string {
	if len(s) <= maxReason {
		return s
	}
	s = strings.ToValidUTF8(s[:maxReason], "")
	return s + "…"
}

// jsonPointer writes tokens as an RFC 6901 pointer.
func jsonPointer(tokens []string) string {
	var b strings.Builder
	esc := strings.NewReplacer("~", "~0", "/", "~1")
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(esc.Replace(t))
	}
	return b.String()
}
