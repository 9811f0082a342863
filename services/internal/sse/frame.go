// Package sse writes Server-Sent Events to many connections cheaply. Frames are encoded once and
// shared; each connection keeps only the latest frame per key (latest wins), and a small pool of
// writer goroutines serves every connection, so an idle stream costs no goroutine at all. One sweeper
// sends heartbeats and ends streams that reached their maximum duration. A client that cannot take a
// write within the write timeout is dropped.
package sse

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/jobwire/jobwire/api"
)

// AppendEvent appends one SSE event to dst. id and event must not contain line breaks (they are
// removed); data may contain any bytes: every line of it becomes its own "data:" field, so no input can
// start a new field or event.
func AppendEvent(dst []byte, id, event string, data []byte) []byte {
	if id != "" {
		dst = append(dst, "id: "...)
		dst = appendSingleLine(dst, id)
		dst = append(dst, '\n')
	}
	if event != "" {
		dst = append(dst, "event: "...)
		dst = appendSingleLine(dst, event)
		dst = append(dst, '\n')
	}
	for {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			break
		}
		dst = append(dst, "data: "...)
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	dst = append(dst, "data: "...)
	dst = append(dst, data...)
	return append(dst, '\n', '\n')
}

// EventData returns the data of an event AppendEvent encoded, its lines joined by "\n".
func EventData(frame []byte) []byte {
	var data []byte
	lines := 0
	for line := range bytes.Lines(frame) {
		value, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		if lines > 0 {
			data = append(data, '\n')
		}
		data = append(data, bytes.TrimSuffix(value, []byte("\n"))...)
		lines++
	}
	return data
}

// AppendComment appends a comment line (": text"), which clients ignore; used for heartbeats.
func AppendComment(dst []byte, text string) []byte {
	dst = append(dst, ": "...)
	dst = appendSingleLine(dst, text)
	return append(dst, '\n', '\n')
}

// AppendRetry appends the retry field that sets the client's reconnect delay in milliseconds.
func AppendRetry(dst []byte, ms int) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, int64(ms), 10)
	return append(dst, '\n', '\n')
}

func appendSingleLine(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\n' && c != '\r' && c != 0 {
			dst = append(dst, c)
		}
	}
	return dst
}

// Notice is the data of a reset or expired event with reason.
func Notice(reason string) []byte {
	data, _ := json.Marshal(api.StreamNotice{Reason: reason})
	return data
}

// Header is the HTTP/1.1 response head of every stream. The body ends when the connection closes.
func Header(extra string) []byte {
	return []byte("HTTP/1.1 200 OK\r\n" +
		"Content-Type: text/event-stream; charset=utf-8\r\n" +
		"Cache-Control: no-cache, no-store\r\n" +
		"X-Accel-Buffering: no\r\n" +
		"X-Content-Type-Options: nosniff\r\n" +
		"Connection: close\r\n" + extra + "\r\n")
}
