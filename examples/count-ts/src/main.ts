/**
 * A jobwire worker for the job type demo.count on @jobwire/worker, behaving as examples/count (Go):
 * the same input schema, registration, environment variables (NATS_URL, JOBWIRE_WORKER_*) and result.
 *
 *   NATS_URL=nats://127.0.0.1:4222 node dist/main.js
 */
import { setTimeout as sleep } from "node:timers/promises";
import { PermanentError, RetryAfterError, Worker, defineJobType, optionsFromEnv, workerOptions } from "@jobwire/worker";

/** What a demo.count job takes. */
interface Input {
  n: number;
  delayMs?: number;
  failAttempts?: number;
  retryAfterMs?: number;
  permanent?: boolean;
}

/** What a finished (or cancelled) demo.count job reports. */
interface Result {
  count: number;
}

/** The input's JSON Schema, written as the Go example derives it (so both register the same schema hash). */
const schema = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  properties: {
    n: { type: "integer", maximum: 100000, minimum: 1, description: "how far to count" },
    delayMs: { type: "integer", maximum: 60000, minimum: 0, description: "pause before each step in milliseconds" },
    failAttempts: { type: "integer", maximum: 10, minimum: 0, description: "fail this many attempts first" },
    retryAfterMs: { type: "integer", maximum: 600000, minimum: 0, description: "after a failed attempt retry no sooner than this" },
    permanent: { type: "boolean", description: "fail at once and for good" },
  },
  additionalProperties: false,
  type: "object",
  required: ["n"],
};

export const count = defineJobType<Input, Result>({
  type: "demo.count",
  description: "Counts to n, one progress step at a time.",
  schema,
  async handler(job, { progress, signal }) {
    const { n, delayMs = 0, failAttempts = 0, retryAfterMs = 0, permanent } = job.input;
    if (permanent) throw new PermanentError("asked to fail for good", "demo_permanent");
    if (job.attempt <= failAttempts) {
      const message = `attempt ${job.attempt} fails, as asked (failAttempts ${failAttempts})`;
      throw retryAfterMs > 0 ? new RetryAfterError(retryAfterMs, message) : new Error(message);
    }
    for (let i = 1; i <= n; i++) {
      if (signal.aborted) return { count: i - 1 }; // cancelled: the count so far is kept
      try {
        if (delayMs > 0) await sleep(delayMs, undefined, { signal });
        else if (i % 1000 === 0) await new Promise(setImmediate); // let the lease and cancel requests in
      } catch {
        return { count: i - 1 };
      }
      progress({ done: i, total: n, message: `Counted ${i} of ${n}` });
    }
    return { count: n };
  },
});

try {
  const worker = new Worker(workerOptions(optionsFromEnv()));
  worker.register(count);
  await worker.run(); // until SIGTERM or SIGINT, then a graceful stop
} catch (err) {
  process.stderr.write(JSON.stringify({ level: "ERROR", msg: "demo.count worker", err: String(err) }) + "\n");
  process.exit(1);
}
