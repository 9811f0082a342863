// Package mirror is the legacy Redis mirror (`jobwire mirror`): a durable JetStream consumer
// (streams.ConsumerMirror, "mirror-redis") on JOB_EVENTS that keeps a minimal copy of every job in
// Redis, in BullMQ's layout, so the legacy Node code and Bull Board can still read job state during the
// migration. Nothing in jobwire reads it back; when REDIS_URL is unset no Mirror is built and no Redis
// connection exists.
//
// # Layout (BullMQ 5, queue Config.Queue, prefix "bull")
//
//   - bull:<q>:<jobId>: the job hash: name (job type), data ({"name": <playlist name>}), opts
//     ({"attempts": n}, the attempts so far: the mirror does not know the worker's retry limit),
//     timestamp, processedOn, finishedOn (ms), progress (JSON number, the percent), returnvalue (JSON),
//     failedReason, atm (attempts made), ats (attempts started), and jwseq, the JOB_EVENTS sequence
//     of the state it holds (BullMQ ignores it).
//   - bull:<q>:completed and bull:<q>:failed: sorted sets of finished job ids, scored by finishedOn.
//     A cancelled job is failed, with failedReason "cancelled: <why>" (and its partial result, if
//     any, in returnvalue).
//   - bull:<q>:events: the events stream, capped with XADD MAXLEN ~ Config.EventsMaxLen, with
//     BullMQ's entries: event completed jobId <id> returnvalue <json> prev active, event failed jobId
//     <id> failedReason <text> prev active, event progress jobId <id> data <percent>.
//
// The mirror never writes wait, active, paused, delayed, locks or meta: a legacy BullMQ worker would
// take a job from wait, or re-run an "active" job without a lock as stalled. The price is that
// job.getState() says "unknown" for a job that is queued or running, while getJob() returns it with
// its progress. Queued jobs get their hash too (one write, coalesced with the next change when the job
// starts within the interval), so getJob() finds a job from its submission on.
//
// # Writes and budget
//
// Each job's writes are one call of a Lua script (atomic: a reader never sees a set entry without
// its hash). A queued or active job is written at most once per Config.ProgressInterval however many
// events arrive: changes wait in memory and a single ticker flushes them, all jobs in one pipeline. A
// terminal state is written at once. The script skips a write whose event sequence is not newer than
// the hash's jwseq, so a redelivered event never moves a job back.
//
// Redis commands per job, as INFO commandstats counts them (the script call plus the commands it runs):
// 4 or 5 per coalesced queued/active write (EVALSHA HGET HSET PEXPIRE, and XADD when the percent
// changed), 7 for the terminal write (EVALSHA HGET HSET PEXPIRE ZADD ZREVRANGE XADD), plus 2 (DEL
// ZREMRANGEBYRANK) when the set is over Config.MaxCount. The budget of a job that runs d seconds is
// 9 + 5*(ceil(d/interval) + 2) commands whatever its number of progress events: 7 to 14 for a job that
// finishes within one interval. Measured with 20 jobs of 100 progress updates over 2 s each (1 s
// interval): 18.5 commands per job (budget 34), where a write per event would be over 500. Sweeps add
// about 5 commands each, at most one per interval and none while nothing is due; each new connection
// adds HELLO and CLIENT SETNAME. Every command the client sends is counted by a go-redis hook and
// exported as jobwire_redis_commands_total{cmd}; the mirror logs a warning when the rate over 10 s exceeds
// Config.WarnCommandsPerSec.
//
// # Retention
//
// Finished jobs are kept Config.MaxAge and at most Config.MaxCount per set. The write script trims the
// set to MaxCount, deleting the trimmed jobs' hashes in the same step. One sweeper removes set entries
// older than MaxAge together with their hashes; it knows when the oldest finished job expires and runs
// then, so expiry happens when no further job finishes, and an idle mirror sends no command. Hashes also
// get a PEXPIRE (MaxAge plus a minute for finished jobs, 24 h for others) only as a backstop for a
// mirror that is gone.
//
// # Delivery guarantee
//
// At least once, and nothing is acked before Redis holds its effect, with one deliberate exception: a
// held progress event is acked as soon as a newer progress event of the same job arrives, because the
// newer one (unacked, redelivered after a crash) carries the complete progress. When Redis is down,
// events are nakked with a growing delay (up to 5 s) and the mirror probes Redis with the same backoff;
// when Redis is back the redelivered events are written and nothing is missing. A Redis that lost its
// data (FLUSHALL, restart without persistence) is refilled by the next write of each job that changes.
// A new consumer starts MaxAge before now rather than at the start of JOB_EVENTS.
//
// Run one mirror per queue. A second one is safe (the sequence check keeps writes monotonic) but
// splits the coalescing and costs more commands.
package mirror
