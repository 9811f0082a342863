// Traces of @jobwire/worker against a real `jobwire dev`: the attempt span continues the job message's
// traceparent, the handler's spans are its children, and the attempt's writes carry its trace context.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncHooksContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { startDev, waitFor } from "@jobwire/testkit";
import { ulid } from "ulid";
import { PermanentError, Worker, defineJobType } from "../dist/index.js";
import { apiFor, terminal } from "../testing/gateway.mjs";

const exporter = new InMemorySpanExporter();
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
context.setGlobalContextManager(new AsyncHooksContextManager().enable());

const secret = "secret-input-3c9e"; // must never reach a span
const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
const parentSpanId = "00f067aa0ba902b7";
const tracestate = "jw=test,other=1";

let dev, api, nc, js, jsm, worker;

const traced = defineJobType({
  type: "test.traced",
  options: { progressIntervalMs: 10 },
  schema: { type: "object", properties: { name: { type: "string" } }, required: ["name"] },
  async handler(job, { progress }) {
    await sleep(5); // the attempt's span stays active across the handler's awaits
    return trace.getTracer("test").startActiveSpan("greet work", async (span) => {
      for (let i = 1; i <= 3; i++) {
        progress({ done: i, total: 3 });
        await sleep(30);
      }
      span.end();
      return { greeting: `hello ${job.input.name}` };
    });
  },
});

/** Fails its first attempt (retried), then for good with its own code. */
const flaky = defineJobType({
  type: "test.traced.fails",
  options: { backoffBaseMs: 10, backoffMaxMs: 20 },
  schema: { type: "object" },
  handler(job) {
    if (job.attempt === 1) throw new Error("the first attempt fails");
    throw new PermanentError("this can never work", "test_nope");
  },
});

before(async () => {
  dev = await startDev();
  api = await apiFor(dev, "alice");
  nc = await connect({ servers: dev.natsUrl });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  worker = new Worker({ servers: dev.natsUrl, name: "traced", logger: { info() {}, warn() {}, error() {} } });
  worker.register(traced).register(flaky);
  await worker.start();
  await api.awaitType("test.traced");
  await api.awaitType("test.traced.fails");
});

after(async () => {
  await worker?.stop();
  await nc?.close();
  await dev?.stop();
});

/** Queues a job message straight into the type's queue, with the trace headers given; returns its id. */
async function queue(type, input, trace = {}) {
  const jobId = ulid();
  const h = headers();
  for (const [k, v] of Object.entries(trace)) h.set(k, v);
  await js.publish(`jobs.queue.${type}`, JSON.stringify({ v: 1, jobId, type, owner: "alice", input, createdAt: new Date().toISOString() }), { headers: h });
  return jobId;
}

/** The ended attempt spans of a job, in the order they ended, once there are n. */
const attemptSpans = (jobId, n = 1) => waitFor(`${n} attempt span(s) of ${jobId}`, () => {
  const spans = exporter.getFinishedSpans().filter((s) => s.attributes["jobwire.job.id"] === jobId && s.name.startsWith("jobwire.attempt "));
  return spans.length >= n && spans;
});

/** The job's events as stored in JOB_EVENTS: type and trace headers. */
async function storedEvents(jobId) {
  const events = [];
  for (let seq = 1; ; ) {
    const m = await jsm.direct.getMessage("JOB_EVENTS", { next_by_subj: `jobs.events.alice.${jobId}`, seq });
    if (!m) return events;
    events.push({ type: m.json().type, traceparent: m.header?.get("traceparent") ?? "", tracestate: m.header?.get("tracestate") ?? "" });
    seq = m.seq + 1;
  }
}

const hexId = (s) => s.spanContext().spanId;
const noInput = (spans) => {
  for (const s of spans) assert.ok(!JSON.stringify({ name: s.name, attributes: s.attributes }).includes(secret), `span ${s.name} carries the input`);
};

test("the attempt span continues the job message's traceparent; the handler's spans and the job's events join it", async () => {
  const jobId = await queue("test.traced", { name: secret }, { traceparent: `00-${traceId}-${parentSpanId}-01`, tracestate });
  assert.equal((await api.awaitJob(jobId, terminal)).state, "completed");
  const [span] = await attemptSpans(jobId);
  assert.equal(span.name, "jobwire.attempt test.traced");
  assert.equal(span.kind, SpanKind.CONSUMER);
  assert.equal(span.instrumentationScope.name, "@jobwire/worker");
  assert.equal(span.spanContext().traceId, traceId);
  assert.equal(span.parentSpanContext?.spanId, parentSpanId);
  assert.equal(span.parentSpanContext?.isRemote, true);
  assert.equal(span.parentSpanContext?.traceState?.serialize(), tracestate);
  assert.deepEqual(span.attributes, {
    "messaging.system": "nats",
    "messaging.destination.name": "jobs.queue.test.traced",
    "messaging.operation.type": "process",
    "jobwire.job.id": jobId,
    "jobwire.job.type": "test.traced",
    "jobwire.owner": "alice",
    "jobwire.attempt": 1,
    "jobwire.outcome": "job.completed",
  });
  assert.equal(span.status.code, SpanStatusCode.UNSET);

  // The queue wait: its own span beside the attempt's, from the message's storing to the claim.
  const waits = exporter.getFinishedSpans().filter((s) => s.attributes["jobwire.job.id"] === jobId && s.name.startsWith("jobwire.queue_wait "));
  assert.equal(waits.length, 1, "one queue wait");
  const [wait] = waits;
  assert.equal(wait.name, "jobwire.queue_wait test.traced");
  assert.equal(wait.spanContext().traceId, traceId);
  assert.equal(wait.parentSpanContext?.spanId, parentSpanId, "the queue wait continues the job message's trace");
  assert.equal(wait.attributes["messaging.destination.name"], "jobs.queue.test.traced");
  assert.ok(wait.attributes["jobwire.message.sequence"] > 0);
  const ms = (t) => t[0] * 1e3 + t[1] / 1e6;
  assert.ok(ms(wait.startTime) <= ms(span.startTime) && ms(wait.endTime) <= ms(span.endTime), "the wait precedes the attempt");

  const work = exporter.getFinishedSpans().find((s) => s.name === "greet work" && s.spanContext().traceId === traceId);
  assert.ok(work, "the handler's span is in the job's trace");
  assert.equal(work.parentSpanContext?.spanId, hexId(span), "the handler's span is a child of the attempt span");
  noInput([span, work]);

  const events = await storedEvents(jobId);
  assert.deepEqual(events.map((e) => e.type).filter((t) => t !== "job.progress"), ["job.submitted", "job.started", "job.completed"]);
  assert.ok(events.some((e) => e.type === "job.progress"), "progress events were written");
  assert.equal(events[0].traceparent, "", "the worker writes the missing job.submitted before the attempt has a span");
  for (const e of events.slice(1)) {
    assert.equal(e.traceparent, `00-${traceId}-${hexId(span)}-01`, e.type);
    assert.equal(e.tracestate, tracestate, e.type);
  }
});

test("a failing handler: each attempt's span says job.failed with its code and an error status; the retry and the dead letter carry the trace", async () => {
  const jobId = await queue("test.traced.fails", { secret }, { traceparent: `00-${traceId}-${parentSpanId}-01` });
  const st = await api.awaitJob(jobId, terminal);
  assert.equal(st.state, "failed");
  assert.equal(st.error.code, "test_nope");
  const [first, second] = await attemptSpans(jobId, 2);
  assert.equal(first.attributes["jobwire.attempt"], 1);
  assert.equal(first.attributes["jobwire.outcome"], "job.failed");
  assert.equal(first.attributes["jobwire.error.code"], "attempt_failed");
  assert.deepEqual(first.status, { code: SpanStatusCode.ERROR, message: "attempt_failed" });
  assert.equal(second.attributes["jobwire.attempt"], 2);
  assert.equal(second.attributes["jobwire.outcome"], "job.failed");
  assert.equal(second.attributes["jobwire.error.code"], "test_nope");
  assert.deepEqual(second.status, { code: SpanStatusCode.ERROR, message: "test_nope" });
  assert.equal(first.parentSpanContext?.spanId, parentSpanId);
  // The retry is a new job message, queued with the first attempt's trace context.
  assert.equal(second.spanContext().traceId, traceId);
  assert.equal(second.parentSpanContext?.spanId, hexId(first));
  noInput([first, second]);

  const dead = await jsm.streams.getMessage("JOBS_DLQ", { last_by_subj: `jobs.dlq.alice.${jobId}` });
  assert.equal(dead.header.get("traceparent"), `00-${traceId}-${hexId(second)}-01`);
  const failed = (await storedEvents(jobId)).filter((e) => e.type === "job.failed");
  assert.deepEqual(failed.map((e) => e.traceparent), [first, second].map((s) => `00-${traceId}-${hexId(s)}-01`));
});

test("a job message without a traceparent, or with a malformed one, starts a new trace", async () => {
  const cases = [
    {},
    { traceparent: "garbage" },
    { traceparent: `00-${"0".repeat(32)}-${parentSpanId}-01` },
    { traceparent: `00-${traceId}-${"0".repeat(16)}-01` },
    { traceparent: `00-${traceId.toUpperCase()}-${parentSpanId}-01` },
    { traceparent: `00-${traceId}-${parentSpanId}-01-extra`, tracestate },
  ];
  const ids = await Promise.all(cases.map((h) => queue("test.traced", { name: "n" }, h)));
  for (const [i, jobId] of ids.entries()) {
    assert.equal((await api.awaitJob(jobId, terminal)).state, "completed", JSON.stringify(cases[i]));
    const [span] = await attemptSpans(jobId);
    assert.equal(span.parentSpanContext, undefined, JSON.stringify(cases[i]));
    assert.notEqual(span.spanContext().traceId, traceId);
    assert.equal(span.attributes["jobwire.outcome"], "job.completed");
    const started = (await storedEvents(jobId)).find((e) => e.type === "job.started");
    assert.equal(started.traceparent, `00-${span.spanContext().traceId}-${hexId(span)}-01`);
    assert.equal(started.tracestate, "");
  }
});
