// Watches against a real `jobwire dev`: to the terminal state, 204 after it, all jobs over one
// stream, resume from a stored position, expiry with a fresh token, 429 backoff; and a malformed event
// from a tiny local SSE server.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { test } from "node:test";
import { startDev, waitFor } from "@jobwire/testkit";
import { JobwireClient, MalformedEventError, positionKey } from "@jobwire/client";

const csv = (name, n) => ({
  name,
  format: "csv",
  content: "artist,title\n" + Array.from({ length: n }, (_, i) => `${name} artist ${i},${name} song ${i}\n`).join(""),
});
/** memoryStorage stands in for a tab's sessionStorage. */
const memoryStorage = () => {
  const m = new Map();
  return { m, getItem: (k) => m.get(k) ?? null, setItem: (k, v) => m.set(k, String(v)), removeItem: (k) => m.delete(k) };
};
/** recorder collects what a watch tells. */
const recorder = () => {
  const r = { states: [], statuses: [], errors: [], removed: [], resets: 0 };
  r.handlers = {
    onState: (s) => r.states.push(s),
    onStatus: (s) => r.statuses.push(s),
    onError: (e) => r.errors.push(e),
    onRemoved: (id) => r.removed.push(id),
    onReset: () => r.resets++,
  };
  return r;
};

test("watches", async (t) => {
  const dev = await startDev({ t, env: { JOBWIRE_IMPORT_TRACK_DELAY: "20ms" } });
  const storage = memoryStorage();
  const client = new JobwireClient({ baseUrl: dev.url, token: await dev.token("alice"), storage });

  await t.test("watchJob follows a job to its terminal state, a later watch gets 204", async () => {
    const { job } = await client.submit({ type: "playlist.import", input: csv("Watched", 40) });
    const r = recorder();
    const end = await client.watchJob(job.id, r.handlers).ended;
    assert.equal(end.reason, "terminal");
    const last = r.states.at(-1);
    assert.equal(last.state, "completed");
    assert.equal(last.result.added, 40);
    assert.ok(r.states.some((s) => s.state === "active" && s.progress.percent < 100), "progress arrived");
    const revs = r.states.map((s) => s.revision);
    assert.deepEqual(revs, [...revs].sort((a, b) => a - b), "revisions only grow");
    assert.equal(new Set(revs).size, revs.length, "no state twice");
    assert.equal(storage.getItem(positionKey(job.id)), String(last.revision), "the position is stored under the job's key");
    assert.deepEqual(r.errors, []);

    const again = recorder();
    const end2 = await client.watchJob(job.id, again.handlers).ended;
    assert.equal(end2.reason, "no-content");
    assert.deepEqual(again.states, []);
  });

  await t.test("watchJobs sees several jobs over one stream; a resume re-sends nothing seen", async () => {
    const r = recorder();
    const w = client.watchJobs(r.handlers);
    const ids = [];
    for (const n of ["A", "B", "C"]) ids.push((await client.submit({ type: "playlist.import", input: csv(n, 30) })).job.id);
    await waitFor("three completed", () => ids.every((id) => r.states.some((s) => s.id === id && s.state === "completed")));
    const position = w.lastEventId;
    assert.equal(storage.getItem(positionKey()), position);
    w.close();
    assert.equal((await w.ended).reason, "closed");

    // A fourth job runs while nobody watches; the resumed watch (a "reload": a new client, the
    // same storage) gets it, and nothing it had seen.
    const seen = new Map(r.states.map((s) => [s.id, Math.max(s.revision, 0)]));
    for (const s of r.states) seen.set(s.id, Math.max(seen.get(s.id), s.revision));
    const d = (await client.submit({ type: "playlist.import", input: csv("D", 5) })).job.id;
    await waitFor("D done", async () => (await client.get(d)).state === "completed");
    const resumed = recorder();
    const reloaded = new JobwireClient({ baseUrl: dev.url, token: await dev.token("alice"), storage });
    const w2 = reloaded.watchJobs(resumed.handlers);
    await waitFor("D's terminal state on the resumed stream", () => resumed.states.some((s) => s.id === d && s.state === "completed"));
    w2.close();
    for (const s of resumed.states) {
      assert.ok(s.revision > Number(position), `state ${s.id}@${s.revision} is not newer than the position ${position}`);
      assert.ok(!(seen.get(s.id) >= s.revision), `state ${s.id}@${s.revision} was seen before`);
    }
    assert.equal(resumed.resets, 0);
  });

  await t.test("a position the server cannot resume from: reset, then a fresh snapshot", async () => {
    const r = recorder();
    const w = client.watchJobs(r.handlers, { lastEventId: "999999999" });
    await waitFor("a reset and a snapshot", () => r.resets === 1 && r.states.length >= 4);
    assert.notEqual(w.lastEventId, "999999999");
    w.close();
  });

  await t.test("a 404 (another user's job) ends the watch", async () => {
    const { job } = await client.submit({ type: "playlist.import", input: csv("Private", 1) });
    const bob = new JobwireClient({ baseUrl: dev.url, token: await dev.token("bob"), storage: null });
    const r = recorder();
    const end = await bob.watchJob(job.id, r.handlers).ended;
    assert.equal(end.reason, "refused");
    assert.equal(end.error.status, 404);
    assert.equal(r.errors[0].code, "job_not_found");
  });

  await t.test("a 401 asks for a fresh token once, then reports", async () => {
    const good = await dev.token("alice");
    const asked = [];
    const c = new JobwireClient({ baseUrl: dev.url, storage: null, getToken: ({ refresh }) => (asked.push(refresh), refresh ? good : "bad.token.x") });
    const r = recorder();
    const w = c.watchJobs(r.handlers);
    await waitFor("live", () => r.statuses.some((s) => s.state === "live"));
    w.close();
    assert.deepEqual(asked, [false, true]);
    const never = new JobwireClient({ baseUrl: dev.url, storage: null, getToken: () => "bad.token.x" });
    const r2 = recorder();
    const end = await never.watchJobs(r2.handlers).ended;
    assert.equal(end.reason, "unauthorized");
    assert.equal(end.error.status, 401);
  });

  await t.test("stream tokens in ?access_token=", async () => {
    const c = new JobwireClient({ baseUrl: dev.url, storage: null, token: await dev.token("alice"), streamAuth: "stream-token" });
    const { job } = await c.submit({ type: "playlist.import", input: csv("Streamed", 3) });
    const r = recorder();
    const end = await c.watchJob(job.id, r.handlers).ended;
    assert.equal(end.reason, "terminal");
    assert.equal(r.states.at(-1).state, "completed");
  });
});

test("expired: the watch reconnects with a fresh token and resumes", async (t) => {
  const dev = await startDev({ t, env: { JOBWIRE_SSE_MAX_DURATION: "1500ms", JOBWIRE_SSE_HEARTBEAT: "500ms", JOBWIRE_IMPORT_TRACK_DELAY: "20ms" } });
  const asked = [];
  const client = new JobwireClient({ baseUrl: dev.url, storage: null, getToken: ({ refresh }) => (asked.push(refresh), dev.token("erin")) });
  const r = recorder();
  const w = client.watchJobs(r.handlers);
  await waitFor("two expiries", () => r.statuses.filter((s) => s.state === "waiting" && s.reason === "expired").length >= 2, { timeoutMs: 10_000 });
  const { job } = await client.submit({ type: "playlist.import", input: csv("After", 5) });
  await waitFor("the job seen after the expiries", () => r.states.some((s) => s.id === job.id && s.state === "completed"));
  w.close();
  const lives = r.statuses.filter((s) => s.state === "live").length;
  assert.ok(lives >= 3, `${lives} connections`);
  assert.ok(asked.filter(Boolean).length >= 2, `fresh tokens asked: ${asked}`);
  const delays = r.statuses.filter((s) => s.reason === "expired").map((s) => s.delayMs);
  assert.ok(delays.every((d) => d >= 250 && d <= 1500), `jittered delays ${delays}`);
  const revs = r.states.filter((s) => s.id === job.id).map((s) => s.revision);
  assert.equal(new Set(revs).size, revs.length, "no state twice across reconnects");
});

test("429: the watch backs off (Retry-After) and gets in when a slot frees", async (t) => {
  const dev = await startDev({ t, env: { JOBWIRE_SSE_MAX_PER_USER: "1" } });
  const client = new JobwireClient({ baseUrl: dev.url, storage: null, token: await dev.token("frank") });
  const first = recorder();
  const w1 = client.watchJobs(first.handlers);
  await waitFor("the first stream live", () => first.statuses.some((s) => s.state === "live"));
  const second = recorder();
  const began = Date.now();
  const w2 = client.watchJobs(second.handlers);
  await waitFor("a refusal", () => second.statuses.some((s) => s.state === "waiting"));
  const refusal = second.statuses.find((s) => s.state === "waiting");
  assert.equal(refusal.reason, "refused");
  assert.equal(refusal.error.status, 429);
  assert.equal(refusal.error.code, "too_many_streams");
  assert.ok(refusal.error.retryAfter > 0);
  assert.ok(refusal.delayMs >= refusal.error.retryAfter * 1000, `waits ${refusal.delayMs} ms, Retry-After ${refusal.error.retryAfter} s`);
  w1.close();
  await waitFor("the second stream live", () => second.statuses.some((s) => s.state === "live"), { timeoutMs: 20_000 });
  const attempts = second.statuses.filter((s) => s.state === "connecting").length;
  assert.ok(attempts <= 2 + (Date.now() - began) / 4000, `${attempts} attempts: no tight loop`);
  w2.close();
});

test("a malformed event is reported and the watch goes on", async (t) => {
  const state = (id, rev, st = "active") => JSON.stringify({ id, type: "t", state: st, progress: { done: 0, total: 0, percent: 0 }, result: null, error: null, attempt: 1, createdAt: "", updatedAt: "", revision: rev, eventSeq: rev });
  const requests = [];
  const server = createServer((req, res) => {
    requests.push(req.url);
    res.writeHead(200, { "Content-Type": "text/event-stream" });
    res.write(": hello\r\n\r\n");
    res.write(`id: 1\nevent: state\ndata: ${state("01A", 1)}\n\n`);
    res.write(`id: 2\nevent: state\ndata: {not json\n\n`);
    res.write(`id: 3\r\nevent: state\r\ndata: {"id": 7}\r\n\r\n`);
    res.write(`id: 4\nevent: removed\ndata: {}\n\n`);
    res.write(`id: 5\nevent: state\ndata: ${state("01A", 5, "completed")}\n\n`);
    res.end();
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  t.after(() => server.close());
  const client = new JobwireClient({ baseUrl: `http://127.0.0.1:${server.address().port}`, storage: null });
  const r = recorder();
  const end = await client.watchJob("01A", r.handlers).ended;
  assert.equal(end.reason, "terminal");
  assert.deepEqual(r.states.map((s) => s.revision), [1, 5]);
  assert.equal(r.errors.length, 3);
  assert.ok(r.errors.every((e) => e instanceof MalformedEventError));
  assert.deepEqual(requests, ["/v1/jobs/01A/events"]);
});
