/**
 * Pulling job messages from a level's consumer (docs/protocol.md §2, "Priorities"), with or without
 * waiting on the server.
 *
 * The Go SDK asks each level for what is waiting now with a `no_wait` pull (FetchNoWait). The nats.js
 * consumer API has no such fetch (its `expires` is at least 1 s), so this module makes the pull
 * request itself: a `$JS.API.CONSUMER.MSG.NEXT` request with `no_wait` (or `expires`) on an inbox of
 * its own, the messages it brings wrapped as Deliveries that ack by replying to their `$JS.ACK` subject.
 */
import type { Msg, MsgHdrs, NatsConnection } from "@nats-io/nats-core";
import { createInbox, nanos } from "@nats-io/nats-core";

/** A job message in hand: what the claim and settle need of a JetStream delivery. */
export interface Delivery {
  readonly subject: string;
  readonly data: Uint8Array;
  /** The message's headers (a trace context's `traceparent`, for one); undefined when it has none. */
  readonly headers: MsgHdrs | undefined;
  /** From the `$JS.ACK` reply subject; undefined when the message has none (it then cannot be named). */
  readonly info: DeliveryInfo | undefined;
  ack(): void;
  /** Hands the message back, to be redelivered after delayMs (at once when 0 or absent). */
  nak(delayMs?: number): void;
  /** Renews the lease (`+WPI`). */
  working(): void;
  term(): void;
}

export interface DeliveryInfo {
  stream: string;
  consumer: string;
  /** How often the server delivered the message, this delivery included. */
  deliveryCount: number;
  streamSequence: number;
  /** When JetStream stored the message, in ms since the epoch (the ack subject's timestamp). */
  storedAtMs: number;
}

/**
 * Parses a `$JS.ACK` subject: `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`, or
 * the form with a domain and account hash after `$JS.ACK` (12 tokens).
 */
export function parseAckSubject(reply: string | undefined): DeliveryInfo | undefined {
  const t = (reply ?? "").split(".");
  if (t[0] !== "$JS" || t[1] !== "ACK") return undefined;
  const at = t.length === 9 ? 2 : t.length >= 11 ? 4 : -1;
  if (at < 0) return undefined;
  const deliveryCount = Number(t[at + 2]);
  const streamSequence = Number(t[at + 3]);
  if (!Number.isSafeInteger(deliveryCount) || !Number.isSafeInteger(streamSequence) || streamSequence < 1) return undefined;
  const ts = t[at + 5] ?? "";
  const storedAtMs = /^[0-9]{1,20}$/.test(ts) ? Number(BigInt(ts) / 1_000_000n) : 0;
  return { stream: t[at]!, consumer: t[at + 1]!, deliveryCount, streamSequence, storedAtMs };
}

const enc = new TextEncoder();

/** A pulled message, acked by replying to it once (lease renewals excepted). */
class PulledDelivery implements Delivery {
  readonly info: DeliveryInfo | undefined;
  private settled = false;

  constructor(private readonly msg: Msg) {
    this.info = parseAckSubject(msg.reply);
  }

  get subject() {
    return this.msg.subject;
  }

  get data() {
    return this.msg.data;
  }

  get headers() {
    return this.msg.headers;
  }

  ack() {
    this.reply("+ACK", true);
  }

  nak(delayMs?: number) {
    this.reply(delayMs && delayMs > 0 ? `-NAK ${JSON.stringify({ delay: nanos(delayMs) })}` : "-NAK", true);
  }

  working() {
    this.reply("+WPI", false);
  }

  term() {
    this.reply("+TERM", true);
  }

  private reply(payload: string, settles: boolean) {
    if (this.settled || !this.msg.reply) return;
    this.settled = settles;
    this.msg.respond(enc.encode(payload));
  }
}

/** How a pull waits: not at all (`no_wait`: what is waiting now), or up to expiresMs on the server. */
export type PullWait = { noWait: true } | { expiresMs: number };

/** What one pull came to: how many messages it handed on, and the error that ended it, if any. */
export interface PullResult {
  got: number;
  error?: Error;
}

/**
 * Asks the consumer for up to n messages, handing each to onMsg as it arrives, and resolves when the
 * pull ends: n messages, the server's end of the request (404 no messages, 408 request timeout), an
 * error status, or a second past its expiry with no answer. When `stopped` aborts, it ends at once and
 * unsubscribes, as the Go SDK's cancelled fetch: the server drops a pull request nobody listens to, so
 * a job handed back on shutdown goes to another worker, not to this one's last pull.
 */
export function pull(nc: NatsConnection, stream: string, consumer: string, n: number, wait: PullWait, onMsg: (d: Delivery) => void, stopped: AbortSignal): Promise<PullResult> {
  if (stopped.aborted) return Promise.resolve({ got: 0 });
  const inbox = createInbox((nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix);
  let got = 0;
  let resolve!: (r: PullResult) => void;
  const done = new Promise<PullResult>((r) => (resolve = r));
  let ended = false;
  const onStop = () => end();
  const end = (error?: Error) => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    stopped.removeEventListener("abort", onStop);
    sub.unsubscribe();
    resolve({ got, error });
  };
  const sub = nc.subscribe(inbox, {
    callback: (err, m) => {
      if (err) return end(err);
      if (ended) return;
      const h = m.headers;
      if (m.data.length === 0 && h && h.code > 0) {
        if (h.code === 100) return; // a heartbeat or flow control: none is asked for
        if (h.code === 404 || h.code === 408) return end(); // nothing (more) waiting, or the pull expired
        return end(new Error(`pull from ${consumer}: ${h.code} ${h.description}`));
      }
      got++;
      onMsg(new PulledDelivery(m));
      if (got >= n) end();
    },
  });
  const expiresMs = "expiresMs" in wait ? wait.expiresMs : 0;
  const timer = setTimeout(() => end(), expiresMs + 1000);
  stopped.addEventListener("abort", onStop, { once: true });
  const req = "noWait" in wait ? { batch: n, no_wait: true } : { batch: n, expires: nanos(expiresMs) };
  nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`, JSON.stringify(req), { reply: inbox });
  return done;
}
