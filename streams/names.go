package streams

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/jobwire/jobwire/api"
)

// Names of the streams and buckets.
const (
	StreamJobs        = "JOBS"
	StreamDeadLetters = "JOBS_DLQ"
	StreamEvents      = "JOB_EVENTS"
	// StreamCancels keeps each job's last cancel request (jobs.cancel.<owner>.<jobId>), so a worker that
	// missed the broadcast of one learns it at its next lease renewal.
	StreamCancels = "JOB_CANCELS"
	// StreamAudit keeps what operators did (jobs.audit.<action>): dead letters retried or purged.
	StreamAudit = "JOBS_AUDIT"
	// StreamTicks holds the periodic jobs' schedules (jobs.tick.schedule.<id>: one JetStream message
	// schedule each, its body the definition) and the ticks the server produces from them
	// (jobs.tick.fire.<id>), which the gateways take through the durable ConsumerTicker.
	StreamTicks       = "JOBS_TICKS"
	BucketState       = "JOB_STATE"
	BucketLibrary     = "LIBRARY"
	BucketIdempotency = "JOB_IDEMPOTENCY"
	// BucketJobTypes is the job-type registry: what each type takes and which workers serve it now.
	BucketJobTypes = "JOB_TYPES"
)

// Durable consumer names. Worker consumers are named per job type by WorkerConsumer.
const (
	ConsumerProjector = "projector"
	ConsumerMirror    = "mirror-redis"
	// ConsumerTicker is the durable on JOBS_TICKS that every gateway pulls from: each tick goes to one.
	ConsumerTicker = "ticker"
)

// Subject prefixes.
const (
	subjectQueue = "jobs.queue."
	subjectDLQ   = "jobs.dlq."
	subjectAudit = "jobs.audit."
	// subjectRate holds the start tickets of a rate-limited type: jobs.rate.<type> (RateStream).
	subjectRate = "jobs.rate."
	// subjectSchedule holds one schedule message per delayed job: jobs.schedule.<jobId>.
	subjectSchedule = "jobs.schedule."
	subjectEvents   = "jobs.events."
	// subjectTickSchedule holds one schedule per periodic job, subjectTickFire its ticks (JOBS_TICKS).
	subjectTickSchedule = "jobs.tick.schedule."
	subjectTickFire     = "jobs.tick.fire."
	// subjectCancel is where cancel requests are broadcast to workers: jobs.cancel.<owner>.<jobId>.
	subjectCancel = "jobs.cancel."
	// subjectGateways is where each gateway publishes its own small stats for the operators' console:
	// jobs.gateways.<gatewayId>, core NATS only (no stream stores it).
	subjectGateways = "jobs.gateways."
	// kvSubjectPrefix and kvStreamPrefix are how JetStream names a KV bucket's subjects and stream.
	kvSubjectPrefix = "$KV."
	kvStreamPrefix  = "KV_"
)

// Key prefixes of the JOB_TYPES bucket.
const (
	keyType   = "type."
	keyWorker = "worker."
	keySchema = "schema."
	// keyControl holds what operators set for a type (paused, rate limit): control.<type>.
	keyControl = "control."
)

// Errors of the validators.
var (
	ErrInvalidJobID   = errors.New("invalid job id")
	ErrInvalidOwner   = errors.New("invalid owner")
	ErrInvalidJobType = errors.New("invalid job type")
	ErrInvalidWorker  = errors.New("invalid worker id")
)

// MaxSubjectLen bounds a user id (the token's sub) so keys and subjects stay small.
const MaxSubjectLen = 256

var jobTypeRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}(\.[a-z][a-z0-9_]{0,31}){0,3}$`)

// ValidJobType reports whether t has the shape of a job type: one to four dot-separated words of lower-case
// letters, digits and '_', each starting with a letter and at most 32 long ("playlist.import").
func ValidJobType(t string) bool { return jobTypeRE.MatchString(t) }

// NewWorkerID returns a new worker id for the registry: a ULID, unique per worker process.
func NewWorkerID(now time.Time) string { return NewJobID(now) }

// ValidWorkerID reports whether id could have come from NewWorkerID.
func ValidWorkerID(id string) bool { return ValidJobID(id) }

// NewGatewayID returns a new gateway id: a ULID, unique per gateway process.
func NewGatewayID(now time.Time) string { return NewJobID(now) }

// ValidGatewayID reports whether id could have come from NewGatewayID.
func ValidGatewayID(id string) bool { return ValidJobID(id) }

// NewJobID returns a new job id: a ULID, so ids sort by creation time.
func NewJobID(now time.Time) string {
	return ulid.MustNew(ulid.Timestamp(now), ulid.DefaultEntropy()).String()
}

// ValidJobID reports whether id is a canonical ULID (26 characters of Crockford base32, upper case).
// Only ids that pass it are ever put into a subject or key.
func ValidJobID(id string) bool {
	if len(id) != ulid.EncodedSize {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') || c == 'I' || c == 'L' || c == 'O' || c == 'U' {
			return false
		}
	}
	// The first character can only be 0..7: larger values overflow 48 bits of time.
	return id[0] <= '7'
}

// JobIDTime returns the creation time encoded in a valid job id.
func JobIDTime(id string) time.Time {
	u, err := ulid.ParseStrict(id)
	if err != nil {
		return time.Time{}
	}
	return ulid.Time(u.Time())
}

// OwnerToken maps a user id (a token's sub, any non-empty UTF-8 string up to MaxSubjectLen bytes) to a
// token that is safe in a subject and a KV key. Letters, digits and '-' stay as they are; every other
// byte, '_' included, becomes '_' followed by two upper-case hex digits. The mapping is injective, so two
// different users never share a token, and readable for the usual ids ("alice", "user-42").
func OwnerToken(sub string) (string, error) {
	if sub == "" || len(sub) > MaxSubjectLen {
		return "", fmt.Errorf("%w: length %d", ErrInvalidOwner, len(sub))
	}
	var b strings.Builder
	b.Grow(len(sub))
	const hexdigits = "0123456789ABCDEF"
	for i := 0; i < len(sub); i++ {
		c := sub[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		b.WriteByte(hexdigits[c>>4])
		b.WriteByte(hexdigits[c&0xF])
	}
	return b.String(), nil
}

// ValidOwnerToken reports whether tok could have come from OwnerToken.
func ValidOwnerToken(tok string) bool {
	if tok == "" || len(tok) > 3*MaxSubjectLen {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-':
		case c == '_' && i+2 < len(tok) && isUpperHex(tok[i+1]) && isUpperHex(tok[i+2]):
			i += 2
		default:
			return false
		}
	}
	return true
}

func isUpperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

// QueueSubject is the JOBS subject for a job type.
func QueueSubject(jobType string) string { return subjectQueue + jobType }

// Priorities are the priority levels, highest first; the empty one is normal.
var Priorities = [...]api.Priority{api.PriorityHigh, "", api.PriorityLow}

// NormalPriority maps the normal level to the empty Priority, which job messages and events carry.
func NormalPriority(p api.Priority) api.Priority {
	if p == api.PriorityNormal {
		return ""
	}
	return p
}

// priorityToken is the queue subject's last token of a level other than normal. It starts with '_',
// which no word of a job type does, so no type's queue is another's priority level.
func priorityToken(p api.Priority) string { return "._" + string(p) }

// QueueSubjectAt is the queue subject of jobType's jobs at priority p: QueueSubject for normal,
// jobs.queue.<type>._high and jobs.queue.<type>._low for the others.
func QueueSubjectAt(jobType string, p api.Priority) string {
	if p = NormalPriority(p); p == "" {
		return QueueSubject(jobType)
	}
	return QueueSubject(jobType) + priorityToken(p)
}

// WorkerConsumerAt is the durable consumer of jobType's jobs at priority p: WorkerConsumer for normal,
// worker-<type token>-high and -low for the others ('-' is in no type token).
func WorkerConsumerAt(jobType string, p api.Priority) string {
	if p = NormalPriority(p); p == "" {
		return WorkerConsumer(jobType)
	}
	return WorkerConsumer(jobType) + "-" + string(p)
}

// ScheduleSubject is the JOBS subject of the schedule that releases a delayed job into its queue.
func ScheduleSubject(jobID string) string { return subjectSchedule + jobID }

// ErrInvalidScheduleID is the error of a schedule id ValidScheduleID refuses.
var ErrInvalidScheduleID = errors.New("invalid schedule id: 1 to 64 letters, digits, '-' or '_', starting with a letter or digit")

var scheduleIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ValidScheduleID reports whether id can name a periodic job's schedule: 1 to 64 ASCII letters, digits,
// '-' and '_', starting with a letter or digit (one subject token, no wildcard, no dot).
func ValidScheduleID(id string) bool { return scheduleIDRE.MatchString(id) }

// ScheduleDefSubject is the JOBS_TICKS subject of a periodic job's schedule: jobs.tick.schedule.<id>.
func ScheduleDefSubject(id string) string { return subjectTickSchedule + id }

// TickSubject is the JOBS_TICKS subject the server publishes a schedule's ticks on: jobs.tick.fire.<id>.
func TickSubject(id string) string { return subjectTickFire + id }

// ScheduleSubjects is the JOBS_TICKS filter of one schedule's definition and ticks together
// (jobs.tick.*.<id>): a delete purges both.
func ScheduleSubjects(id string) string { return "jobs.tick.*." + id }

// ScheduleDefs and Ticks are the JOBS_TICKS filters of every schedule and of every tick.
const (
	ScheduleDefs = subjectTickSchedule + "*"
	Ticks        = subjectTickFire + "*"
)

// ParseTickSubject returns the schedule id of a tick's subject.
func ParseTickSubject(subject string) (string, bool) {
	id, ok := strings.CutPrefix(subject, subjectTickFire)
	return id, ok && ValidScheduleID(id)
}

// ParseScheduleDefSubject returns the schedule id of a schedule's subject.
func ParseScheduleDefSubject(subject string) (string, bool) {
	id, ok := strings.CutPrefix(subject, subjectTickSchedule)
	return id, ok && ValidScheduleID(id)
}

// DeadLetterSubject is the JOBS_DLQ subject of one job: jobs.dlq.<owner>.<jobId>, so an operator's
// retry finds it with one direct get.
func DeadLetterSubject(owner, jobID string) string { return subjectDLQ + owner + "." + jobID }

// malformedDLQ is the JOBS_DLQ token under which workers keep messages that are not jobwire job
// messages. It can never be an owner token: an owner token's "_" is always followed by two hex digits.
const malformedDLQ = "_malformed"

// MalformedDeadLetterSubject is the JOBS_DLQ subject of a queued message that is not a job message,
// by its JOBS stream sequence: jobs.dlq._malformed.<seq>.
func MalformedDeadLetterSubject(queueSeq uint64) string {
	return subjectDLQ + malformedDLQ + "." + strconv.FormatUint(queueSeq, 10)
}

// MalformedDeadLetters is the JOBS_DLQ filter for every malformed message kept there.
const MalformedDeadLetters = subjectDLQ + malformedDLQ + ".*"

// Headers of a dead letter in JOBS_DLQ (its body is the job message as it was queued).
const (
	HeaderDeadJobID    = "Jobwire-Job-Id"
	HeaderDeadOwner    = "Jobwire-Owner"
	HeaderDeadError    = "Jobwire-Error" // <code>: <message>
	HeaderDeadAttempts = "Jobwire-Attempts"
	// HeaderDeadQueueSubject and HeaderDeadQueueSeq say where a malformed message was queued.
	HeaderDeadQueueSubject = "Jobwire-Queue-Subject"
	HeaderDeadQueueSeq     = "Jobwire-Queue-Seq"
)

// DeadLetters is the JOBS_DLQ filter for every dead letter, malformed ones included.
const DeadLetters = subjectDLQ + ">"

// DeadLetterKey is what names a dead letter to operators: <owner>.<jobId>, or _malformed.<seq>.
func DeadLetterKey(subject string) (string, bool) {
	key, ok := strings.CutPrefix(subject, subjectDLQ)
	return key, ok && key != ""
}

// ParseDeadLetterKey splits a dead letter's key into the job's owner and id, or the JOBS sequence of a
// malformed message (malformed is then true).
func ParseDeadLetterKey(key string) (owner, jobID string, malformedSeq uint64, ok bool) {
	if rest, found := strings.CutPrefix(key, malformedDLQ+"."); found {
		seq, err := strconv.ParseUint(rest, 10, 64)
		return "", "", seq, err == nil && seq > 0
	}
	owner, jobID, ok = ParseStateKey(key)
	return owner, jobID, 0, ok
}

// DeadLetterSubjectOf is the JOBS_DLQ subject of a dead letter's key (ParseDeadLetterKey must accept it).
func DeadLetterSubjectOf(key string) string { return subjectDLQ + key }

// AuditSubject is the JOBS_AUDIT subject of an operator's action, such as "dead_letters.retry".
func AuditSubject(action string) string { return subjectAudit + action }

// EventSubject is the JOB_EVENTS subject of one job. owner must be an OwnerToken and jobID valid.
func EventSubject(owner, jobID string) string { return subjectEvents + owner + "." + jobID }

// OwnerEventsFilter is the JOB_EVENTS filter for all jobs of one owner.
func OwnerEventsFilter(owner string) string { return subjectEvents + owner + ".*" }

// ParseEventSubject splits a JOB_EVENTS subject into owner token and job id.
func ParseEventSubject(subject string) (owner, jobID string, ok bool) {
	rest, found := strings.CutPrefix(subject, subjectEvents)
	if !found {
		return "", "", false
	}
	owner, jobID, found = strings.Cut(rest, ".")
	return owner, jobID, found && ValidOwnerToken(owner) && ValidJobID(jobID)
}

// CancelSubject is the subject of a cancel request for one job: stored in JOB_CANCELS, and delivered to
// every worker subscribed to CancelWildcard as it is stored.
func CancelSubject(owner, jobID string) string { return subjectCancel + StateKey(owner, jobID) }

// ParseCancelSubject splits a cancel subject into owner token and job id.
func ParseCancelSubject(subject string) (owner, jobID string, ok bool) {
	rest, found := strings.CutPrefix(subject, subjectCancel)
	if !found {
		return "", "", false
	}
	return ParseStateKey(rest)
}

// CancelWildcard matches every cancel request.
const CancelWildcard = subjectCancel + ">"

// GatewayStatsSubject is the core NATS subject on which the gateway gatewayID (a NewGatewayID)
// publishes its stats for the operators' console of every gateway.
func GatewayStatsSubject(gatewayID string) string { return subjectGateways + gatewayID }

// GatewayStatsWildcard matches every gateway's stats.
const GatewayStatsWildcard = subjectGateways + "*"

// ParseGatewayStatsSubject returns the gateway id of a GatewayStatsSubject.
func ParseGatewayStatsSubject(subject string) (gatewayID string, ok bool) {
	id, found := strings.CutPrefix(subject, subjectGateways)
	return id, found && ValidGatewayID(id)
}

// StateKey is the JOB_STATE key of one job.
func StateKey(owner, jobID string) string { return owner + "." + jobID }

// ParseStateKey splits a JOB_STATE key into owner token and job id.
func ParseStateKey(key string) (owner, jobID string, ok bool) {
	owner, jobID, found := strings.Cut(key, ".")
	return owner, jobID, found && ValidOwnerToken(owner) && ValidJobID(jobID)
}

// OwnerKeys is the KV key filter for all keys of one owner (JOB_STATE, LIBRARY).
func OwnerKeys(owner string) string { return owner + ".*" }

// TrackKey returns the LIBRARY key of a track for an owner: the owner token, a dot and a hex digest of
// the track's identity (normalised artist and title), so the same track always lands on the same key.
func TrackKey(owner, identity string) string {
	sum := sha256.Sum256([]byte(identity))
	return owner + "." + hex.EncodeToString(sum[:16])
}

// IdempotencyKey returns the JOB_IDEMPOTENCY key for an owner's Idempotency-Key header value. The value
// is hashed, so any header content is safe.
func IdempotencyKey(owner, headerValue string) string {
	sum := sha256.Sum256([]byte(headerValue))
	return owner + "." + hex.EncodeToString(sum[:16])
}

// UniqueKey is the JOB_IDEMPOTENCY key of an owner's unique key for a job type:
// <owner>.unique.<type>.<32 hex>, apart from every IdempotencyKey (two tokens) by its shape.
func UniqueKey(owner, jobType, uniqueKey string) string {
	sum := sha256.Sum256([]byte(uniqueKey))
	return owner + ".unique." + jobType + "." + hex.EncodeToString(sum[:16])
}

// WorkerConsumer is the durable consumer name of the workers of a job type. Consumer names cannot hold
// dots: each '_' of the type is doubled and each '.' becomes '_', so "playlist.import" becomes
// "worker-playlist_import" and no two types share a consumer ("a_b.c" is "worker-a__b_c", "a.b_c" is
// "worker-a_b__c").
func WorkerConsumer(jobType string) string {
	return "worker-" + typeToken(jobType)
}

// typeToken is a job type as one name token: each '_' doubled and each '.' made '_', so that no two
// types share one ("a_b.c" is "a__b_c", "a.b_c" is "a_b__c").
func typeToken(jobType string) string {
	return strings.ReplaceAll(strings.ReplaceAll(jobType, "_", "__"), ".", "_")
}

// RateStream is the stream of a rate-limited job type's start tickets: JOBS_RATE_<type token>
// ("playlist.import" → JOBS_RATE_playlist_import). Gateways create it when an operator sets the limit.
func RateStream(jobType string) string { return "JOBS_RATE_" + typeToken(jobType) }

// RateSubject is where a worker takes a start ticket of a rate-limited job type: jobs.rate.<type>.
func RateSubject(jobType string) string { return subjectRate + jobType }

// KVSubject is the subject under which bucket stores key; publishing to it writes the key directly
// (with headers KV's Put cannot set, such as a per-message TTL).
func KVSubject(bucket, key string) string { return kvSubjectPrefix + bucket + "." + key }

// KVStream is the name of the stream that holds bucket.
func KVStream(bucket string) string { return kvStreamPrefix + bucket }

// TypeKey is the JOB_TYPES key of a job type's registration: type.<jobType>.
func TypeKey(jobType string) string { return keyType + jobType }

// WorkerKey is the JOB_TYPES key that says one worker serves a job type now:
// worker.<jobType>.<workerId>. It expires when the worker stops renewing it.
func WorkerKey(jobType, workerID string) string { return keyWorker + jobType + "." + workerID }

// SchemaKey is the JOB_TYPES key of one version of a job type's input schema:
// schema.<jobType>.<schemaHash>.
func SchemaKey(jobType, hash string) string { return keySchema + jobType + "." + hash }

// ControlKey is the JOB_TYPES key of what operators set for a job type (ControlEntry):
// control.<jobType>. Gateways write it, the type's workers watch it.
func ControlKey(jobType string) string { return keyControl + jobType }

// WorkerKeys is the JOB_TYPES filter of every worker entry of one job type.
func WorkerKeys(jobType string) string { return keyWorker + jobType + ".*" }

// SchemaKeys is the JOB_TYPES filter of every schema version of one job type.
func SchemaKeys(jobType string) string { return keySchema + jobType + ".*" }

// RegistryKeyKind says what a JOB_TYPES key holds.
type RegistryKeyKind int

// The kinds of JOB_TYPES keys.
const (
	RegistryUnknown RegistryKeyKind = iota
	RegistryType
	RegistryWorker
	RegistrySchema
	RegistryControl
)

// ParseRegistryKey splits a JOB_TYPES key into its kind, job type and (for worker and schema keys)
// the worker id or schema hash. Keys that jobwire would not write are RegistryUnknown.
func ParseRegistryKey(key string) (kind RegistryKeyKind, jobType, id string) {
	if t, ok := strings.CutPrefix(key, keyType); ok && ValidJobType(t) {
		return RegistryType, t, ""
	}
	if t, ok := strings.CutPrefix(key, keyControl); ok && ValidJobType(t) {
		return RegistryControl, t, ""
	}
	for _, k := range []struct {
		prefix string
		kind   RegistryKeyKind
		valid  func(string) bool
	}{{keyWorker, RegistryWorker, ValidWorkerID}, {keySchema, RegistrySchema, ValidSchemaHash}} {
		rest, ok := strings.CutPrefix(key, k.prefix)
		i := strings.LastIndexByte(rest, '.')
		if ok && i > 0 && ValidJobType(rest[:i]) && k.valid(rest[i+1:]) {
			return k.kind, rest[:i], rest[i+1:]
		}
	}
	return RegistryUnknown, "", ""
}

// SchemaHash is the content address of a schema document: 32 hex digits of its SHA-256.
func SchemaHash(schema []byte) string {
	sum := sha256.Sum256(schema)
	return hex.EncodeToString(sum[:16])
}

// ValidSchemaHash reports whether h could have come from SchemaHash.
func ValidSchemaHash(h string) bool {
	if len(h) != 32 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
