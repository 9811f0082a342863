/** Taking the jobs of one type from its durable consumer (docs/protocol.md §2). */
import { AckPolicy, type Consumer, type ConsumerConfig, type JsMsg } from "@nats-io/jetstream";
import { nanos } from "@nats-io/nats-core";
import type { RunnerContext } from "./attempt.js";
import { claim } from "./claim.js";
import { consumerName, queueSubject, streams } from "./names.js";
import { runHandler } from "./run.js";
import { settle } from "./settle.js";

/** The durable pull consumer every worker of the type shares: MaxAckPending is the type's cluster-wide cap. */
export function consumerConfig(rc: RunnerContext): Partial<ConsumerConfig> {
  const type = rc.jobType.type;
  return {
    durable_name: consumerName(type),
    description: "jobwire workers of " + type,
    filter_subject: queueSubject(type),
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(rc.opts.ackWaitMs),
    max_deliver: -1, // the worker counts attempts itself: the server never parks a job on its own
    max_ack_pending: rc.opts.maxInFlight,
  };
}

/** Runs the jobs of one type, never holding more messages than it has free slots. */
export class Runner {
  private running = new Set<Promise<void>>();
  private stopping = false;
  private loop: Promise<void> | undefined;
  private slotFreed: (() => void) | undefined;
  private fetchAbort: (() => void) | undefined;

  constructor(readonly rc: RunnerContext) {}

  /** Creates or updates the consumer and starts fetching. */
  async start(): Promise<void> {
    const { jsm, js } = this.rc;
    const config = consumerConfig(this.rc);
    try {
      await jsm.consumers.add(streams.jobs, config);
    } catch {
      await jsm.consumers.update(streams.jobs, config.durable_name!, config);
    }
    const consumer = await js.consumers.get(streams.jobs, config.durable_name!);
    this.loop = this.fetchLoop(consumer);
    this.rc.log.info("serving job type", { job_type: this.rc.jobType.type, consumer: config.durable_name, concurrency: this.rc.opts.concurrency });
  }

  /** Stops fetching and waits for the fetch loop; running jobs go on. */
  async stopFetching(): Promise<void> {
    this.stopping = true;
    this.fetchAbort?.();
    this.slotFreed?.();
    await this.loop;
  }

  /** Resolves when every job in hand has settled. */
  async idle(): Promise<void> {
    while (this.running.size) await Promise.all([...this.running]);
  }

  private async fetchLoop(consumer: Consumer): Promise<void> {
    while (!this.stopping) {
      const free = this.rc.opts.concurrency - this.running.size;
      if (free <= 0) {
        await new Promise<void>((r) => (this.slotFreed = r));
        continue;
      }
      try {
        const batch = await consumer.fetch({ max_messages: free, expires: 2000 });
        this.fetchAbort = () => batch.stop();
        for await (const msg of batch) {
          if (this.stopping) {
            msg.nak(); // fetched as the worker stopped: hand it back at once
            continue;
          }
          this.dispatch(msg);
        }
      } catch (err) {
        if (this.stopping) break;
        this.rc.log.warn("fetch jobs", { job_type: this.rc.jobType.type, err });
        await new Promise((r) => setTimeout(r, 250));
      } finally {
        this.fetchAbort = undefined;
      }
    }
  }

  private dispatch(msg: JsMsg) {
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
  private async process(msg: JsMsg): Promise<void> {
    const a = await claim(this.rc, msg);
    if (!a) return;
    const out = await runHandler(a);
    this.rc.untrack(a);
    await settle(a, out);
  }
}
