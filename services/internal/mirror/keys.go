package mirror

import (
	"fmt"

	"github.com/jobwire/jobwire/streams"
)

// bullPrefix is BullMQ's default key prefix; legacy readers use it.
const bullPrefix = "bull"

// keys is BullMQ's key layout for one queue: bull:<queue>:<suffix>.
type keys struct {
	prefix    string // "bull:<queue>:", the prefix of every job hash
	completed string
	failed    string
	events    string
}

// newKeys returns the layout of queue, which Config.Validate has checked.
func newKeys(queue string) keys {
	p := bullPrefix + ":" + queue + ":"
	return keys{prefix: p, completed: p + "completed", failed: p + "failed", events: p + "events"}
}

// job returns the key of a job's hash. Only valid job ids (ULIDs, no ':') ever become a key, so a
// hash can never collide with the queue's own keys (completed, events, ...).
func (k keys) job(id string) (string, error) {
	if !streams.ValidJobID(id) {
		return "", fmt.Errorf("job key: %w %q", streams.ErrInvalidJobID, id)
	}
	return k.prefix + id, nil
}
