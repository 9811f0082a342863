// bench.mjs is the BullMQ side of `jobwire-bench jobs`: the same no-op workload as jobwire's `noop` job
// type, on a real redis-server with the npm bullmq package. The Go tool runs it and reads INFO
// commandstats around it; this script only produces jobs, runs them and times them.
//
// Env:
//   REDIS_URL    redis://host:port[/db] (required)
//   MODE         "throughput": Queue.addBulk of JOBS jobs (chunks of BULK) while one Worker with
//                CONCURRENCY runs them; jobs/s = JOBS / (last completed - first add).
//                "drain": the same jobs added while the Worker is paused, then the Worker starts;
//                jobs/s = JOBS / (last completed - first completed): draining a preloaded backlog.
//                "rate": Queue.add one job at a time at RATE jobs/s for DURATION_MS; latency from the
//                add call to the `completed` event seen by a QueueEvents observer (a separate
//                connection, like jobwire-bench's KV watch), and to the Worker's own completed event.
//   JOBS, BULK, CONCURRENCY (default 50), RATE, DURATION_MS, QUEUE (default a fresh name)
//
// It prints one JSON object on stdout:
//   {"bullmq":"5.x","mode":"...","jobs":N,"seconds":s,"jobsPerSec":r,"latencyMs":{...},"workerLatencyMs":{...}}
import { createRequire } from 'node:module';
import { Queue, Worker, QueueEvents } from 'bullmq';

const require = createRequire(import.meta.url);
const version = require('bullmq/package.json').version;

function connectionFromURL(raw) {
  const u = new URL(raw);
  const conn = { host: u.hostname, port: Number(u.port || 6379), maxRetriesPerRequest: null };
  const db = u.pathname.replace(/^\//, '');
  if (db) conn.db = Number(db);
  return conn;
}

const env = process.env;
const connection = connectionFromURL(env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const mode = env.MODE ?? 'throughput';
const concurrency = Number(env.CONCURRENCY ?? 50);
const queueName = env.QUEUE ?? `bench-${process.pid}-${Date.now()}`;

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

function quantiles(values) {
  if (values.length === 0) return { n: 0 };
  const v = Float64Array.from(values).sort();
  const q = (p) => v[Math.min(v.length - 1, Math.floor(p * v.length))];
  return { n: v.length, p50: q(0.5), p99: q(0.99), max: v[v.length - 1] };
}

async function throughput(queue, drain) {
  const total = Number(env.JOBS ?? 10000);
  const bulk = Number(env.BULK ?? 1000);
  let done = 0;
  let firstDone = 0;
  let last = 0;
  const finished = new Promise((resolve) => {
    worker.on('completed', () => {
      if (done === 0) firstDone = nowMs();
      done++;
      if (done === total) {
        last = nowMs();
        resolve();
      }
    });
  });
  const first = nowMs();
  for (let i = 0; i < total; i += bulk) {
    const n = Math.min(bulk, total - i);
    const jobs = [];
    for (let k = 0; k < n; k++) jobs.push({ name: 'noop', data: { i: i + k } });
    await queue.addBulk(jobs);
  }
  const added = nowMs();
  if (drain) worker.run();
  await finished;
  const seconds = drain ? (last - firstDone) / 1000 : (last - first) / 1000;
  const jobsPerSec = drain ? (total - 1) / seconds : total / seconds;
  return { jobs: total, seconds, jobsPerSec, addSeconds: (added - first) / 1000 };
}

async function rate(queue) {
  const r = Number(env.RATE ?? 1000);
  const durationMs = Number(env.DURATION_MS ?? 5000);
  const total = Math.max(1, Math.round((r * durationMs) / 1000));
  const events = new QueueEvents(queueName, { connection });
  await events.waitUntilReady();
  const addedAt = new Map();
  const lat = [];
  const workerLat = [];
  let seen = 0;
  const finished = new Promise((resolve) => {
    events.on('completed', ({ jobId }) => {
      const t = addedAt.get(jobId);
      if (t !== undefined) lat.push(nowMs() - t);
      if (++seen === total) resolve();
    });
  });
  worker.on('completed', (job) => {
    const t = addedAt.get(job.id);
    if (t !== undefined) workerLat.push(nowMs() - t);
  });
  const start = nowMs();
  const adds = [];
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / r;
    let wait = due - nowMs();
    if (wait > 1) await new Promise((res) => setTimeout(res, wait));
    const id = `r${i}`;
    addedAt.set(id, nowMs());
    adds.push(queue.add('noop', { i }, { jobId: id }));
  }
  await Promise.all(adds);
  const sent = nowMs();
  const timeout = new Promise((res) => setTimeout(res, 30000));
  await Promise.race([finished, timeout]);
  await events.close();
  const seconds = (sent - start) / 1000;
  return { jobs: total, completed: seen, seconds, offeredPerSec: total / seconds, latencyMs: quantiles(lat), workerLatencyMs: quantiles(workerLat) };
}

const queue = new Queue(queueName, { connection });
const worker = new Worker(queueName, async () => ({}), { connection, concurrency, autorun: mode !== 'drain' });
try {
  await queue.waitUntilReady();
  await worker.waitUntilReady();
  const res = mode === 'rate' ? await rate(queue) : await throughput(queue, mode === 'drain');
  process.stdout.write(JSON.stringify({ bullmq: version, mode, concurrency, queue: queueName, ...res }) + '\n');
  // No obliterate: the Go side counts Redis commands around this process, and the server is thrown away.
  await worker.close();
  await queue.close();
  process.exit(0);
} catch (err) {
  process.stdout.write(JSON.stringify({ bullmq: version, mode, error: String(err?.stack ?? err) }) + '\n');
  process.exit(2);
}
