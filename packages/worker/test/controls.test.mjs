// What operators set (pause, rate limit) and priorities, against a real `jobwire dev`: no mocks.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { startDev, waitFor } from "@jobwire/testkit";
import { Worker, defineJobType } from "../dist/index.js";
import { apiFor, terminal } from "../testing/gateway.mjs";

let dev, api, ops, nc, worker;
const quiet = { info() {}, warn() {}, error() {} };

/** A job type that sleeps delayMs and fails its first `failAttempts` attempts. */
const sleeper = (type, options) => defineJobType({
  type,
  options,
  schema: { type: "object", properties: { delayMs: { type: "integer" }, failAttempts: { type: "integer" } } },
  async handler(job, { signal }) {
    if (job.attempt <= (job.input.failAttempts ?? 0)) throw new Error(`attempt ${job.attempt} fails, as asked`);
    await sleep(job.input.delayMs ?? 0, undefined, { signal }).catch(() => {});
    return { attempt: job.attempt };
  },
});

const paused = sleeper("test.paused", { concurrency: 4 });
const limited = sleeper("test.limited", { concurrency: 6, ackWaitMs: 1000 });
const ranked = sleeper("test.ranked", { concurrency: 1, backoffBaseMs: 10, backoffMaxMs: 20 });
const late = sleeper("test.late");

before(async () => {
  dev = await startDev();
  api = await apiFor(dev, "alice");
  ops = await apiFor(dev, "ops", { operator: true });
  nc = await connect({ servers: dev.natsUrl });
  worker = new Worker({ servers: dev.natsUrl, name: "controls", logger: quiet });
  worker.register(paused).register(limited).register(ranked);
  await worker.start();
  for (const t of ["test.paused", "test.limited", "test.ranked"]) await api.awaitType(t);
});

after(async () => {
  await worker?.stop();
  await nc?.close();
  await dev?.stop();
});

const starts = (events) => events.filter((e) => e.type === "job.started");

/** Waits until GET /v1/job-types shows cond of the type, then a moment for the workers' watches. */
async function awaitControl(type, cond) {
  await waitFor(`${type}'s control`, async () => {
    const { body } = await api.call("GET", "/v1/job-types");
    return cond(body.jobTypes.find((t) => t.name === type));
  });
  await sleep(200);
}

async function op(method, path, body) {
  const { status, body: out } = await ops.call(method, path, body);
  assert.ok(status < 300, `${method} ${path}: ${status} ${JSON.stringify(out)}`);
  return out;
}

test("a pause holds the type's jobs while a running one finishes; a resume runs them", async () => {
  const { body: running } = await api.submit("test.paused", { delayMs: 1500 });
  await api.awaitJob(running.id, (st) => st.state === "active");
  await op("POST", "/v1/job-types/test.paused/pause");
  await awaitControl("test.paused", (t) => t?.paused);
  await sleep(1100); // a pull that was waiting when the pause came ends within a second
  const held = [];
  for (let i = 0; i < 3; i++) held.push((await api.submit("test.paused", {})).body.id);
  assert.equal((await api.awaitJob(running.id, terminal)).state, "completed");
  await sleep(500);
  for (const id of held) {
    assert.equal((await api.job(id)).state, "queued");
    assert.equal(starts(await api.history(id)).length, 0, `job ${id} started while its type was paused`);
  }
  await op("POST", "/v1/job-types/test.paused/resume");
  for (const id of held) assert.equal((await api.awaitJob(id, terminal)).state, "completed");
});

test("a worker that starts while its type is paused fetches nothing until the resume", async () => {
  const first = new Worker({ servers: dev.natsUrl, name: "late-1", logger: quiet }).register(late);
  await first.start(); // registers the type
  await api.awaitType("test.late");
  await first.stop();
  await op("POST", "/v1/job-types/test.late/pause");
  const { body: job } = await api.submit("test.late", {});
  const second = new Worker({ servers: dev.natsUrl, name: "late-2", logger: quiet }).register(late);
  await second.start();
  try {
    await sleep(1500);
    assert.equal((await api.job(job.id)).state, "queued");
    await op("POST", "/v1/job-types/test.late/resume");
    assert.equal((await api.awaitJob(job.id, terminal)).state, "completed");
  } finally {
    await second.stop();
  }
});

test("a rate limit spaces the starts, holding deliveries past their lease without redelivery", async () => {
  const limit = 2;
  await op("PUT", "/v1/job-types/test.limited/rate-limit", { limit, interval: "1s" });
  await awaitControl("test.limited", (t) => t?.rateLimit?.limit === limit);
  const ids = [];
  for (let i = 0; i < 6; i++) ids.push((await api.submit("test.limited", {})).body.id);
  let times = [];
  for (const id of ids) {
    assert.equal((await api.awaitJob(id, terminal)).state, "completed");
    const s = starts(await api.history(id));
    assert.equal(s.length, 1, `job ${id} started ${s.length} times`);
    times.push(Date.parse(s[0].at));
  }
  times.sort((a, b) => a - b);
  // A ticket is taken a moment before its started event is written: count in windows 10 % shorter.
  assert.ok(mostWithin(times, 900) <= limit, `more than ${limit} starts within 0.9 s: ${times.map((t) => t - times[0])}`);
  assert.ok(times.at(-1) - times[0] >= 1800, `6 starts in ${times.at(-1) - times[0]} ms`);
  const jsm = await jetstreamManager(nc);
  assert.equal((await jsm.consumers.info("JOBS", "worker-test_limited")).num_redelivered, 0);

  // Lifted: the next starts go at once.
  await op("DELETE", "/v1/job-types/test.limited/rate-limit");
  await awaitControl("test.limited", (t) => t && !t.rateLimit);
  const quick = [];
  for (let i = 0; i < 6; i++) quick.push((await api.submit("test.limited", {})).body.id);
  times = [];
  for (const id of quick) {
    await api.awaitJob(id, terminal);
    times.push(Date.parse(starts(await api.history(id))[0].at));
  }
  times.sort((a, b) => a - b);
  // More starts in one window than the limit allowed: the limit no longer applies.
  assert.ok(mostWithin(times, 900) > limit, `at most ${limit} unlimited starts within 0.9 s: ${times.map((t) => t - times[0])}`);
});

test("priorities: a backlog runs high first and low last; a retry stays on its level", async () => {
  await op("POST", "/v1/job-types/test.ranked/pause");
  await awaitControl("test.ranked", (t) => t?.paused);
  await sleep(1100);
  const level = new Map();
  for (const priority of ["low", "normal", "high"]) {
    for (let i = 0; i < 4; i++) {
      const { status, body } = await api.submit("test.ranked", {}, { priority });
      assert.equal(status, 202);
      level.set(body.id, priority);
    }
  }
  await op("POST", "/v1/job-types/test.ranked/resume");
  const started = [];
  for (const id of level.keys()) {
    await api.awaitJob(id, terminal);
    started.push({ id, at: Date.parse(starts(await api.history(id))[0].at) });
  }
  const order = started.sort((a, b) => a.at - b.at).map((s) => level.get(s.id));
  const mean = (p) => order.reduce((sum, q, i) => sum + (q === p ? i : 0), 0) / 4;
  // The round after the resume may be a fair one (normal or low first): at most one start other than high among the first four.
  assert.ok(order.slice(0, 4).filter((p) => p === "high").length >= 3, `start order ${order}`);
  assert.ok(mean("high") < mean("normal") && mean("normal") < mean("low"), `start order ${order}`);

  const jsm = await jetstreamManager(nc);
  const delivered = async (c) => (await jsm.consumers.info("JOBS", c)).delivered.consumer_seq;
  const [high, normal] = [await delivered("worker-test_ranked-high"), await delivered("worker-test_ranked")];
  const { body } = await api.submit("test.ranked", { failAttempts: 1 }, { priority: "high" });
  const st = await api.awaitJob(body.id, terminal);
  assert.equal(st.state, "completed");
  assert.equal(st.attempt, 2);
  assert.equal(await delivered("worker-test_ranked-high"), high + 2, "both attempts from the high consumer");
  assert.equal(await delivered("worker-test_ranked"), normal);
});

test("job.submitted written by the worker keeps the message's priority; an unknown priority is dead-lettered", async () => {
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const jobId = "01M8Y9VTSEDVNTXC7Q720BQ5D0";
  const msg = { v: 1, jobId, type: "test.ranked", owner: "alice", input: {}, createdAt: new Date().toISOString(), priority: "low" };
  await js.publish("jobs.queue.test.ranked._low", JSON.stringify(msg));
  assert.equal((await api.awaitJob(jobId, terminal)).state, "completed");
  const submitted = (await api.history(jobId))[0];
  assert.equal(submitted.type, "job.submitted");
  assert.equal(submitted.priority, "low");

  const ack = await js.publish("jobs.queue.test.ranked", JSON.stringify({ ...msg, jobId: "01M8Y9VTSEDVNTXC7Q720BQ5D1", priority: "urgent" }));
  const dead = await waitFor("the malformed dead letter", () => jsm.streams.getMessage("JOBS_DLQ", { last_by_subj: `jobs.dlq._malformed.${ack.seq}` }));
  assert.match(dead.header.get("Jobwire-Error"), /invalid priority "urgent"/);
});

/** The most of the sorted times within any span shorter than ms. */
function mostWithin(sorted, ms) {
  let most = 0;
  for (let i = 0, j = 0; j < sorted.length; j++) {
    while (sorted[j] - sorted[i] >= ms) i++;
    most = Math.max(most, j - i + 1);
  }
  return most;
}
