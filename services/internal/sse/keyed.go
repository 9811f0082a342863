package sse

import (
	"cmp"
	"slices"
)

// A job stream only ever carries one key and a user's stream a few; pendingSet and sentSet keep the
// first key inline and the others in a map, so the common case costs no hashing and no allocation.

// pendingSet holds the newest message per key not yet taken for writing.
type pendingSet struct {
	one  *Message
	more map[string]*Message
}

func (s *pendingSet) len() int {
	n := len(s.more)
	if s.one != nil {
		n++
	}
	return n
}

func (s *pendingSet) get(key string) (*Message, bool) {
	if s.one != nil && s.one.Key == key {
		return s.one, true
	}
	m, ok := s.more[key]
	return m, ok
}

func (s *pendingSet) put(m *Message) {
	switch {
	case s.one == nil || s.one.Key == m.Key:
		s.one = m
	default:
		if s.more == nil {
			s.more = make(map[string]*Message, 1)
		}
		s.more[m.Key] = m
	}
}

// take empties the set and appends its messages to dst in revision order.
func (s *pendingSet) take(dst []*Message) []*Message {
	if s.one != nil {
		dst = append(dst, s.one)
		s.one = nil
	}
	if len(s.more) == 0 {
		return dst
	}
	for _, m := range s.more {
		dst = append(dst, m)
	}
	clear(s.more)
	slices.SortFunc(dst, func(a, b *Message) int { return cmp.Compare(a.Revision, b.Revision) })
	return dst
}

// sentSet holds the revision last sent (or known to the client) per key.
type sentSet struct {
	oneKey string
	oneRev uint64
	more   map[string]uint64
}

func (s *sentSet) get(key string) uint64 {
	if s.oneKey == key && key != "" {
		return s.oneRev
	}
	return s.more[key]
}

func (s *sentSet) set(key string, rev uint64) {
	switch {
	case s.oneKey == "" || s.oneKey == key:
		s.oneKey, s.oneRev = key, rev
	default:
		if s.more == nil {
			s.more = make(map[string]uint64, 1)
		}
		s.more[key] = rev
	}
}
