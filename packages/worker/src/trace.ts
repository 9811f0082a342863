/**
 * OpenTelemetry traces (docs/protocol.md §3, "Trace context"), when the program has installed
 * `@opentelemetry/api`: the attempt's span continues the trace of the job message's `traceparent`, and
 * the attempt's writes carry the span's. Without the API nothing here is loaded and nothing is traced.
 *
 * The headers are W3C Trace Context (`traceparent`, `tracestate`) whatever the global propagator is,
 * as in every jobwire process (streams/trace.go).
 */
import type { MsgHdrs } from "@nats-io/nats-core";
import type * as OtelApi from "@opentelemetry/api";
import type { Context, Span, SpanContext } from "@opentelemetry/api";
import type { JobMessage } from "./messages.js";

/** The `@opentelemetry/api` module, as loaded by loadTracing. */
export type Otel = typeof OtelApi;

/** Names the instrumentation scope of the SDK's spans. */
export const tracerName = "@jobwire/worker";

export const traceparentHeader = "traceparent";
export const tracestateHeader = "tracestate";

let loaded: Promise<Otel | undefined> | undefined;

/** Loads `@opentelemetry/api` once per process; undefined when it is not installed. */
export function loadTracing(): Promise<Otel | undefined> {
  loaded ??= importOtel(() => import("@opentelemetry/api"));
  return loaded;
}

/** Runs the import; any failure (the package is missing, most often) means no tracing, silently. */
export async function importOtel(load: () => Promise<Otel>): Promise<Otel | undefined> {
  try {
    return await load();
  } catch {
    return undefined;
  }
}

/** The sampled (0x01) and random (0x02) flags: the only ones a traceparent keeps, as in Go. */
const knownFlags = 0x03;

const hex = (n: number) => new RegExp(`^[0-9a-f]{${n}}$`);
const hex2 = hex(2), hex16 = hex(16), hex32 = hex(32);

/**
 * Parses a `traceparent`: `<version>-<trace id>-<span id>-<flags>` in lowercase hex, version `ff`
 * refused, version `00` with nothing after the flags and no reserved flag bit, a later version possibly
 * with more fields. All-zero ids and anything malformed give undefined: no parent.
 */
export function parseTraceparent(value: string | undefined): Pick<SpanContext, "traceId" | "spanId" | "traceFlags"> | undefined {
  const [version, traceId, spanId, flags, ...more] = (value ?? "").split("-");
  if (!version || !hex2.test(version) || version === "ff") return undefined;
  if (!traceId || !hex32.test(traceId) || /^0+$/.test(traceId)) return undefined;
  if (!spanId || !hex16.test(spanId) || /^0+$/.test(spanId)) return undefined;
  if (!flags || !hex2.test(flags)) return undefined;
  const traceFlags = parseInt(flags, 16);
  if (version === "00" && (more.length > 0 || traceFlags > knownFlags)) return undefined;
  return { traceId, spanId, traceFlags: traceFlags & knownFlags };
}

/** Formats the `traceparent` (version 00) of a span context. */
export function formatTraceparent(sc: Pick<SpanContext, "traceId" | "spanId" | "traceFlags">): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & knownFlags).toString(16).padStart(2, "0")}`;
}

/** Returns ctx carrying the remote span context of a message's headers, if they have a valid one. */
export function extractTrace(otel: Otel, ctx: Context, h: MsgHdrs | undefined): Context {
  const parent = parseTraceparent(h?.get(traceparentHeader));
  if (!parent) return ctx;
  const state = h?.get(tracestateHeader);
  const traceState = state ? otel.createTraceState(state) : undefined;
  return otel.trace.setSpanContext(ctx, { ...parent, isRemote: true, traceState });
}

/** Writes a span's trace context into h (traceparent, tracestate); nothing for an invalid span context. */
export function injectTrace(otel: Otel, span: Span, h: MsgHdrs): void {
  const sc = span.spanContext();
  if (!otel.isSpanContextValid(sc)) return;
  const state = sc.traceState?.serialize();
  if (state) h.set(tracestateHeader, state);
  h.set(traceparentHeader, formatTraceparent(sc));
}

/** What the attempt span is named after and says: the delivery and the attempt. */
export interface AttemptTrace {
  /** The subject the job message was queued on. */
  subject: string;
  headers: MsgHdrs | undefined;
  job: JobMessage;
  number: number;
}

/**
 * Starts the span of one attempt on the global tracer: a consumer span, the child of the trace the job
 * message carries (else a new root, never a child of what happens to be active in this process).
 * Attributes are ids, never the input: job id, type, owner token, attempt.
 */
export function startAttemptSpan(otel: Otel, t: AttemptTrace): Span {
  const parent = extractTrace(otel, otel.ROOT_CONTEXT, t.headers);
  return otel.trace.getTracer(tracerName).startSpan(`jobwire.attempt ${t.job.type}`, {
    kind: otel.SpanKind.CONSUMER,
    attributes: {
      "messaging.system": "nats",
      "messaging.destination.name": t.subject,
      "messaging.operation.type": "process",
      "jobwire.job.id": t.job.jobId,
      "jobwire.job.type": t.job.type,
      "jobwire.owner": t.job.owner,
      "jobwire.attempt": t.number,
    },
  }, parent);
}

/**
 * Records, for a message's first delivery, its wait in the queue as a span of its own beside the
 * attempt's: from when JetStream stored the message (a submit, or the re-queue of a retry) to this
 * claim, as the Go SDK does. A redelivery's wait is not a queue wait, so it records none.
 */
export function recordQueueWait(otel: Otel, t: AttemptTrace, storedAtMs: number, sequence: number): void {
  const parent = extractTrace(otel, otel.ROOT_CONTEXT, t.headers);
  otel.trace.getTracer(tracerName).startSpan(`jobwire.queue_wait ${t.job.type}`, {
    kind: otel.SpanKind.INTERNAL,
    startTime: new Date(storedAtMs),
    attributes: {
      "messaging.system": "nats",
      "messaging.destination.name": t.subject,
      "jobwire.job.id": t.job.jobId,
      "jobwire.job.type": t.job.type,
      "jobwire.owner": t.job.owner,
      "jobwire.message.sequence": sequence,
    },
  }, parent).end();
}

/**
 * Ends an attempt's span with its outcome, the type of its last lifecycle event (job.completed,
 * job.failed, job.cancelled; "handed_back" when it wrote none), and that event's error code, which
 * also makes the span's status an error.
 */
export function endAttemptSpan(otel: Otel, span: Span, outcome: string | undefined, code: string | undefined): void {
  span.setAttribute("jobwire.outcome", outcome || "handed_back");
  if (code) {
    span.setAttribute("jobwire.error.code", code);
    span.setStatus({ code: otel.SpanStatusCode.ERROR, message: code });
  }
  span.end();
}

/** Runs fn with span as the active span, so the spans fn starts are its children. */
export function withSpan<T>(otel: Otel, span: Span, fn: () => T): T {
  return otel.context.with(otel.trace.setSpan(otel.context.active(), span), fn);
}
