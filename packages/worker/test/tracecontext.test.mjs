// The trace context rules that need no server: traceparent parsing and formatting as Go's W3C
// propagator, and the SDK without @opentelemetry/api (nothing loaded, nothing traced).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { promisify } from "node:util";
import { headers } from "@nats-io/nats-core";
import { Attempt } from "../dist/attempt.js";
import { formatTraceparent, importOtel, loadTracing, parseTraceparent } from "../dist/trace.js";

const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
const spanId = "00f067aa0ba902b7";

test("traceparent: version 00 parsed, a later version's extra fields allowed, unknown flags dropped", () => {
  assert.deepEqual(parseTraceparent(`00-${traceId}-${spanId}-01`), { traceId, spanId, traceFlags: 1 });
  assert.deepEqual(parseTraceparent(`00-${traceId}-${spanId}-00`), { traceId, spanId, traceFlags: 0 });
  assert.deepEqual(parseTraceparent(`00-${traceId}-${spanId}-03`), { traceId, spanId, traceFlags: 3 });
  assert.deepEqual(parseTraceparent(`01-${traceId}-${spanId}-09-future`), { traceId, spanId, traceFlags: 1 });
  assert.equal(formatTraceparent({ traceId, spanId, traceFlags: 1 }), `00-${traceId}-${spanId}-01`);
  assert.equal(formatTraceparent({ traceId, spanId, traceFlags: 0x81 }), `00-${traceId}-${spanId}-01`);
});

test("traceparent: malformed values and all-zero ids give no parent, silently", () => {
  const bad = [
    undefined, "", "garbage", `00-${traceId}-${spanId}`, `00-${traceId}-${spanId}-1`, `00-${traceId}-${spanId}-01-extra`,
    `00-${traceId}-${spanId}-04`, `ff-${traceId}-${spanId}-01`, `0-${traceId}-${spanId}-01`,
    `00-${traceId.toUpperCase()}-${spanId}-01`, `00-${traceId}-${spanId.toUpperCase()}-01`, `00-${traceId}-${spanId}-0G`,
    `00-${"0".repeat(32)}-${spanId}-01`, `00-${traceId}-${"0".repeat(16)}-01`, `00-${traceId}x-${spanId}-01`,
    `00-${traceId.slice(1)}-${spanId}-01`, `00-${traceId}-${spanId.slice(1)}-01`, ` 00-${traceId}-${spanId}-01`,
  ];
  for (const v of bad) assert.equal(parseTraceparent(v), undefined, String(v));
});

test("the loader's fallback: an import that fails means no tracing", async () => {
  const missing = Object.assign(new Error("Cannot find package '@opentelemetry/api'"), { code: "ERR_MODULE_NOT_FOUND" });
  assert.equal(await importOtel(() => Promise.reject(missing)), undefined);
  assert.equal(await importOtel(() => import("@opentelemetry/no-such-package")), undefined);
  const otel = await loadTracing(); // installed here, as a dev dependency
  assert.equal(typeof otel?.trace.getTracer, "function");
  assert.equal(await loadTracing(), otel, "loaded once");
});

const run = promisify(execFile);
const traceModule = new URL("../dist/trace.js", import.meta.url).href;
const indexModule = new URL("../dist/index.js", import.meta.url).href;

/** Loads the SDK in a Node process where `@opentelemetry/api` cannot be resolved when hide is set. */
async function loadElsewhere(hide) {
  const hooks = `export async function resolve(s, c, next) {
    if (s.startsWith("@opentelemetry/")) throw Object.assign(new Error("Cannot find package " + s), { code: "ERR_MODULE_NOT_FOUND" });
    return next(s, c);
  }`;
  const script = [
    hide ? `import { register } from "node:module"; register(${JSON.stringify("data:text/javascript," + encodeURIComponent(hooks))});` : "",
    `const { Worker } = await import(${JSON.stringify(indexModule)});`,
    `const { loadTracing } = await import(${JSON.stringify(traceModule)});`,
    `console.log(typeof Worker, (await loadTracing()) === undefined ? "absent" : "loaded");`,
  ].join("\n");
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script]);
  return stdout.trim();
}

test("without @opentelemetry/api installed the SDK loads and the loader finds nothing", async () => {
  assert.equal(await loadElsewhere(true), "function absent");
  assert.equal(await loadElsewhere(false), "function loaded");
});

test("an attempt without the API traces nothing: no span, no trace headers, the handler called as is", () => {
  const rc = { opts: { progressIntervalMs: 100 }, otel: undefined };
  const h = headers();
  h.set("traceparent", `00-${traceId}-${spanId}-01`);
  const job = { v: 1, jobId: "01M8Y9VTSEDVNTXC7Q720BQ5CV", type: "test.t", owner: "alice", input: {}, createdAt: new Date().toISOString() };
  const a = new Attempt(rc, { subject: "jobs.queue.test.t", headers: h }, job, 1, 5);
  a.startSpan();
  assert.deepEqual(a.traceHeaders().keys(), []);
  assert.equal(a.inSpan(() => 42), 42);
  a.endSpan();
  a.progress.stop();
});
