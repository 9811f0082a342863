// A worker process for the tests: serves test.slow (counts to n, delayMs per step) and exits when stopped.
import { setTimeout as sleep } from "node:timers/promises";
import { Worker, defineJobType, optionsFromEnv, workerOptions } from "../dist/index.js";

const slow = defineJobType({
  type: "test.slow",
  schema: { type: "object", properties: { n: { type: "integer" }, delayMs: { type: "integer" } }, required: ["n"] },
  async handler(job, { progress, signal }) {
    for (let i = 1; i <= job.input.n; i++) {
      await sleep(job.input.delayMs ?? 0, undefined, { signal }).catch(() => {});
      if (signal.aborted) return { count: i - 1 };
      progress({ done: i, total: job.input.n });
    }
    return { count: job.input.n };
  },
});

const worker = new Worker(workerOptions(optionsFromEnv()));
worker.register(slow);
await worker.run();
