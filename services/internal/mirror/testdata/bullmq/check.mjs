// check.mjs reads the jobwire legacy mirror with the real BullMQ client and compares what BullMQ
// sees with an expectation. It only reads: the Queue is created with skipMetasUpdate, and no Worker
// or QueueEvents is started.
//
// Usage: node check.mjs <expect.json | inline JSON>   (or the JSON in env CHECK_EXPECT)
// Env:   REDIS_URL (required), QUEUE (default "sync")
//
// Expectation:
//   {"jobs": [{"id": "...", "state": "completed", "name": "...", "data": {...}, "progress": 100,
//              "returnvalue": {...}, "failedReason": "...", "attemptsMade": 1, "finished": true}],
//    "counts": {"completed": 1, "failed": 2, "active": 0, ...},
//    "missing": ["<id that getJob must not find>"]}
// Only the fields given are compared (deep equality). It prints one JSON report on stdout:
//   {"ok": bool, "bullmq": "<version>", "jobs": [...], "counts": {...}, "listed": {...}, "failures": [...]}
// and exits 0 when ok, 1 on a mismatch, 2 when it could not run.
import { readFileSync, existsSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { createRequire } from 'node:module';
import { Queue } from 'bullmq';

const require = createRequire(import.meta.url);

function connectionFromURL(raw) {
  const u = new URL(raw);
  const conn = { host: u.hostname, port: Number(u.port || 6379), maxRetriesPerRequest: null };
  if (u.username) conn.username = decodeURIComponent(u.username);
  if (u.password) conn.password = decodeURIComponent(u.password);
  const db = u.pathname.replace(/^\//, '');
  if (db) conn.db = Number(db);
  if (u.protocol === 'rediss:') conn.tls = {};
  return conn;
}

function readExpect() {
  const arg = process.argv[2] ?? process.env.CHECK_EXPECT;
  if (!arg) throw new Error('no expectation: pass a JSON file or inline JSON, or set CHECK_EXPECT');
  return JSON.parse(arg.trim().startsWith('{') ? arg : readFileSync(arg, 'utf8'));
}

async function main() {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL is not set');
  const queueName = process.env.QUEUE || 'sync';
  const expect = readExpect();
  const queue = new Queue(queueName, { connection: connectionFromURL(url), skipMetasUpdate: true });
  const failures = [];
  const report = { ok: false, bullmq: require('bullmq/package.json').version, queue: queueName, jobs: [], counts: {}, listed: {}, failures };
  try {
    for (const want of expect.jobs ?? []) {
      const job = await queue.getJob(want.id);
      if (!job) {
        failures.push(`getJob(${want.id}) found no job`);
        report.jobs.push({ id: want.id, found: false });
        continue;
      }
      const got = {
        id: job.id,
        found: true,
        state: await job.getState(),
        name: job.name,
        data: job.data,
        opts: job.opts,
        progress: job.progress,
        returnvalue: job.returnvalue ?? null,
        failedReason: job.failedReason ?? null,
        attemptsMade: job.attemptsMade,
        attemptsStarted: job.attemptsStarted,
        timestamp: job.timestamp,
        processedOn: job.processedOn ?? null,
        finishedOn: job.finishedOn ?? null,
        finished: Boolean(job.finishedOn),
      };
      report.jobs.push(got);
      for (const [field, value] of Object.entries(want)) {
        if (!isDeepStrictEqual(got[field], value)) {
          failures.push(`job ${want.id} ${field}: got ${JSON.stringify(got[field])}, want ${JSON.stringify(value)}`);
        }
      }
    }
    for (const id of expect.missing ?? []) {
      if (await queue.getJob(id)) failures.push(`getJob(${id}) found a job that should be gone`);
    }
    report.counts = await queue.getJobCounts();
    for (const [state, n] of Object.entries(expect.counts ?? {})) {
      if (report.counts[state] !== n) {
        failures.push(`getJobCounts().${state}: got ${report.counts[state]}, want ${n}`);
      }
    }
    // What Bull Board does to list a page: getJobs per state. It throws on any invalid JSON field.
    for (const state of ['completed', 'failed', 'active', 'waiting', 'delayed']) {
      const jobs = await queue.getJobs([state], 0, 100);
      report.listed[state] = jobs.filter(Boolean).map((j) => j.id);
      if (jobs.some((j) => !j)) failures.push(`getJobs(${state}) returned a missing job (set entry without hash)`);
    }
  } finally {
    await queue.close();
  }
  report.ok = failures.length === 0;
  process.stdout.write(JSON.stringify(report) + '\n');
  process.exitCode = report.ok ? 0 : 1;
}

if (!existsSync(new URL('./node_modules/bullmq', import.meta.url))) {
  process.stdout.write(JSON.stringify({ ok: false, failures: ['node_modules missing: run npm install'] }) + '\n');
  process.exit(2);
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ ok: false, failures: [String(err && err.stack || err)] }) + '\n');
  process.exit(2);
});
