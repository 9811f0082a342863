package relay

import "github.com/jobwire/jobwire/services/internal/sse"

// DefaultSnapshotMemory bounds the memory a hub spends on snapshots: 64 MiB, about 150,000 jobs.
const DefaultSnapshotMemory = 64 << 20

// snapshots are the latest encoded state of each job in JOB_STATE: the first frame, resume and reset
// of every stream come from here, shared bytes, never a copy per stream. Their size is bounded: past the
// bound, the states that changed longest ago are dropped, and a stream that needs one reads it from
// JOB_STATE. Not safe for concurrent use (the hub's lock guards it).
type snapshots struct {
	max   int
	bytes int
	byKey map[string]*sse.Message // state key -> latest state
	order []snapshotRef           // in revision order, oldest first; may hold superseded refs
	head  int
}

type snapshotRef struct {
	key string
	rev uint64
}

func newSnapshots(maxBytes int) *snapshots {
	return &snapshots{max: maxBytes, byKey: map[string]*sse.Message{}}
}

func (s *snapshots) get(key string) (*sse.Message, bool) {
	m, ok := s.byKey[key]
	return m, ok
}

// put makes m the snapshot of key; revisions arrive in increasing order.
func (s *snapshots) put(key string, m *sse.Message) {
	s.remove(key)
	s.byKey[key] = m
	s.bytes += m.Size()
	s.order = append(s.order, snapshotRef{key: key, rev: m.Revision})
	for s.bytes > s.max && s.head < len(s.order) {
		s.evictOldest()
	}
	s.compact()
}

func (s *snapshots) remove(key string) {
	if old, ok := s.byKey[key]; ok {
		s.bytes -= old.Size()
		delete(s.byKey, key)
	}
}

func (s *snapshots) evictOldest() {
	ref := s.order[s.head]
	s.order[s.head] = snapshotRef{}
	s.head++
	if m, ok := s.byKey[ref.key]; ok && m.Revision == ref.rev {
		s.remove(ref.key)
	}
}

// compact drops superseded refs once they outnumber the live ones, so order stays proportional to the
// snapshots held however often each job changes.
func (s *snapshots) compact() {
	if len(s.order)-s.head <= 2*len(s.byKey)+1024 {
		return
	}
	live := s.order[:0]
	for _, ref := range s.order[s.head:] {
		if m, ok := s.byKey[ref.key]; ok && m.Revision == ref.rev {
			live = append(live, ref)
		}
	}
	clear(s.order[len(live):])
	s.order, s.head = live, 0
}
