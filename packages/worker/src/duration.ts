/** Go's duration syntax (`2s`, `20ms`, `1h30m`), which the JOBWIRE_WORKER_* variables use. */

const unitMs: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/** Parses a Go duration into milliseconds; throws on anything else. */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === "0") return 0;
  let sign = 1;
  let i = 0;
  if (s[0] === "-" || s[0] === "+") {
    sign = s[0] === "-" ? -1 : 1;
    i = 1;
  }
  let total = 0;
  part.lastIndex = i;
  while (part.lastIndex < s.length) {
    const m = part.exec(s);
    if (!m) throw new Error(`not a duration: ${JSON.stringify(text)}`);
    total += Number(m[1]) * (unitMs[m[2]!] ?? 0);
  }
  if (part.lastIndex === i) throw new Error(`not a duration: ${JSON.stringify(text)}`);
  return sign * total;
}

/** Writes milliseconds as Go's time.Duration.String does (`30m0s`, `1s`, `100ms`), as the registry stores options. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return ms >= 1 ? `${trim(ms)}ms` : `${trim(ms * 1000)}µs`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  return (h ? `${h}h` : "") + (h || m ? `${m}m` : "") + `${trim(s)}s`;
}

function trim(n: number): string {
  return String(Number(n.toFixed(9)));
}
