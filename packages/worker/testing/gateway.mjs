// The gateway HTTP API as the tests use it (a user, a token, polling for states and registrations).
import { waitFor } from "@jobwire/testkit";

/** A client of one `jobwire dev` for one user (an operator with `{ operator: true }`). */
export async function apiFor(dev, user, { operator = false } = {}) {
  const token = await dev.token(user, { operator });
  const call = async (method, path, body) => {
    const res = await fetch(dev.url + path, {
      method,
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  return {
    call,
    /** POST /v1/jobs; `more` adds fields such as priority. */
    submit: (type, input, more = {}) => call("POST", "/v1/jobs", { type, input, ...more }),
    /** GET /v1/jobs/{id}/history: the job's events in order. */
    history: async (id) => (await call("GET", `/v1/jobs/${id}/history`)).body.events,
    job: async (id) => (await call("GET", `/v1/jobs/${id}`)).body,
    /** Waits until the job's state satisfies cond, and returns it. */
    awaitJob: (id, cond, what = "the job") => waitFor(what, async () => {
      const st = (await call("GET", `/v1/jobs/${id}`)).body;
      return cond(st) && st;
    }, { everyMs: 25 }),
    /** Waits until `type` is registered with `online` workers (true: at least one, false: none). */
    awaitType: (type, online = true) => waitFor(`${type} ${online ? "online" : "offline"}`, async () => {
      const { body } = await call("GET", "/v1/job-types");
      const jt = body.jobTypes.find((t) => t.name === type);
      return jt && (jt.workers?.length ?? 0) > 0 === online && jt;
    }),
  };
}

export const terminal = (st) => ["completed", "failed", "cancelled"].includes(st?.state);
