// Stopping a worker process: SIGTERM lets a running job finish; past the shutdown grace it is handed back.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { startDev, startProcess } from "@jobwire/testkit";
import { apiFor, terminal } from "../testing/gateway.mjs";

const fixture = fileURLToPath(new URL("../testing/slow-worker.mjs", import.meta.url));
let dev, api;

before(async () => {
  dev = await startDev();
  api = await apiFor(dev, "bob");
});
after(() => dev?.stop());

const startWorker = (t, env = {}) => startProcess(process.execPath, [fixture], { t, env: { NATS_URL: dev.natsUrl, ...env } });

test("SIGTERM lets the running job finish, then the worker leaves the registry and exits 0", async (t) => {
  const proc = startWorker(t);
  await api.awaitType("test.slow");
  const { body } = await api.submit("test.slow", { n: 10, delayMs: 100 });
  await api.awaitJob(body.id, (st) => st.progress?.done >= 1, "progress");
  const exit = await proc.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, proc.output());
  const st = await api.job(body.id);
  assert.equal(st.state, "completed");
  assert.equal(st.attempt, 1);
  await api.awaitType("test.slow", false);
});

test("past the shutdown grace a running job is handed back at once and another worker runs it", async (t) => {
  const first = startWorker(t, { JOBWIRE_WORKER_SHUTDOWN_GRACE: "300ms", JOBWIRE_WORKER_ACK_WAIT: "60s" });
  await api.awaitType("test.slow");
  const { body } = await api.submit("test.slow", { n: 100, delayMs: 50 });
  await api.awaitJob(body.id, (st) => st.progress?.done >= 1, "progress");
  assert.equal((await first.stop()).code, 0, first.output());
  const second = startWorker(t);
  // Handed back without delay: with a 60 s lease, only a Nak lets the second worker start it now.
  const st = await api.awaitJob(body.id, terminal);
  assert.equal(st.state, "completed", second.output());
  assert.equal(st.attempt, 2);
  const { body: history } = await api.call("GET", `/v1/jobs/${body.id}/history`);
  assert.equal(history.events.filter((e) => e.type === "job.started").length, 2);
  assert.equal(history.events.filter((e) => e.type === "job.failed").length, 0);
});
