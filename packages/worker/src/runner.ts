/** Taking the jobs of one type from its three durable consumers, one per priority level (docs/protocol.md §2). */
import { AckPolicy, type ConsumerConfig } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { nanos } from "@nats-io/nats-core";
import type { RunnerContext } from "./attempt.js";
import { claim } from "./claim.js";
import { Control, untilAborted } from "./control.js";
import { pull, type Delivery, type PullWait } from "./fetch.js";
import { consumerNameAt, priorities, queueSubjectAt, streams, type Level } from "./names.js";
import { runHandler } from "./run.js";
import { settle } from "./settle.js";

/**
 * The durable pull consumer of a type's jobs at one level, shared by every worker of the type:
 * MaxAckPending is the type's cluster-wide in-flight cap (per level).
 */
export function consumerConfig(rc: Pick<RunnerContext, "jobType" | "opts">, level: Level = ""): Partial<ConsumerConfig> {
  const type = rc.jobType.type;
  return {
    durable_name: consumerNameAt(type, level),
    description: "jobwire workers of " + type,
    filter_subject: queueSubjectAt(type, level),
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(rc.opts.ackWaitMs),
    max_deliver: -1, // the worker counts attempts itself: the server never parks a job on its own
    max_ack_pending: rc.opts.maxInFlight,
  };
}

/** How long one pull waits on the server when no level has a job. A pause stops the next pull at once. */
export const fetchWaitMs = 1000;
/** A level other than normal found empty is not asked again for this long outside fair rounds. */
export const probeEveryMs = 100;
/** Of every fairEvery rounds, one takes normal jobs first and one takes low jobs first. */
const fairEvery = 10;

/** The order of the levels (indexes into `priorities`: high, normal, low) in round n, and whether it is a fair round. */
export function fetchOrder(n: number): { order: number[]; fair: boolean } {
  switch (n % fairEvery) {
    case fairEvery / 2 - 1:
      return { order: [1, 0, 2], fair: true }; // normal first
    case fairEvery - 1:
      return { order: [2, 0, 1], fair: true }; // low first
  }
  return { order: [0, 1, 2], fair: false };
}

/** How the free slots are shared when waiting on every level: one each for high and low, the rest normal. */
export function waitShares(free: number): number[] {
  const shares = [0, free, 0];
  for (const i of [0, 2]) {
    if (shares[1]! > 1) {
      shares[i] = 1;
      shares[1]!--;
    }
  }
  return shares;
}

/** One level's consumer as this worker sees it. */
interface LevelState {
  level: Level;
  consumer: string;
  /** When this worker last found the level empty (ms). */
  emptyAt: number;
}

export type BaseRunnerContext = Omit<RunnerContext, "control" | "fetching">;

/** Runs the jobs of one type, never holding more messages than it has free slots. */
export class Runner {
  readonly rc: RunnerContext;
  private running = new Set<Promise<void>>();
  private stopping = false;
  private readonly stopFetch = new AbortController();
  private loop: Promise<void> | undefined;
  private slotFreed: (() => void) | undefined;
  private levels: LevelState[] = [];
  private round = 0;

  constructor(base: BaseRunnerContext) {
    this.rc = { ...base, control: new Control(base.jobType.type, base.log), fetching: this.stopFetch.signal };
  }

  /** Creates or updates the three consumers, loads the control entry and starts fetching. */
  async start(kv: KV): Promise<void> {
    const { jsm } = this.rc;
    for (const level of priorities) {
      const config = consumerConfig(this.rc, level);
      try {
        await jsm.consumers.add(streams.jobs, config);
      } catch {
        await jsm.consumers.update(streams.jobs, config.durable_name!, config);
      }
      this.levels.push({ level, consumer: config.durable_name!, emptyAt: 0 });
    }
    await this.rc.control.watch(kv);
    this.loop = this.fetchLoop();
    this.rc.log.info("serving job type", { job_type: this.rc.jobType.type, consumer: consumerNameAt(this.rc.jobType.type, ""), concurrency: this.rc.opts.concurrency });
  }

  /** Stops fetching and waits for the fetch loop; running jobs go on. */
  async stopFetching(): Promise<void> {
    this.stopping = true;
    this.stopFetch.abort();
    this.slotFreed?.();
    await this.loop;
    this.rc.control.stop();
  }

  /** Resolves when every job in hand has settled. */
  async idle(): Promise<void> {
    while (this.running.size) await Promise.all([...this.running]);
  }

  /** Asks for exactly as many jobs as there are free slots, and for none while the type is paused. */
  private async fetchLoop(): Promise<void> {
    while (!this.stopping) {
      if (!(await this.rc.control.waitRunning(this.rc.fetching))) break;
      const free = await this.freeSlots();
      if (this.stopping) break;
      if (this.rc.control.current().entry.paused) continue; // paused while waiting for a slot
      const got = await this.fetchWaiting(free);
      if (got === 0) await this.waitForJobs(free);
    }
  }

  /** Waits for a free slot, then returns how many are free. */
  private async freeSlots(): Promise<number> {
    for (;;) {
      const free = this.rc.opts.concurrency - this.running.size;
      if (free > 0 || this.stopping) return free;
      await new Promise<void>((r) => (this.slotFreed = r));
    }
  }

  /** Fills up to free slots with the jobs waiting now, level by level in this round's order; returns how many it took. */
  private async fetchWaiting(free: number): Promise<number> {
    const { order, fair } = fetchOrder(this.round++);
    const now = Date.now();
    let got = 0;
    for (const i of order) {
      const l = this.levels[i]!;
      if (got === free || this.stopping) break;
      if (l.level !== "" && !fair && now - l.emptyAt < probeEveryMs) continue;
      const n = await this.fetch(l, free - got, { noWait: true });
      if (n === 0) l.emptyAt = now;
      got += n;
    }
    return got;
  }

  /** Waits up to fetchWaitMs for jobs on every level at once, the free slots shared among them. */
  private async waitForJobs(free: number): Promise<number> {
    const shares = waitShares(free);
    const got = await Promise.all(shares.map((n, i) => (n > 0 ? this.fetch(this.levels[i]!, n, { expiresMs: fetchWaitMs }) : 0)));
    return got.reduce((a, b) => a + b, 0);
  }

  /** Pulls up to n jobs from a level, dispatching each as it arrives; returns how many it dispatched. */
  private async fetch(l: LevelState, n: number, wait: PullWait): Promise<number> {
    const { got, error } = await pull(this.rc.nc, streams.jobs, l.consumer, n, wait, (d) => this.dispatch(d), this.rc.fetching);
    if (error && !this.stopping) {
      this.rc.log.warn("fetch jobs", { job_type: this.rc.jobType.type, priority: l.level || "normal", err: error });
      const stop = untilAborted(this.rc.fetching);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([new Promise((r) => (timer = setTimeout(r, 250))), stop.promise]);
      clearTimeout(timer);
      stop.cancel();
    }
    return got;
  }

  private dispatch(msg: Delivery) {
    const job = this.process(msg)
      .catch((err) => this.rc.log.error("job", { err }))
      .finally(() => {
        this.running.delete(job);
        this.slotFreed?.();
        this.slotFreed = undefined;
      });
    this.running.add(job);
  }

  /** One delivery: claim it, run the handler, settle the message. */
  private async process(msg: Delivery): Promise<void> {
    const a = await claim(this.rc, msg);
    if (!a) return;
    try {
      const out = await runHandler(a);
      this.rc.untrack(a);
      await settle(a, out);
    } finally {
      a.endSpan();
    }
  }
}
