package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Operators' actions recorded in JOBS_AUDIT.
const (
	AuditRetryDeadLetters = "dead_letters.retry"
	AuditPurgeDeadLetters = "dead_letters.purge"
	AuditPauseJobType     = "job_types.pause"
	AuditResumeJobType    = "job_types.resume"
	AuditSetRateLimit     = "job_types.rate_limit"
	AuditCreateSchedule   = "schedules.create"
	AuditDeleteSchedule   = "schedules.delete"
	// AuditVersion is the version of AuditRecord.
	AuditVersion = 1
)

// AuditRecord is one operator action in JOBS_AUDIT, on the subject AuditSubject(Action).
type AuditRecord struct {
	V      int       `json:"v"`
	ID     string    `json:"id"` // a ULID; also the message id, so a retried publish is stored once
	At     time.Time `json:"at"`
	Action string    `json:"action"`
	// Operator is the owner token of the operator's user id.
	Operator string `json:"operator"`
	// Selection is what the operator asked for (keys or a filter), Results what became of each.
	Selection json.RawMessage `json:"selection"`
	Results   []AuditResult   `json:"results"`
}

// AuditResult is what an action did to one target: its HTTP-like status and error code.
type AuditResult struct {
	Key    string `json:"key"`
	Status int    `json:"status"`
	Code   string `json:"code,omitempty"`
}

// PublishAudit stores rec in JOBS_AUDIT (deduplicated by its id).
func PublishAudit(ctx context.Context, js jetstream.JetStream, rec AuditRecord) error {
	rec.V = AuditVersion
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode audit record: %w", err)
	}
	m := nats.NewMsg(AuditSubject(rec.Action))
	m.Data = data
	if _, err := js.PublishMsg(ctx, m, jetstream.WithMsgID("audit:"+rec.ID)); err != nil {
		return fmt.Errorf("publish audit record: %w", err)
	}
	return nil
}
