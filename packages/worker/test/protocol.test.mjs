// The protocol's names and rules that need no server: priority levels, the fetch order, control entries.
import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeControl } from "../dist/control.js";
import { parseAckSubject } from "../dist/fetch.js";
import { decodeJobMessage, encodeEvent, encodeJobMessage } from "../dist/messages.js";
import { consumerNameAt, queueSubjectAt, rateStream, rateSubject } from "../dist/names.js";
import { fetchOrder, waitShares } from "../dist/runner.js";

test("names of the priority levels and rate limits, as streams/names.go", () => {
  assert.equal(queueSubjectAt("playlist.import", ""), "jobs.queue.playlist.import");
  assert.equal(queueSubjectAt("playlist.import", "normal"), "jobs.queue.playlist.import");
  assert.equal(queueSubjectAt("playlist.import", "high"), "jobs.queue.playlist.import._high");
  assert.equal(queueSubjectAt("playlist.import", "low"), "jobs.queue.playlist.import._low");
  assert.equal(consumerNameAt("a_b.c", undefined), "worker-a__b_c");
  assert.equal(consumerNameAt("a_b.c", "high"), "worker-a__b_c-high");
  assert.equal(consumerNameAt("a_b.c", "low"), "worker-a__b_c-low");
  assert.equal(rateStream("playlist.import"), "JOBS_RATE_playlist_import");
  assert.equal(rateSubject("playlist.import"), "jobs.rate.playlist.import");
});

test("the fetch order: high, normal, low, but normal first in the 5th and low first in the 10th of every 10 rounds", () => {
  const firsts = Array.from({ length: 20 }, (_, n) => fetchOrder(n).order[0]);
  assert.deepEqual(firsts, [0, 0, 0, 0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2]);
  assert.deepEqual(fetchOrder(4), { order: [1, 0, 2], fair: true });
  assert.deepEqual(fetchOrder(9), { order: [2, 0, 1], fair: true });
  assert.deepEqual(fetchOrder(0), { order: [0, 1, 2], fair: false });
});

test("waiting on every level shares the free slots: one each for high and low, the rest normal", () => {
  assert.deepEqual(waitShares(1), [0, 1, 0]);
  assert.deepEqual(waitShares(2), [1, 1, 0]);
  assert.deepEqual(waitShares(3), [1, 1, 1]);
  assert.deepEqual(waitShares(8), [1, 6, 1]);
});

test("control entries: paused and rate limits read, unreadable ones refused", () => {
  const enc = (v) => new TextEncoder().encode(JSON.stringify(v));
  const base = { v: 1, type: "demo.count", updatedAt: "2026-12-03T12:00:00Z", updatedBy: "ops" };
  assert.deepEqual(decodeControl(enc({ ...base, paused: true, pausedBy: "ops" })), { paused: true, pausedBy: "ops" });
  assert.deepEqual(decodeControl(enc({ ...base, paused: false, rateLimit: { limit: 10, interval: "1m0s" } })), { paused: false, pausedBy: undefined, rateLimit: { limit: 10, intervalMs: 60_000 } });
  for (const bad of [{ ...base, v: 2 }, { ...base, type: "Bad" }, { ...base, rateLimit: { limit: 0, interval: "1s" } }, { ...base, rateLimit: { limit: 1, interval: "10ms" } }, { ...base, rateLimit: { limit: 1, interval: 1e9 } }, { ...base, paused: "yes" }]) {
    assert.throws(() => decodeControl(enc(bad)), undefined, JSON.stringify(bad));
  }
  assert.throws(() => decodeControl(new TextEncoder().encode("{")));
});

test("job messages and events carry the priority in the Go SDK's field order", () => {
  const m = { v: 1, jobId: "01M8Y9VTSEDVNTXC7Q720BQ5CV", type: "demo.count", owner: "alice", input: { n: 1 }, createdAt: "2026-12-03T12:00:00Z", attempts: 1, priority: "high" };
  assert.equal(encodeJobMessage(m), '{"v":1,"jobId":"01M8Y9VTSEDVNTXC7Q720BQ5CV","type":"demo.count","owner":"alice","input":{"n":1},"createdAt":"2026-12-03T12:00:00Z","attempts":1,"priority":"high"}');
  const data = (o) => new TextEncoder().encode(JSON.stringify(o));
  assert.equal(decodeJobMessage(data(m), "demo.count").priority, "high");
  assert.equal(decodeJobMessage(data({ ...m, priority: null }), "demo.count").priority, null);
  assert.throws(() => decodeJobMessage(data({ ...m, priority: "urgent" }), "demo.count"), /invalid priority "urgent"/);
  const ev = { v: 1, type: "job.submitted", jobId: m.jobId, jobType: m.type, owner: "alice", at: m.createdAt, name: "x", priority: "low", queueSeq: 7 };
  assert.equal(encodeEvent(ev), '{"v":1,"type":"job.submitted","jobId":"01M8Y9VTSEDVNTXC7Q720BQ5CV","jobType":"demo.count","owner":"alice","at":"2026-12-03T12:00:00Z","name":"x","priority":"low","queueSeq":7}');
});

test("delivery metadata from a $JS.ACK subject, in both of its forms", () => {
  assert.deepEqual(parseAckSubject("$JS.ACK.JOBS.worker-demo_count.3.42.17.1764763200000000000.0"), { stream: "JOBS", consumer: "worker-demo_count", deliveryCount: 3, streamSequence: 42, storedAtMs: 1764763200000 });
  assert.deepEqual(parseAckSubject("$JS.ACK.hub.ACCHASH.JOBS.worker-demo_count-high.1.9.9.1764763200000000000.0.rnd"), { stream: "JOBS", consumer: "worker-demo_count-high", deliveryCount: 1, streamSequence: 9, storedAtMs: 1764763200000 });
  assert.equal(parseAckSubject(undefined), undefined);
  assert.equal(parseAckSubject("_INBOX.abc"), undefined);
  assert.equal(parseAckSubject("$JS.ACK.JOBS.c.x.y"), undefined);
});
