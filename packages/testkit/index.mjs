// The packages' shared test kit: a real `jobwire dev` (embedded NATS, gateway, projector, the built-in
// worker) as its own OS process on free loopback ports, with its data in a temporary directory.
//
// The binary is $JOBWIRE_BIN when set (scripts/test builds it once); otherwise it is built from this
// repository with `go build` into the system's temp dir, once per test process.
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The repository's root (this file is packages/testkit/index.mjs). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The HS256 secret every dev server of the kit signs with, so tests can make tokens for any user. */
export const secret = "jobwire-js-tests-secret-0123456789abcdef";

let built;

/** jobwireBinary returns the path of the jobwire binary, building it the first time if needed. */
export function jobwireBinary() {
  if (process.env.JOBWIRE_BIN) return Promise.resolve(process.env.JOBWIRE_BIN);
  built ??= (async () => {
    const out = join(tmpdir(), `jobwire-js-tests-${process.pid}`, process.platform === "win32" ? "jobwire.exe" : "jobwire");
    await run("go", ["build", "-o", out, "./cmd/jobwire"], { cwd: join(repoRoot, "services") });
    return out;
  })();
  return built;
}

/** freePort returns a TCP port free on 127.0.0.1 at the time of the call. */
export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

/**
 * waitFor calls check every `everyMs` until it returns a truthy value (returned) or `timeoutMs` passes
 * (then it throws, naming what was awaited and the last error).
 */
export async function waitFor(what, check, { timeoutMs = 30_000, everyMs = 20 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * A running `jobwire dev`.
 * @typedef {object} Dev
 * @property {string} url       the gateway's base URL (http://127.0.0.1:<port>)
 * @property {string} natsUrl   the embedded NATS server's URL, for workers
 * @property {string} dataDir   its data directory
 * @property {(user: string, opts?: {ttl?: string, scope?: string, job?: string, operator?: boolean}) => Promise<string>} token
 *   a token for user (an operator's with operator), signed by `jobwire token` with the dev server's secret
 * @property {() => string} output  everything it printed so far (stdout and stderr)
 * @property {() => Promise<void>} stop  SIGTERM, then wait for it to exit (SIGKILL after 20 s)
 * @property {() => Promise<void>} kill  SIGKILL, and wait
 */

/**
 * startDev starts `jobwire dev` and resolves when its gateway is ready (GET /readyz answers 200).
 * `env` adds to or overrides its environment (e.g. JOBWIRE_SSE_MAX_PER_USER). Pass the test context
 * (node:test's `t`) to stop it and remove its data when the test ends.
 * @returns {Promise<Dev>}
 */
export async function startDev({ env = {}, t } = {}) {
  const bin = await jobwireBinary();
  const dataDir = await mkdtemp(join(tmpdir(), "jobwire-dev-"));
  const [http, nats, monitor, metrics] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const fullEnv = {
    ...process.env,
    JOBWIRE_DATA_DIR: dataDir,
    JOBWIRE_HTTP_ADDR: `127.0.0.1:${http}`,
    JOBWIRE_NATS_PORT: String(nats),
    JOBWIRE_NATS_MONITOR_ADDR: `127.0.0.1:${monitor}`,
    JOBWIRE_METRICS_ADDR: `127.0.0.1:${metrics}`,
    JOBWIRE_JWT_SECRET: secret,
    ...env,
  };
  const proc = startProcess(bin, ["dev"], { env: fullEnv, killAfterMs: 20_000 });
  const url = `http://127.0.0.1:${http}`;
  const dev = {
    url,
    natsUrl: `nats://127.0.0.1:${nats}`,
    dataDir,
    output: proc.output,
    token: async (user, { ttl = "1h", scope, job, operator } = {}) => {
      const args = ["token", "--user", user, "--ttl", ttl];
      if (scope) args.push("--scope", scope);
      if (job) args.push("--job", job);
      if (operator) args.push("--operator");
      const { stdout } = await run(bin, args, { env: fullEnv });
      return stdout.trim();
    },
    stop: async () => void (await proc.stop()),
    kill: async () => void (await proc.kill()),
  };
  t?.after(async () => {
    await dev.stop();
    await rm(dataDir, { recursive: true, force: true });
  });
  try {
    await waitFor("jobwire dev to be ready", async () => {
      if (proc.ended()) throw new Error(`jobwire dev exited:\n${proc.output()}`);
      return (await fetch(`${url}/readyz`)).ok;
    }, { timeoutMs: 60_000, everyMs: 50 });
  } catch (err) {
    await dev.kill();
    throw err;
  }
  return dev;
}

/**
 * startProcess starts a command (e.g. a worker) as its own OS process and keeps what it prints.
 * stop() sends SIGTERM, then SIGKILL after killAfterMs (10 s); pass the test context to stop it when
 * the test ends.
 */
export function startProcess(cmd, args, { env = {}, cwd, t, killAfterMs = 10_000 } = {}) {
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  let ended = false;
  const exited = new Promise((ok) => child.once("exit", (code, signal) => ok({ code, signal })));
  exited.then(() => (ended = true));
  const proc = {
    child,
    exited,
    ended: () => ended,
    output: () => out,
    stop: async () => {
      if (!ended) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
    kill: async () => {
      if (!ended) child.kill("SIGKILL");
      return exited;
    },
  };
  t?.after(() => proc.stop());
  return proc;
}
