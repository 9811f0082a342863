/** This worker's entries in the JOB_TYPES bucket (docs/protocol.md §7). */
import type { JetStreamClient } from "@nats-io/jetstream";
import { headers } from "@nats-io/nats-core";
import { formatDuration } from "./duration.js";
import type { JobType } from "./jobtype.js";
import type { Logger } from "./log.js";
import { rfc3339 } from "./messages.js";
import { kvSubject } from "./names.js";
import type { ResolvedTypeOptions } from "./options.js";
import { isWrongLastSequence } from "./retry.js";

/** Names this implementation of the protocol in worker entries. */
export const SDK = "typescript";

export interface Served {
  jobType: JobType;
  opts: ResolvedTypeOptions;
}

/**
 * Registers each type (its schema version, created once, and its registration, last writer wins) and
 * keeps one worker entry per type, written with a per-message TTL and renewed at a third of it;
 * stop() purges them at once. A worker that dies stops renewing, and its entries expire.
 */
export class Presence {
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = rfc3339(new Date());

  constructor(
    private readonly js: JetStreamClient,
    private readonly worker: { id: string; name: string; ttlMs: number; log: Logger },
    private readonly served: Served[],
  ) {}

  /** The renewal under way, if any. */
  private renewing: Promise<void> = Promise.resolve();

  async start(): Promise<void> {
    for (const s of this.served) await this.register(s);
    await this.renew();
    this.timer = setInterval(() => {
      this.renewing = this.renew().catch((err) => this.worker.log.warn("renew worker entries", { err }));
    }, this.worker.ttlMs / 3);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.renewing; // a renewal still under way must not write an entry after its purge (as the Go SDK waits for its loop)
    for (const { jobType } of this.served) {
      const h = headers();
      h.set("KV-Operation", "PURGE");
      h.set("Nats-Rollup", "sub");
      try {
        await this.js.publish(kvSubject(`worker.${jobType.type}.${this.worker.id}`), "", { headers: h, ttl: "1m" });
      } catch (err) {
        this.worker.log.warn("remove worker entry", { type: jobType.type, err });
      }
    }
  }

  private async register({ jobType: t, opts }: Served) {
    try {
      await this.js.publish(kvSubject(`schema.${t.type}.${t.schemaHash}`), t.schemaDocument, { expect: { lastSubjectSequence: 0 } });
    } catch (err) {
      if (!isWrongLastSequence(err)) throw new Error(`register ${t.type}: store schema: ${(err as Error).message}`);
    }
    const entry = {
      v: 1, name: t.type, description: t.description || undefined, schema: JSON.parse(t.schemaDocument), schemaHash: t.schemaHash,
      nameField: t.nameField || undefined,
      options: {
        maxInFlight: opts.maxInFlight, maxAttempts: opts.maxAttempts, timeout: formatDuration(opts.timeoutMs), ackWait: formatDuration(opts.ackWaitMs),
        backoffBase: formatDuration(opts.backoffBaseMs), backoffMax: formatDuration(opts.backoffMaxMs),
      },
      registeredAt: rfc3339(new Date()), registeredBy: this.worker.name,
    };
    await this.js.publish(kvSubject(`type.${t.type}`), JSON.stringify(entry));
  }

  private async renew() {
    for (const { jobType: t, opts } of this.served) {
      const entry = { v: 1, id: this.worker.id, type: t.type, name: this.worker.name, schemaHash: t.schemaHash, concurrency: opts.concurrency, sdk: SDK, startedAt: this.startedAt };
      await this.js.publish(kvSubject(`worker.${t.type}.${this.worker.id}`), JSON.stringify(entry), { ttl: formatTtl(this.worker.ttlMs), timeout: this.worker.ttlMs / 3 });
    }
  }
}

/** A Nats-TTL value in whole seconds (at least 1). */
function formatTtl(ms: number): string {
  return `${Math.max(1, Math.round(ms / 1000))}s`;
}
