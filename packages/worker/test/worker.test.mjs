// @jobwire/worker against a real `jobwire dev` (embedded NATS, gateway, projector): no mocks.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { startDev, waitFor } from "@jobwire/testkit";
import { PermanentError, Worker, defineJobType } from "../dist/index.js";
import { apiFor, terminal } from "../testing/gateway.mjs";

let dev, api, nc, worker;

const greet = defineJobType({
  type: "test.greet",
  description: "Greets, one letter at a time.",
  schema: { type: "object", properties: { name: { type: "string", minLength: 1 }, delayMs: { type: "integer" } }, required: ["name"], additionalProperties: false },
  async handler(job, { progress }) {
    for (let i = 1; i <= job.input.name.length; i++) {
      await sleep(job.input.delayMs ?? 0);
      progress({ done: i, total: job.input.name.length, message: `letter ${i}` });
    }
    return { greeting: `hello ${job.input.name}`, attempt: job.attempt };
  },
});

const doomed = defineJobType({
  type: "test.doomed",
  schema: { type: "object" },
  handler() {
    throw new PermanentError("this can never work", "test_doomed");
  },
});

before(async () => {
  dev = await startDev();
  api = await apiFor(dev, "alice");
  nc = await connect({ servers: dev.natsUrl });
  worker = new Worker({ servers: dev.natsUrl, name: "in-process", logger: { info() {}, warn() {}, error() {} } });
  worker.register(greet).register(doomed);
  await worker.start();
  await api.awaitType("test.greet");
  await api.awaitType("test.doomed");
});

after(async () => {
  await worker?.stop();
  await nc?.close();
  await dev?.stop();
});

test("a typed job type end to end: registered, progress visible, completed with its result", async () => {
  const { body: types } = await api.call("GET", "/v1/job-types");
  const jt = types.jobTypes.find((t) => t.name === "test.greet");
  assert.equal(jt.description, "Greets, one letter at a time.");
  assert.equal(jt.workers[0].sdk, "typescript");
  const { status, body } = await api.submit("test.greet", { name: "worldwide", delayMs: 60 });
  assert.equal(status, 202);
  const running = await api.awaitJob(body.id, (st) => st.state === "active" && st.progress?.done >= 1, "progress");
  assert.equal(running.progress.total, 9);
  const done = await api.awaitJob(body.id, terminal);
  assert.equal(done.state, "completed");
  assert.deepEqual(done.result, { greeting: "hello worldwide", attempt: 1 });
  assert.equal(done.progress.done, 9);
  const { body: history } = await api.call("GET", `/v1/jobs/${body.id}/history`);
  const kinds = history.events.map((e) => e.type);
  assert.deepEqual([kinds[0], kinds[1], kinds.at(-1)], ["job.submitted", "job.started", "job.completed"]);
  assert.equal(history.events[1].worker, "in-process");
});

test("input that misses the schema is refused by the gateway, and by the worker", async () => {
  const { status, body } = await api.submit("test.greet", { name: "" });
  assert.equal(status, 422);
  assert.equal(body.error.code, "invalid_input");
  // A job message queued past the gateway: the worker checks the input again and fails it for good.
  const jobId = "01M8Y9VTSEDVNTXC7Q720BQ5CV";
  const js = jetstream(nc);
  await js.publish("jobs.queue.test.greet", JSON.stringify({ v: 1, jobId, type: "test.greet", owner: "alice", input: { name: 42 }, createdAt: new Date().toISOString() }));
  const st = await api.awaitJob(jobId, terminal);
  assert.equal(st.state, "failed");
  assert.equal(st.error.code, "invalid_input");
});

test("a permanent error fails the job at once and dead-letters it", async () => {
  const { body } = await api.submit("test.doomed", {});
  const st = await api.awaitJob(body.id, terminal);
  assert.equal(st.state, "failed");
  assert.equal(st.attempt, 1);
  assert.equal(st.error.code, "test_doomed");
  const jsm = await jetstreamManager(nc);
  const dead = await jsm.streams.getMessage("JOBS_DLQ", { last_by_subj: `jobs.dlq.alice.${body.id}` });
  assert.equal(dead.header.get("Jobwire-Job-Id"), body.id);
  assert.equal(dead.header.get("Jobwire-Error"), "test_doomed: this can never work");
  assert.equal(dead.header.get("Jobwire-Attempts"), "1");
  assert.equal(dead.json().jobId, body.id);
});

test("a malformed message is dead-lettered with its reason and the worker keeps serving", async () => {
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const cases = [
    ["not json at all", /^invalid_job_message: not a JSON job message/],
    [JSON.stringify({ v: 1, jobId: "nope", type: "test.greet", owner: "alice", input: {} }), /invalid job id/],
    [JSON.stringify({ v: 1, jobId: "01M8Y9VTSEDVNTXC7Q720BQ5CW", type: "test.doomed", owner: "alice", input: {} }), /job type "test.doomed" queued for "test.greet"/],
  ];
  for (const [body, reason] of cases) {
    const ack = await js.publish("jobs.queue.test.greet", body);
    const dead = await waitFor("the malformed dead letter", () => jsm.streams.getMessage("JOBS_DLQ", { last_by_subj: `jobs.dlq._malformed.${ack.seq}` }));
    assert.match(dead.header.get("Jobwire-Error"), reason);
    assert.equal(dead.header.get("Jobwire-Queue-Subject"), "jobs.queue.test.greet");
    assert.equal(dead.header.get("Jobwire-Queue-Seq"), String(ack.seq));
    assert.equal(dead.string(), body);
  }
  const info = await waitFor("the queue to be empty", async () => {
    const ci = await jsm.consumers.info("JOBS", "worker-test_greet");
    return ci.num_ack_pending === 0 && ci.num_pending === 0 && ci;
  });
  assert.equal(info.num_redelivered, 0);
  const { body } = await api.submit("test.greet", { name: "next" });
  assert.equal((await api.awaitJob(body.id, terminal)).state, "completed");
});
