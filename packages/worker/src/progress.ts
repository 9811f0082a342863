/** Coalesced progress of one attempt (docs/protocol.md §3, "Progress"). */
import { newProgress, type Progress } from "./messages.js";

/**
 * Keeps the latest progress of an attempt and sends at most one progress event per interval, the first
 * one an interval after the start, without waiting for its ack. The latest value is read by the
 * terminal event, so a job that ends within the interval writes no progress event.
 */
export class ProgressEmitter {
  latest: Progress | undefined;
  private sent: Progress | undefined;
  private lastSend = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly intervalMs: number, private readonly send: (p: Progress) => void) {}

  report = ({ done, total, message }: { done: number; total: number; message?: string }): void => {
    if (this.stopped) return;
    this.latest = newProgress(done, total, message);
    const wait = this.intervalMs - (Date.now() - this.lastSend);
    if (wait > 0) {
      this.timer ??= setTimeout(() => this.flush(), wait);
      return;
    }
    this.sendLatest();
  };

  /** Ends reporting; what the handler reports afterwards is dropped. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private flush() {
    this.timer = undefined;
    if (!this.stopped && this.latest && this.latest !== this.sent) this.sendLatest();
  }

  private sendLatest() {
    this.lastSend = Date.now();
    this.sent = this.latest;
    this.send(this.latest!);
  }
}
