/** The logger a Worker writes to. */

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** The default logger: one JSON object per line on stderr, like the Go SDK's slog JSON handler. */
export const jsonLogger: Logger = {
  info: (msg, fields) => write("INFO", msg, fields),
  warn: (msg, fields) => write("WARN", msg, fields),
  error: (msg, fields) => write("ERROR", msg, fields),
};

function write(level: string, msg: string, fields: Record<string, unknown> = {}) {
  const safe = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v instanceof Error ? v.message : v]));
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...safe }) + "\n");
}
