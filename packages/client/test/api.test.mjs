// The client's HTTP API against a real `jobwire dev` (no mocks): submit, batch, get, list, cancel,
// retry, history, job types, and the errors as JobwireError.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startDev, waitFor } from "@jobwire/testkit";
import { JobwireClient, JobwireError, isTerminal } from "@jobwire/client";

const csv = (name, n) => ({
  name,
  format: "csv",
  content: "artist,title\n" + Array.from({ length: n }, (_, i) => `${name} artist ${i},${name} song ${i}\n`).join(""),
});
const rejects = async (p, status, code) => {
  const err = await p.then(() => assert.fail(`expected a ${status}`), (e) => e);
  assert.ok(err instanceof JobwireError, `a JobwireError, got ${err}`);
  assert.equal(err.status, status, err.message);
  assert.equal(err.code, code);
  return err;
};

test("the HTTP API", async (t) => {
  const dev = await startDev({ t, env: { JOBWIRE_IMPORT_TRACK_DELAY: "20ms" } });
  const alice = new JobwireClient({ baseUrl: dev.url, token: await dev.token("alice") });
  const bob = new JobwireClient({ baseUrl: dev.url, getToken: () => dev.token("bob") });

  await t.test("submit, with an idempotency key", async () => {
    const { job, created } = await alice.submit({ type: "playlist.import", input: csv("Keyed", 3) }, { idempotencyKey: "k-1", maxAttempts: 2, timeout: "90s" });
    assert.equal(created, true);
    assert.equal(job.type, "playlist.import");
    const again = await alice.submit({ type: "playlist.import", input: csv("Keyed", 3) }, { idempotencyKey: "k-1", maxAttempts: 2, timeout: "90s" });
    assert.equal(again.created, false);
    assert.equal(again.job.id, job.id);
    const done = await waitFor("the keyed job done", async () => isTerminal((await alice.get(job.id)).state) && alice.get(job.id));
    assert.equal(done.state, "completed");
    assert.equal(done.result.added, 3);
  });

  await t.test("a uniqueKey answers the unfinished job", async () => {
    const runAt = new Date(Date.now() + 3_600_000);
    const opts = { runAt, uniqueKey: "nightly", uniqueFor: "10m" };
    const first = await alice.submit({ type: "playlist.import", input: csv("Nightly", 1) }, opts);
    const again = await alice.submit({ type: "playlist.import", input: csv("Nightly", 1) }, opts);
    assert.equal(first.created, true);
    assert.equal(again.created, false);
    assert.equal(again.job.id, first.job.id);
    const other = await bob.submit({ type: "playlist.import", input: csv("Nightly", 1) }, opts);
    assert.notEqual(other.job.id, first.job.id, "another user's key never matches");
    await rejects(alice.submit({ type: "playlist.import", input: csv("Nightly", 1) }, { uniqueFor: "10m" }), 422, "invalid_input");
    await alice.cancel(first.job.id);
    await bob.cancel(other.job.id);
  });

  await t.test("a priority is kept on the job, a wrong one refused", async () => {
    const runAt = new Date(Date.now() + 3_600_000);
    const high = await alice.submit({ type: "playlist.import", input: csv("Urgent", 1) }, { runAt, priority: "high" });
    assert.equal(high.job.priority, "high");
    const normal = await alice.submit({ type: "playlist.import", input: csv("Usual", 1) }, { runAt, priority: "normal" });
    assert.equal(normal.job.priority, undefined, "normal is the default and not written");
    await rejects(alice.submit({ type: "playlist.import", input: csv("Odd", 1) }, { priority: "urgent" }), 422, "invalid_input");
    await alice.cancel(high.job.id);
    await alice.cancel(normal.job.id);
  });

  await t.test("runAt, list by state, cancel", async () => {
    const runAt = new Date(Date.now() + 3_600_000);
    const { job } = await alice.submit({ type: "playlist.import", input: csv("Later", 2) }, { runAt });
    assert.equal(new Date(job.runAt).getTime(), runAt.getTime());
    const queued = await alice.list({ state: "queued", limit: 10 });
    assert.ok(queued.jobs.some((j) => j.id === job.id), "the scheduled job is listed as queued");
    await alice.cancel(job.id);
    const st = await waitFor("cancelled", async () => (await alice.get(job.id)).state === "cancelled");
    assert.ok(st);
    await rejects(alice.cancel(job.id), 409, "job_finished");
  });

  await t.test("list pages with a cursor", async () => {
    const first = await alice.list({ limit: 1 });
    assert.equal(first.jobs.length, 1);
    assert.ok(first.nextCursor);
    const second = await alice.list({ limit: 1, cursor: first.nextCursor });
    assert.equal(second.jobs.length, 1);
    assert.notEqual(second.jobs[0].id, first.jobs[0].id);
  });

  await t.test("submitBatch answers each item", async () => {
    const res = await alice.submitBatch([
      { type: "playlist.import", input: csv("Batch one", 1) },
      { type: "playlist.import", input: { name: "bad" } },
      { type: "playlist.import", input: csv("Batch two", 1), idempotencyKey: "b-2" },
    ]);
    assert.deepEqual(res.map((r) => r.status), [202, 422, 202]);
    assert.equal(res[1].error.code, "invalid_input");
    assert.ok(res[2].job.id);
  });

  await t.test("a failed job: history and retry", async () => {
    const { job } = await alice.submit({ type: "playlist.import", input: { name: "Broken", format: "json", content: "this is not a playlist" } }, { maxAttempts: 1 });
    await waitFor("the job failed", async () => (await alice.get(job.id)).state === "failed");
    const h = await alice.history(job.id, { limit: 100 });
    assert.equal(h.events[0].type, "job.submitted");
    assert.ok(h.events.some((e) => e.type === "job.failed"));
    const page = await alice.history(job.id, { limit: 1 });
    assert.equal(page.events.length, 1);
    assert.ok(page.nextCursor);
    const retried = await waitFor("a retry accepted", async () => {
      try {
        return await alice.retry(job.id);
      } catch (e) {
        if (e.code === "job_finished") return undefined; // not dead-lettered yet
        throw e;
      }
    });
    assert.equal(retried.id, job.id);
  });

  await t.test("job types", async () => {
    const types = await alice.jobTypes();
    const imp = types.find((jt) => jt.name === "playlist.import");
    assert.ok(imp, "playlist.import is registered");
    assert.equal(typeof imp.options.maxAttempts, "number");
  });

  await t.test("errors", async () => {
    const { job } = await alice.submit({ type: "playlist.import", input: csv("Mine", 1) });
    await rejects(bob.get(job.id), 404, "job_not_found");
    await rejects(new JobwireClient({ baseUrl: dev.url, token: "not.a.token" }).list(), 401, "unauthorized");
    const bad = await rejects(alice.submit({ type: "playlist.import", input: { name: "x" } }), 422, "invalid_input");
    assert.ok(bad.message.length > 0);
    await rejects(alice.submit({ type: "no.such.type", input: {} }), 422, "unknown_job_type");
    const down = await rejects(new JobwireClient({ baseUrl: "http://127.0.0.1:1" }).list(), 0, "network");
    assert.equal(down.retryAfter, undefined);
  });

  await t.test("a 401 asks getToken for a fresh token once", async () => {
    const asked = [];
    const good = await dev.token("carol");
    const c = new JobwireClient({ baseUrl: dev.url, getToken: ({ refresh }) => (asked.push(refresh), refresh ? good : "stale.token.x") });
    const list = await c.list();
    assert.deepEqual(list.jobs, []);
    assert.deepEqual(asked, [false, true]);
  });
});

test("429 with retryAfter", async (t) => {
  const dev = await startDev({ t, env: { JOBWIRE_SUBMIT_RATE: "1/m", JOBWIRE_SUBMIT_BURST: "1" } });
  const c = new JobwireClient({ baseUrl: dev.url, token: await dev.token("dave") });
  await c.submit({ type: "playlist.import", input: csv("One", 1) });
  const err = await rejects(c.submit({ type: "playlist.import", input: csv("Two", 1) }), 429, "rate_limited");
  assert.ok(err.retryAfter > 0, `retryAfter ${err.retryAfter}`);
});
