package api_test

import (
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/jobwire/jobwire/api"
)

// route is one method and path of the gateway, in OpenAPI form ({id} for Fiber's :id).
type route struct{ method, path string }

// gatewayRoutes mirrors routes() in services/internal/gateway/gateway.go, plus the web page's routes
// (web.Register). The api module cannot import services, so this list is kept by hand: a route added
// there must be added here and documented in openapi.yaml. The /v1/session routes (HttpOnly cookie
// sign-in and sign-out) are documented ahead of their handlers, which the security work adds.
var gatewayRoutes = []route{
	{"get", "/healthz"},
	{"get", "/readyz"},
	{"post", "/v1/jobs"},
	{"get", "/v1/dead-letters"},
	{"post", "/v1/dead-letters/retry"},
	{"post", "/v1/dead-letters/purge"},
	{"get", "/v1/operator/events"},
	{"get", "/v1/schedules"},
	{"post", "/v1/schedules"},
	{"get", "/v1/schedules/{id}"},
	{"delete", "/v1/schedules/{id}"},
	{"post", "/v1/jobs/batch"},
	{"get", "/v1/jobs"},
	{"get", "/v1/jobs/{id}"},
	{"post", "/v1/jobs/{id}/cancel"},
	{"post", "/v1/jobs/{id}/retry"},
	{"get", "/v1/jobs/{id}/history"},
	{"get", "/v1/jobs/{id}/events"},
	{"get", "/v1/events"},
	{"get", "/v1/library"},
	{"get", "/v1/job-types"},
	{"post", "/v1/job-types/{type}/pause"},
	{"post", "/v1/job-types/{type}/resume"},
	{"put", "/v1/job-types/{type}/rate-limit"},
	{"delete", "/v1/job-types/{type}/rate-limit"},
	{"post", "/v1/stream-tokens"},
	{"get", "/v1/session"},
	{"post", "/v1/session"},
	{"delete", "/v1/session"},
	{"post", "/library/sync"},
	{"get", "/library/sync/{id}"},
	{"get", "/library/sync/{id}/progress"},
	{"get", "/"},               // web.Register
	{"get", "/static/{asset}"}, // web.Register: /static/*
}

// streamAuthRoutes are the routes registered with authenticate(true): the only ones that accept
// ?access_token=.
var streamAuthRoutes = []route{
	{"get", "/v1/jobs/{id}/events"},
	{"get", "/v1/events"},
	{"get", "/library/sync/{id}"},
	{"get", "/library/sync/{id}/progress"},
	{"get", "/v1/operator/events"},
}

// sseRoutes answer text/event-stream with the events of stream.go; the legacy route sends states as
// unnamed events (the browser's "message").
var sseRoutes = map[route][]string{
	{"get", "/v1/jobs/{id}/events"}:        api.StreamEvents,
	{"get", "/v1/events"}:                  api.StreamEvents,
	{"get", "/library/sync/{id}/progress"}: {"message", api.EventRemoved, api.EventReset, api.EventExpired},
	{"get", api.OperatorEventsPath}:        api.ConsoleEvents,
}

// wholeSnapshots are the SSE routes whose events carry no id: they do not resume.
var wholeSnapshots = []route{{"get", api.OperatorEventsPath}}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func loadDoc(t *testing.T) *omap {
	t.Helper()
	src, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	v, err := parseYAML(string(src))
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	doc, ok := v.(*omap)
	if !ok {
		t.Fatal("openapi.yaml: the document is not a mapping")
	}
	if got := doc.str("openapi"); !strings.HasPrefix(got, "3.1.") {
		t.Fatalf("openapi: %q, want 3.1.x", got)
	}
	return doc
}

// resolve follows a local $ref ("#/components/...") until v is no reference.
func resolve(t *testing.T, doc *omap, v any) any {
	t.Helper()
	for range 10 {
		m, ok := v.(*omap)
		if !ok {
			return v
		}
		ref, ok := m.get("$ref")
		if !ok {
			return v
		}
		s, _ := ref.(string)
		if !strings.HasPrefix(s, "#/") {
			t.Fatalf("$ref %q is not local", s)
		}
		var cur any = doc
		for _, part := range strings.Split(s[2:], "/") {
			cm, ok := cur.(*omap)
			if !ok {
				t.Fatalf("$ref %q does not resolve", s)
			}
			if cur, ok = cm.get(part); !ok {
				t.Fatalf("$ref %q does not resolve", s)
			}
		}
		v = cur
	}
	t.Fatal("$ref chain too long")
	return nil
}

// at walks keys from v, resolving $refs on the way.
func at(t *testing.T, doc *omap, v any, keys ...string) any {
	t.Helper()
	for i, k := range keys {
		m, ok := resolve(t, doc, v).(*omap)
		if !ok {
			t.Fatalf("%s: not a mapping", strings.Join(keys[:i], "."))
		}
		if v, ok = m.get(k); !ok {
			t.Fatalf("%s: missing", strings.Join(keys[:i+1], "."))
		}
	}
	return resolve(t, doc, v)
}

func schema(t *testing.T, doc *omap, name string) *omap {
	t.Helper()
	m, ok := at(t, doc, doc, "components", "schemas", name).(*omap)
	if !ok {
		t.Fatalf("schema %s is not a mapping", name)
	}
	return m
}

func stringList(t *testing.T, v any, what string) []string {
	t.Helper()
	seq, ok := v.([]any)
	if !ok {
		t.Fatalf("%s: not a list", what)
	}
	out := make([]string, len(seq))
	for i, x := range seq {
		if out[i], ok = x.(string); !ok {
			t.Fatalf("%s[%d]: %v is not a string", what, i, x)
		}
	}
	return out
}

// jsonFields returns the JSON names of v's struct fields in declaration order, and which of them are
// omitted when empty.
func jsonFields(v any) (names []string, omitEmpty map[string]bool) {
	omitEmpty = map[string]bool{}
	rt := reflect.TypeOf(v)
	for i := range rt.NumField() {
		f := rt.Field(i)
		tag := f.Tag.Get("json")
		if f.Anonymous && tag == "" {
			// An embedded struct's fields are the outer value's, as encoding/json writes them.
			inner, innerOmit := jsonFields(reflect.Zero(f.Type).Interface())
			names = append(names, inner...)
			maps.Copy(omitEmpty, innerOmit)
			continue
		}
		if !f.IsExported() || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
		omitEmpty[name] = slices.Contains(strings.Split(opts, ","), "omitempty") ||
			slices.Contains(strings.Split(opts, ","), "omitzero")
	}
	return names, omitEmpty
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func TestOpenAPIErrorCodes(t *testing.T) {
	doc := loadDoc(t)
	code := at(t, doc, schema(t, doc, "ErrorBody"), "properties", "error", "properties", "code")
	enum := stringList(t, at(t, doc, code, "enum"), "ErrorBody.error.code.enum")
	var codes []string
	for _, c := range api.Codes() {
		codes = append(codes, string(c))
	}
	for _, c := range codes {
		if !slices.Contains(enum, c) {
			t.Errorf("error code %q of api.Codes() is missing from the ErrorBody code enum", c)
		}
	}
	for _, c := range enum {
		if !slices.Contains(codes, c) {
			t.Errorf("ErrorBody code enum has %q, which api.Codes() does not", c)
		}
	}
	if len(enum) != len(slices.Compact(sorted(enum))) {
		t.Errorf("ErrorBody code enum has duplicates: %v", enum)
	}
}

func TestOpenAPISchemasMatchWireTypes(t *testing.T) {
	doc := loadDoc(t)
	cases := []struct {
		schema string
		value  any
		// response types: a field is required exactly when it is always sent (no omitempty)
		response bool
	}{
		{"JobState", api.JobState{}, true},
		{"Progress", api.Progress{}, true},
		{"JobError", api.JobError{}, true},
		{"SubmitRequest", api.SubmitRequest{}, false},
		{"SubmitBatchRequest", api.SubmitBatchRequest{}, false},
		{"BatchItem", api.BatchItem{}, false},
		{"SubmitBatchResponse", api.SubmitBatchResponse{}, true},
		{"BatchResult", api.BatchResult{}, true},
		{"DeadLetter", api.DeadLetter{}, true},
		{"DeadLetterList", api.DeadLetterList{}, true},
		{"DeadLetterFilter", api.DeadLetterFilter{}, false},
		{"DeadLetterSelection", api.DeadLetterSelection{}, false},
		{"DeadLetterResult", api.DeadLetterResult{}, true},
		{"DeadLetterResults", api.DeadLetterResults{}, true},
		{"ConsoleSnapshot", api.ConsoleSnapshot{}, true},
		{"ConsoleGateway", api.ConsoleGateway{}, true},
		{"ConsoleJobType", api.ConsoleJobType{}, true},
		{"Session", api.Session{}, true},
		{"ScheduleRequest", api.ScheduleRequest{}, false},
		{"Schedule", api.Schedule{}, true},
		{"ScheduleList", api.ScheduleList{}, true},
		{"PlaylistImport", api.PlaylistImport{}, false},
		{"ImportResult", api.ImportResult{}, true},
		{"InvalidLine", api.InvalidLine{}, true},
		{"JobList", api.JobList{}, true},
		{"History", api.History{}, true},
		{"Track", api.Track{}, true},
		{"TrackList", api.TrackList{}, true},
		{"JobTypeList", api.JobTypeList{}, true},
		{"JobType", api.JobType{}, true},
		{"JobTypeOptions", api.JobTypeOptions{}, true},
		{"JobTypeWorker", api.JobTypeWorker{}, true},
		{"LegacyProgress", api.LegacyProgress{}, true},
		{"Error", api.Error{}, true},
		{"ErrorBody", api.ErrorBody{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.schema, func(t *testing.T) {
			s := schema(t, doc, tc.schema)
			props, ok := at(t, doc, s, "properties").(*omap)
			if !ok {
				t.Fatal("properties is not a mapping")
			}
			fields, omit := jsonFields(tc.value)
			if got, want := sorted(props.keys), sorted(fields); !slices.Equal(got, want) {
				t.Errorf("properties %v, want the JSON fields of %T: %v", got, tc.value, want)
			}
			var required []string
			if r, ok := s.get("required"); ok {
				required = stringList(t, r, tc.schema+".required")
			}
			for _, r := range required {
				if !props.has(r) {
					t.Errorf("required %q is not a property", r)
				}
			}
			if !tc.response {
				return
			}
			for _, f := range fields {
				if want := !omit[f]; slices.Contains(required, f) != want {
					t.Errorf("field %q: required=%v, want %v (it is always sent unless omitempty)", f, !want, want)
				}
			}
		})
	}
}

// TestLegacyProgressOrder pins the field order the legacy frontend depends on, in the Go type (which
// encoding/json follows) and in the document.
func TestLegacyProgressOrder(t *testing.T) {
	want := []string{"error", "jobId", "progress", "result", "state"}
	if got, _ := jsonFields(api.LegacyProgress{}); !slices.Equal(got, want) {
		t.Errorf("api.LegacyProgress fields %v, want exactly %v in this order", got, want)
	}
	doc := loadDoc(t)
	props := at(t, doc, schema(t, doc, "LegacyProgress"), "properties").(*omap)
	if !slices.Equal(props.keys, want) {
		t.Errorf("LegacyProgress properties %v, want %v in this order", props.keys, want)
	}
}

func operations(t *testing.T, doc *omap) map[route]*omap {
	t.Helper()
	paths, ok := at(t, doc, doc, "paths").(*omap)
	if !ok {
		t.Fatal("paths is not a mapping")
	}
	ops := map[route]*omap{}
	for _, p := range paths.keys {
		item, ok := resolve(t, doc, paths.vals[p]).(*omap)
		if !ok {
			t.Fatalf("path %s is not a mapping", p)
		}
		for _, m := range item.keys {
			if !slices.Contains(httpMethods, m) {
				continue
			}
			op, ok := item.vals[m].(*omap)
			if !ok {
				t.Fatalf("%s %s is not a mapping", m, p)
			}
			ops[route{m, p}] = op
		}
	}
	return ops
}

func TestOpenAPIRoutes(t *testing.T) {
	doc := loadDoc(t)
	ops := operations(t, doc)
	for _, r := range gatewayRoutes {
		if ops[r] == nil {
			t.Errorf("%s %s is a gateway route but not in openapi.yaml", strings.ToUpper(r.method), r.path)
		}
	}
	ids := map[string]route{}
	for r, op := range ops {
		if !slices.Contains(gatewayRoutes, r) {
			t.Errorf("openapi.yaml documents %s %s, which is not a gateway route", strings.ToUpper(r.method), r.path)
		}
		id := op.str("operationId")
		if id == "" {
			t.Errorf("%s %s has no operationId", r.method, r.path)
		} else if other, dup := ids[id]; dup {
			t.Errorf("operationId %s is used by %v and %v", id, r, other)
		}
		ids[id] = r
	}
}

func TestOpenAPISecurity(t *testing.T) {
	doc := loadDoc(t)
	schemes := at(t, doc, doc, "components", "securitySchemes").(*omap)
	for name, want := range map[string][2]string{
		"bearerAuth":  {"http", ""},
		"cookieAuth":  {"apiKey", "cookie:jobwire_token"},
		"accessToken": {"apiKey", "query:access_token"},
	} {
		s, ok := resolve(t, doc, schemes.vals[name]).(*omap)
		if !ok {
			t.Errorf("security scheme %s missing", name)
			continue
		}
		got := [2]string{s.str("type"), ""}
		if s.str("in") != "" {
			got[1] = s.str("in") + ":" + s.str("name")
		}
		if got != want {
			t.Errorf("security scheme %s: %v, want %v", name, got, want)
		}
	}
	global, _ := doc.get("security")
	for r, op := range operations(t, doc) {
		sec, ok := op.get("security")
		if !ok {
			sec = global
		}
		list, _ := sec.([]any)
		query := false
		for _, req := range list {
			m, ok := req.(*omap)
			if !ok {
				t.Fatalf("%v: security requirement is not a mapping", r)
			}
			for _, k := range m.keys {
				if !schemes.has(k) {
					t.Errorf("%v: unknown security scheme %s", r, k)
				}
				query = query || k == "accessToken"
			}
		}
		if want := slices.Contains(streamAuthRoutes, r); query != want {
			t.Errorf("%s %s: access_token accepted=%v, want %v (only authenticate(true) routes take it)", r.method, r.path, query, want)
		}
	}
}

func TestOpenAPIStreams(t *testing.T) {
	doc := loadDoc(t)
	ops := operations(t, doc)
	for r, events := range sseRoutes {
		op := ops[r]
		if op == nil {
			t.Errorf("%v missing", r)
			continue
		}
		mt := at(t, doc, op, "responses", "200", "content", "text/event-stream")
		names := at(t, doc, mt, "x-sse-events").(*omap)
		if !slices.Equal(sorted(names.keys), sorted(events)) {
			t.Errorf("%v: x-sse-events %v, want %v", r, names.keys, events)
		}
		var params []string
		for _, p := range at(t, doc, op, "parameters").([]any) {
			pm := resolve(t, doc, p).(*omap)
			params = append(params, pm.str("in")+":"+pm.str("name"))
		}
		resumes := !slices.Contains(wholeSnapshots, r)
		for _, p := range []string{"header:" + api.HeaderLastEventID, "query:" + api.QueryLastEventID} {
			if slices.Contains(params, p) != resumes {
				t.Errorf("%v: parameter %s listed=%v, want %v (the stream resumes: %v)", r, p, !resumes, resumes, resumes)
			}
		}
		if !slices.Contains(params, "query:access_token") {
			t.Errorf("%v: parameter query:access_token missing", r)
		}
		responses := at(t, doc, op, "responses").(*omap)
		for code, header := range map[string]string{"429": "Retry-After", "503": "Retry-After"} {
			at(t, doc, responses, code, "headers", header)
		}
		if strings.Contains(r.path, "{id}") && !responses.has("204") {
			t.Errorf("%v: no 204 answer for a resume after the terminal state", r)
		}
	}
}

func TestOpenAPIPaging(t *testing.T) {
	doc := loadDoc(t)
	ops := operations(t, doc)
	for r, want := range map[route][]string{
		{"get", "/v1/jobs"}:    {"limit", "cursor", "state"},
		{"get", "/v1/library"}: {"limit", "cursor"},
	} {
		var got []string
		for _, p := range at(t, doc, ops[r], "parameters").([]any) {
			got = append(got, resolve(t, doc, p).(*omap).str("name"))
		}
		if !slices.Equal(sorted(got), sorted(want)) {
			t.Errorf("%v: parameters %v, want %v", r, got, want)
		}
	}
	for _, r := range []route{{"post", "/v1/jobs"}, {"post", "/library/sync"}} {
		p := resolve(t, doc, at(t, doc, ops[r], "parameters").([]any)[0]).(*omap)
		if p.str("name") != "Idempotency-Key" || p.str("in") != "header" {
			t.Errorf("%v: no Idempotency-Key header parameter", r)
		}
	}
}

// TestOpenAPIRefsResolve checks that every $ref in the document points at something.
func TestOpenAPIRefsResolve(t *testing.T) {
	doc := loadDoc(t)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case *omap:
			if _, ok := v.get("$ref"); ok {
				resolve(t, doc, v)
			}
			for _, k := range v.keys {
				walk(v.vals[k])
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
}

func TestParseYAMLSubset(t *testing.T) {
	src := "# comment\na: 1\nb: 'x: y'\nc: \"q\\n\"\nd:\n  - e\n  - f: g\n    h: [i, 'j', 2]\n  -\n    k: true\nl: |\n  one\n\n  two\nm: |-\n  three\nn: {}\no: []\np: ~\nq: 1.5\nr: plain text # trailing\n"
	v, err := parseYAML(src)
	if err != nil {
		t.Fatal(err)
	}
	got := dump(v)
	want := `{a:1 b:"x: y" c:"q\n" d:["e" {f:"g" h:["i" "j" 2]} {k:true}] l:"one\n\ntwo\n" m:"three" n:{} o:[] p:<nil> q:1.5 r:"plain text"}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	for _, bad := range []string{"a: &x 1\n", "a: *x\n", "a: !!str 1\n", "a: >\n  x\n", "a: |+\n  x\n", "a: b: c\n", "a: {b: 1}\n", "a:\n\t- b\n", "a: 1\na: 2\n", "a: 'open\n"} {
		if _, err := parseYAML(bad); err == nil {
			t.Errorf("parseYAML(%q) accepted YAML outside the subset", bad)
		}
	}
}

func dump(v any) string {
	switch v := v.(type) {
	case *omap:
		parts := make([]string, len(v.keys))
		for i, k := range v.keys {
			parts[i] = k + ":" + dump(v.vals[k])
		}
		return "{" + strings.Join(parts, " ") + "}"
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = dump(x)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case string:
		return strconv.Quote(v)
	}
	return fmt.Sprint(v)
}

// The document is read with a small YAML reader below rather than a YAML library, so that the api
// module (imported by every client) needs no dependency. It reads the subset openapi.yaml is written
// in: block mappings and sequences, plain, single- and double-quoted scalars, literal block scalars
// (| and |-), flow sequences of scalars and the empty {} and []. Anything else (anchors, aliases,
// tags, folded scalars, flow mappings, duplicate keys, tabs in indentation, YAML 1.1 booleans such as
// yes/no, unquoted dates) is an error rather than a silent misreading: quote the scalar or use the
// block form.

// omap is a YAML mapping that keeps its keys' order.
type omap struct {
	keys []string
	vals map[string]any
}

func (m *omap) get(k string) (any, bool) { v, ok := m.vals[k]; return v, ok }
func (m *omap) has(k string) bool        { _, ok := m.vals[k]; return ok }

// str returns the string value of k, or "".
func (m *omap) str(k string) string { s, _ := m.vals[k].(string); return s }

type yamlReader struct {
	lines []string
	i     int
}

func parseYAML(src string) (any, error) {
	src = strings.ReplaceAll(src, "\r\n", "\n")
	p := &yamlReader{lines: strings.Split(src, "\n")}
	idx, ind, ok, err := p.next()
	if err != nil || !ok {
		return nil, fmt.Errorf("empty document: %v", err)
	}
	if ind != 0 {
		return nil, fmt.Errorf("line %d: the document must start at column 0", idx+1)
	}
	v, err := p.block(0)
	if err != nil {
		return nil, err
	}
	if idx, _, ok, err := p.next(); err != nil || ok {
		return nil, fmt.Errorf("line %d: unexpected content (bad indentation?) %v", idx+1, err)
	}
	return v, nil
}

// next returns the index and indentation of the next line that is neither blank nor a comment,
// without consuming it.
func (p *yamlReader) next() (idx, indent int, ok bool, err error) {
	for idx = p.i; idx < len(p.lines); idx++ {
		line := p.lines[idx]
		trimmed := strings.TrimLeft(line, " ")
		if strings.TrimSpace(trimmed) == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if trimmed[0] == '\t' {
			return idx, 0, false, fmt.Errorf("line %d: tab in indentation", idx+1)
		}
		if line == "---" || line == "..." || strings.HasPrefix(line, "--- ") {
			return idx, 0, false, fmt.Errorf("line %d: document markers are not supported", idx+1)
		}
		return idx, len(line) - len(trimmed), true, nil
	}
	return idx, 0, false, nil
}

func isSeqItem(s string) bool { return s == "-" || strings.HasPrefix(s, "- ") }

// block reads the mapping or sequence whose lines are indented by n.
func (p *yamlReader) block(n int) (any, error) {
	idx, _, _, _ := p.next()
	if isSeqItem(p.lines[idx][n:]) {
		return p.seq(n)
	}
	return p.mapping(n)
}

func (p *yamlReader) mapping(n int) (*omap, error) {
	m := &omap{vals: map[string]any{}}
	for {
		idx, ind, ok, err := p.next()
		if err != nil {
			return nil, err
		}
		if !ok || ind < n {
			return m, nil
		}
		content := p.lines[idx][n:]
		if ind > n || isSeqItem(content) {
			return nil, fmt.Errorf("line %d: bad indentation", idx+1)
		}
		key, rest, err := splitKey(content)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", idx+1, err)
		}
		if m.has(key) {
			return nil, fmt.Errorf("line %d: duplicate key %q", idx+1, key)
		}
		p.i = idx + 1
		v, err := p.value(rest, n, true, idx)
		if err != nil {
			return nil, err
		}
		m.keys = append(m.keys, key)
		m.vals[key] = v
	}
}

func (p *yamlReader) seq(n int) ([]any, error) {
	out := []any{}
	for {
		idx, ind, ok, err := p.next()
		if err != nil {
			return nil, err
		}
		if !ok || ind < n || !isSeqItem(p.lines[idx][n:]) {
			return out, nil // a sibling key of the mapping that holds this sequence, or its end
		}
		if ind > n {
			return nil, fmt.Errorf("line %d: bad indentation", idx+1)
		}
		after := p.lines[idx][n+1:]
		item := strings.TrimLeft(after, " ")
		var v any
		switch {
		case item == "" || strings.HasPrefix(item, "#"):
			p.i = idx + 1
			v, err = p.value("", n, false, idx)
		case isSeqItem(item):
			err = fmt.Errorf("line %d: nested compact sequences are not supported", idx+1)
		case isKey(item):
			// "- key: value": a mapping whose column is the key's.
			col := n + 1 + len(after) - len(item)
			p.lines[idx] = strings.Repeat(" ", col) + item
			v, err = p.mapping(col)
		default:
			p.i = idx + 1
			v, err = p.value(item, n, false, idx)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

// value reads what follows "key:" or "- " on line idx: an inline scalar, a block scalar, or a nested
// block indented deeper than n (or, for a mapping value, a sequence at n).
func (p *yamlReader) value(rest string, n int, inMapping bool, idx int) (any, error) {
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, "#") {
		rest = ""
	}
	switch {
	case rest == "":
		next, ind, ok, err := p.next()
		switch {
		case err != nil:
			return nil, err
		case ok && ind > n:
			return p.block(ind)
		case ok && ind == n && inMapping && isSeqItem(p.lines[next][n:]):
			return p.seq(n)
		}
		return nil, nil
	case rest[0] == '|':
		return p.literal(rest, n, idx)
	}
	v, err := inline(rest)
	if err != nil {
		return nil, fmt.Errorf("line %d: %v", idx+1, err)
	}
	return v, nil
}

// literal reads a literal block scalar whose lines are indented deeper than n.
func (p *yamlReader) literal(header string, n, idx int) (string, error) {
	chomp, _, _ := strings.Cut(header[1:], "#")
	if chomp = strings.TrimSpace(chomp); chomp != "" && chomp != "-" {
		return "", fmt.Errorf("line %d: block scalar header %q is not supported (use | or |-)", idx+1, header)
	}
	var lines []string
	blockIndent, end := -1, p.i
	for j := p.i; j < len(p.lines); j++ {
		line := p.lines[j]
		if strings.TrimSpace(line) == "" {
			lines = append(lines, "")
			continue
		}
		ind := len(line) - len(strings.TrimLeft(line, " "))
		if blockIndent < 0 {
			if ind <= n {
				break
			}
			blockIndent = ind
		}
		if ind < blockIndent {
			break
		}
		lines = append(lines, line[blockIndent:])
		end = j + 1
	}
	p.i = end
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	switch {
	case len(lines) == 0:
		return "", nil
	case chomp == "-":
		return strings.Join(lines, "\n"), nil
	}
	return strings.Join(lines, "\n") + "\n", nil
}

// isKey reports whether s starts with "key:" (a mapping entry) rather than being a scalar.
func isKey(s string) bool {
	_, _, err := splitKey(s)
	return err == nil
}

// splitKey splits "key: rest" into the key and the rest.
func splitKey(s string) (key, rest string, err error) {
	if s[0] == '\'' || s[0] == '"' {
		end, err := quotedEnd(s)
		if err != nil {
			return "", "", err
		}
		k, err := inline(s[:end])
		if err != nil {
			return "", "", err
		}
		after := s[end:]
		if after != ":" && !strings.HasPrefix(after, ": ") {
			return "", "", fmt.Errorf("expected ':' after the key %s", s[:end])
		}
		return fmt.Sprint(k), after[1:], nil
	}
	if strings.ContainsRune("[]{}&*!|>%@`?-#,", rune(s[0])) && !(s[0] == '-' && len(s) > 1 && s[1] != ' ') {
		return "", "", fmt.Errorf("a key cannot start with %q", s[0])
	}
	i := strings.Index(s, ": ")
	if i < 0 && strings.HasSuffix(s, ":") {
		i = len(s) - 1
	}
	if i <= 0 {
		return "", "", fmt.Errorf("expected 'key: value', got %q", s)
	}
	return strings.TrimRight(s[:i], " "), s[i+1:], nil
}

// quotedEnd returns the index just after the closing quote of the quoted scalar s starts with.
func quotedEnd(s string) (int, error) {
	q := s[0]
	for i := 1; i < len(s); i++ {
		switch {
		case q == '"' && s[i] == '\\':
			i++
		case s[i] == q && q == '\'' && i+1 < len(s) && s[i+1] == '\'':
			i++
		case s[i] == q:
			return i + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated quoted scalar %s (multi-line quoted scalars are not supported)", s)
}

var (
	yamlInt   = regexp.MustCompile(`^[-+]?(0|[1-9][0-9]*)$`)
	yamlFloat = regexp.MustCompile(`^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$`)
	// Plain scalars that YAML 1.1 and 1.2 readers take differently: require quotes.
	yamlAmbiguous = regexp.MustCompile(`^(?i:y|n|yes|no|on|off|0[0-9_]+|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+|\.inf|-\.inf|\.nan|[-+]?[0-9]+[eE][-+]?[0-9]+)$`)
)

// inline reads a scalar, a flow sequence of scalars, {} or [] written on one line.
func inline(s string) (any, error) {
	switch s[0] {
	case '\'', '"':
		end, err := quotedEnd(s)
		if err != nil {
			return nil, err
		}
		if r := strings.TrimSpace(s[end:]); r != "" && !strings.HasPrefix(r, "#") {
			return nil, fmt.Errorf("text after a quoted scalar: %q", s)
		}
		if s[0] == '\'' {
			return strings.ReplaceAll(s[1:end-1], "''", "'"), nil
		}
		v, err := strconv.Unquote(s[:end])
		if err != nil {
			return nil, fmt.Errorf("double-quoted scalar %s: %v", s[:end], err)
		}
		return v, nil
	case '[':
		body, ok := strings.CutSuffix(strings.TrimSpace(stripComment(s)), "]")
		if !ok {
			return nil, fmt.Errorf("flow sequence %q must end on its line", s)
		}
		out := []any{}
		body = strings.TrimSpace(body[1:])
		for body != "" {
			var item string
			if body[0] == '\'' || body[0] == '"' {
				end, err := quotedEnd(body)
				if err != nil {
					return nil, err
				}
				item, body = body[:end], strings.TrimSpace(body[end:])
			} else {
				i := strings.IndexByte(body, ',')
				if i < 0 {
					i = len(body)
				}
				item, body = strings.TrimSpace(body[:i]), body[i:]
			}
			if item == "" || strings.ContainsAny(item[:1], "[{") {
				return nil, fmt.Errorf("flow sequence %q: only scalars are supported", s)
			}
			v, err := inline(item)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			if body != "" {
				if body[0] != ',' {
					return nil, fmt.Errorf("flow sequence %q: expected ','", s)
				}
				body = strings.TrimSpace(body[1:])
			}
		}
		return out, nil
	case '{':
		if strings.TrimSpace(stripComment(s)) != "{}" {
			return nil, fmt.Errorf("flow mappings other than {} are not supported: %q", s)
		}
		return &omap{vals: map[string]any{}}, nil
	}
	if strings.ContainsRune("&*!|>%@`?]}#,", rune(s[0])) || isSeqItem(s) {
		return nil, fmt.Errorf("unsupported scalar %q", s)
	}
	s = strings.TrimSpace(stripComment(s))
	if strings.Contains(s, ": ") || strings.HasSuffix(s, ":") {
		return nil, fmt.Errorf("a plain scalar cannot hold ': ' (quote it): %q", s)
	}
	switch s {
	case "~", "null", "Null", "NULL":
		return nil, nil
	case "true", "True", "TRUE":
		return true, nil
	case "false", "False", "FALSE":
		return false, nil
	}
	switch {
	case yamlInt.MatchString(s):
		return strconv.ParseInt(s, 10, 64)
	case yamlFloat.MatchString(s):
		return strconv.ParseFloat(s, 64)
	case yamlAmbiguous.MatchString(s):
		return nil, fmt.Errorf("plain scalar %q reads differently in YAML 1.1 and 1.2: quote it", s)
	}
	return s, nil
}

// stripComment removes a " #" comment from a plain or flow scalar.
func stripComment(s string) string {
	if i := strings.Index(s, " #"); i >= 0 {
		return s[:i]
	}
	return s
}
