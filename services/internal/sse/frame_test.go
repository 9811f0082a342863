package sse

import (
	"bytes"
	"strings"
	"testing"
)

// parsedEvent is an event as an EventSource sees it.
type parsedEvent struct {
	ID, Event string
	Data      []byte
	HasID     bool
}

// parseSSE interprets stream the way the WHATWG EventSource parser does: lines end at CRLF, LF or CR;
// a blank line dispatches; ':' starts a comment; "field: value" loses one leading space; only event,
// data, id and retry mean something. fields lists every field name seen, known or not.
func parseSSE(stream []byte) (events []parsedEvent, fields []string) {
	var (
		data      []byte
		hasData   bool
		event, id string
		hasID     bool
	)
	for len(stream) > 0 {
		i := bytes.IndexAny(stream, "\r\n")
		if i < 0 {
			break // an unterminated last line is never processed
		}
		line := stream[:i]
		if stream[i] == '\r' && i+1 < len(stream) && stream[i+1] == '\n' {
			i++
		}
		stream = stream[i+1:]
		switch {
		case len(line) == 0:
			if hasData {
				events = append(events, parsedEvent{ID: id, HasID: hasID, Event: event, Data: bytes.TrimSuffix(data, []byte("\n"))})
			}
			data, hasData, event = nil, false, ""
			continue
		case line[0] == ':':
			continue
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		if found {
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		fields = append(fields, string(name))
		switch string(name) {
		case "data":
			data = append(append(data, value...), '\n')
			hasData = true
		case "event":
			event = string(value)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				id, hasID = string(value), true
			}
		}
	}
	return events, fields
}

// normalizeBreaks turns every CRLF, CR and LF into LF: what an EventSource gives for a multi-line data.
func normalizeBreaks(b []byte) []byte {
	s := strings.ReplaceAll(string(b), "\r\n", "\n")
	return []byte(strings.ReplaceAll(s, "\r", "\n"))
}

// stripBreaks drops CR, LF and NUL bytes (bytes, not runes: invalid UTF-8 stays as it is).
func stripBreaks(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\n' && c != '\r' && c != 0 {
			b = append(b, c)
		}
	}
	return string(b)
}

// checkOneEvent asserts frame parses to exactly the event AppendEvent was given.
func checkOneEvent(t *testing.T, frame []byte, id, event string, data []byte) {
	t.Helper()
	if !bytes.HasSuffix(frame, []byte("\n\n")) {
		t.Fatalf("frame does not end the event: %q", frame)
	}
	evs, fields := parseSSE(frame)
	if len(evs) != 1 {
		t.Fatalf("AppendEvent(%q, %q, %q) gives %d events: %q", id, event, data, len(evs), frame)
	}
	for _, f := range fields {
		if f != "data" && f != "id" && f != "event" {
			t.Fatalf("AppendEvent(%q, %q, %q) gives a %q field: %q", id, event, data, f, frame)
		}
	}
	ev := evs[0]
	if want := normalizeBreaks(data); !bytes.Equal(ev.Data, want) {
		t.Fatalf("data %q, want %q (frame %q)", ev.Data, want, frame)
	}
	if want := stripBreaks(event); ev.Event != want {
		t.Fatalf("event %q, want %q (frame %q)", ev.Event, want, frame)
	}
	if ev.HasID != (id != "") || ev.ID != stripBreaks(id) {
		t.Fatalf("id %q (%v), want %q (frame %q)", ev.ID, ev.HasID, stripBreaks(id), frame)
	}
	n := 0
	for _, line := range bytes.Split(frame, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("data: ")) {
			n++
		}
	}
	if n != bytes.Count(normalizeBreaks(data), []byte("\n"))+1 {
		t.Fatalf("%d data lines for %q: %q", n, data, frame)
	}
}

func TestAppendEventCannotBeInjected(t *testing.T) {
	cases := []struct {
		id, event string
		data      string
	}{
		{"17", "state", `{"id":"01JF","state":"active"}`},
		{"", "", ""},
		{"1", "state", "line one\nline two\r\nline three\rline four"},
		{"1", "state", "\n\n\n"},
		{"1", "state", "x\n\nevent: expired\ndata: {}\n\n"},
		{"1", "state", "retry: 1\nid: 999"},
		{"1\n\nevent: evil", "state\r\ndata: injected", "ok"},
		{"1\x00", "st\x00ate", "nul\x00inside"},
		{"", "reset", "\r\n"},
		{"5", "", ": not a comment"},
		{"5", " spaced", " leading space"},
	}
	for _, tc := range cases {
		checkOneEvent(t, AppendEvent(nil, tc.id, tc.event, []byte(tc.data)), tc.id, tc.event, []byte(tc.data))
	}
	// Exact output for the usual event and for multi-line data.
	if got := string(AppendEvent(nil, "7", "state", []byte("a\nb"))); got != "id: 7\nevent: state\ndata: a\ndata: b\n\n" {
		t.Fatalf("%q", got)
	}
	// Frames concatenate into separate events; comments and retry make none.
	stream := AppendRetry(nil, 2000)
	stream = AppendEvent(stream, "1", "state", []byte("one\n\nid: 9"))
	stream = AppendComment(stream, "ping\n\ndata: evil")
	stream = AppendEvent(stream, "2", "state", []byte("two"))
	evs, _ := parseSSE(stream)
	if len(evs) != 2 || string(evs[0].Data) != "one\n\nid: 9" || string(evs[1].Data) != "two" || evs[1].ID != "2" {
		t.Fatalf("events %+v from %q", evs, stream)
	}
}

func TestHeaderCarriesExtraLines(t *testing.T) {
	h := string(Header("Access-Control-Allow-Origin: https://app.example.com\r\nVary: Origin\r\n"))
	if !strings.HasPrefix(h, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(h, "Vary: Origin\r\n\r\n") ||
		!strings.Contains(h, "Content-Type: text/event-stream; charset=utf-8\r\n") || strings.Count(h, "\r\n\r\n") != 1 {
		t.Fatalf("%q", h)
	}
}

// FuzzAppendEvent: whatever the id, event type and data, the frame is exactly one event with the same
// data (line breaks normalised to LF, one data: line per line) and no other field; comments carry
// nothing.
func FuzzAppendEvent(f *testing.F) {
	f.Add("1", "state", []byte(`{"state":"active"}`), "ping")
	f.Add("", "", []byte(""), "")
	f.Add("1\n", "a\rb", []byte("x\r\ny\rz\n"), "p\nq")
	f.Add("id", "event", []byte("\n\nevent: evil\ndata: x\n\n"), "\n\ndata: x\n\n")
	f.Add("\x00", "\x00", []byte("\x00\r"), "\r\n\r\n")
	f.Fuzz(func(t *testing.T, id, event string, data []byte, comment string) {
		frame := AppendEvent(nil, id, event, data)
		checkOneEvent(t, frame, id, event, data)
		// Two frames in a row stay two events.
		two := AppendEvent(append([]byte(nil), frame...), "2", "state", data)
		if evs, _ := parseSSE(two); len(evs) != 2 {
			t.Fatalf("two frames give %d events: %q", len(evs), two)
		}
		c := AppendComment(nil, comment)
		if evs, fields := parseSSE(c); len(evs) != 0 || len(fields) != 0 {
			t.Fatalf("comment %q gives events %v fields %v: %q", comment, evs, fields, c)
		}
	})
}
