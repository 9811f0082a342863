package testkit

import (
	"strings"
	"sync"
)

// SyncBuffer collects output from concurrent writers (logs, child processes).
type SyncBuffer struct {
	// Max, when positive, bounds the buffer: it keeps only the last Max bytes written.
	Max int

	mu sync.Mutex
	b  []byte
}

// Write appends p. It never fails.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	if s.Max > 0 && len(s.b) > s.Max {
		s.b = append(s.b[:0], s.b[len(s.b)-s.Max:]...)
	}
	return len(p), nil
}

// String returns what the buffer holds.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

// Tail returns the last n lines of the buffer.
func (s *SyncBuffer) Tail(n int) string {
	lines := strings.Split(s.String(), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
