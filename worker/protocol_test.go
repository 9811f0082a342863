package worker_test

import (
	"os"
	"strings"
	"testing"

	"github.com/jobwire/jobwire/streams"
	"github.com/jobwire/jobwire/worker"
)

// TestProtocolDocumentNamesWhatTheSDKUses keeps docs/protocol.md, the worker protocol other languages
// implement, in step with the names this SDK writes.
func TestProtocolDocumentNamesWhatTheSDKUses(t *testing.T) {
	data, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	owner, id := "alice", "01JF"
	for _, name := range []string{
		streams.StreamJobs, streams.StreamEvents, streams.StreamDeadLetters, streams.StreamCancels,
		streams.BucketState, streams.BucketJobTypes,
		streams.QueueSubject("<type>"), streams.ScheduleSubject("<jobId>"),
		strings.Replace(streams.EventSubject(owner, id), owner+"."+id, "<owner>.<jobId>", 1),
		strings.Replace(streams.DeadLetterSubject(owner, id), owner+"."+id, "<owner>.<jobId>", 1),
		strings.Replace(streams.CancelSubject(owner, id), owner+"."+id, "<owner>.<jobId>", 1),
		streams.CancelWildcard, streams.WorkerConsumer("playlist.import"),
		streams.TypeKey("<type>"), streams.SchemaKey("<type>", "<hash>"), streams.WorkerKey("<type>", "<workerId>"),
		streams.HeaderEventType,
		worker.HeaderDeadJobID, worker.HeaderDeadOwner, worker.HeaderDeadError, worker.HeaderDeadAttempts,
		worker.HeaderDeadQueueSubject, worker.HeaderDeadQueueSeq, strings.Replace(streams.MalformedDeadLetterSubject(7), "7", "<seq>", 1),
		streams.MalformedDeadLetters,
		string(streams.EventSubmitted), string(streams.EventStarted), string(streams.EventProgress),
		string(streams.EventCompleted), string(streams.EventFailed), string(streams.EventCancelled), string(streams.EventRequeued),
		worker.CodeAttemptFailed, worker.CodeAttemptsExhausted, worker.CodeTimeout, worker.CodeInvalidInput,
		worker.CodeInvalidResult, worker.CodeCancelled, worker.CodePermanent, worker.CodeInvalidJobMessage,
	} {
		if !strings.Contains(doc, name) {
			t.Errorf("docs/protocol.md does not name %q", name)
		}
	}
	if !strings.Contains(doc, "version 1") || streams.EventVersion != 1 || streams.RegistryVersion != 1 {
		t.Errorf("the document is version 1; the SDK writes events v%d, registry entries v%d", streams.EventVersion, streams.RegistryVersion)
	}
}
