package worker

import (
	"fmt"
	"os"
)

// pauseEnv names a step of an attempt at which a worker process stops forever, after printing
// "jobwire-test-pause <step> <job id>" on stderr: crash tests set it to SIGKILL a worker exactly there.
// The steps: claimed (nothing written yet), started (job.started written, the handler not called),
// failed (a failed attempt written, its retry not queued), rescheduled (the retry queued, the message
// not acked), ended (the terminal event written, the message not acked). Never set it in production.
const pauseEnv = "JOBWIRE_WORKER_TEST_PAUSE"

var pauseAt = os.Getenv(pauseEnv)

// testPause stops the attempt's goroutine for good at step when pauseEnv names it.
func testPause(step string, a *attempt) {
	if pauseAt != step {
		return
	}
	fmt.Fprintf(os.Stderr, "jobwire-test-pause %s %s\n", step, a.job.JobID)
	select {}
}
