/**
 * @jobwire/worker: jobwire workers for Node.js, following the jobwire worker protocol v1
 * (docs/protocol.md). Delivery is at least once; a job's events are stored before its message is acked.
 */
export { Worker, workerOptions, type WorkerOptions } from "./worker.js";
export { defineJobType, type Handler, type HandlerContext, type Job, type JobType, type JobTypeDefinition } from "./jobtype.js";
export { AbortReason, CancelledError, Codes, PermanentError, RetryAfterError, type AbortKind } from "./errors.js";
export { defaultTypeOptions, optionsFromEnv, type EnvConnection, type TypeOptions, type WorkerSettings } from "./options.js";
export { formatDuration, parseDuration } from "./duration.js";
export { SDK } from "./registry.js";
export type { Logger } from "./log.js";
