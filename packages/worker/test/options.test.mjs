// Options: Go durations, the environment and its defaults (worker/env.go).
import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultTypeOptions, formatDuration, optionsFromEnv, parseDuration } from "../dist/index.js";

test("Go durations parse and format as Go does", () => {
  assert.equal(parseDuration("2s"), 2000);
  assert.equal(parseDuration("20ms"), 20);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("1.5s"), 1500);
  assert.throws(() => parseDuration("2 seconds"));
  assert.equal(formatDuration(30 * 60_000), "30m0s");
  assert.equal(formatDuration(30_000), "30s");
  assert.equal(formatDuration(100), "100ms");
  assert.equal(formatDuration(5_400_000), "1h30m0s");
});

test("optionsFromEnv reads the Go SDK's variables and keeps the defaults for the rest", () => {
  const o = optionsFromEnv({ NATS_URL: "nats://a:4222, nats://b:4222", JOBWIRE_WORKER_ACK_WAIT: "2s", JOBWIRE_WORKER_MAX_ATTEMPTS: "3", JOBWIRE_WORKER_SHUTDOWN_GRACE: "5s" });
  assert.deepEqual(o.connection.servers, ["nats://a:4222", "nats://b:4222"]);
  assert.equal(o.defaults.ackWaitMs, 2000);
  assert.equal(o.defaults.maxAttempts, 3);
  assert.equal(o.shutdownGraceMs, 5000);
  assert.equal(o.defaults.concurrency, undefined);
  assert.deepEqual(optionsFromEnv({}).connection.servers, ["nats://127.0.0.1:4222"]);
  assert.equal(defaultTypeOptions.concurrency, 4);
  assert.equal(defaultTypeOptions.timeoutMs, 1_800_000);
});

test("optionsFromEnv names every malformed variable", () => {
  assert.throws(() => optionsFromEnv({ JOBWIRE_WORKER_CONCURRENCY: "four", JOBWIRE_WORKER_ACK_WAIT: "2" }), /JOBWIRE_WORKER_CONCURRENCY="four": not an integer; JOBWIRE_WORKER_ACK_WAIT="2": not a duration/);
});
