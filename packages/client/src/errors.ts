// JobwireError: every refusal of the gateway, {"error":{"code","message"}} with its HTTP status.

/** An error answer of the gateway, or a request that never got one (status 0, code "network"). */
export class JobwireError extends Error {
  override name = "JobwireError";
  /** The HTTP status; 0 when the server could not be reached. */
  readonly status: number;
  /** The stable code of the answer (e.g. job_not_found, too_many_streams); "network" for status 0. */
  readonly code: string;
  /** Seconds the server asked to wait (Retry-After), when it said. */
  readonly retryAfter: number | undefined;

  constructor(status: number, code: string, message: string, retryAfter?: number) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** retryAfterSeconds reads a Retry-After header given in seconds (jobwire never sends a date). */
export function retryAfterSeconds(headers: Headers): number | undefined {
  const v = headers.get("Retry-After");
  if (v === null || !/^\d+$/.test(v.trim())) return undefined;
  return Number(v.trim());
}

/** errorFromResponse reads a non-2xx answer as a JobwireError (consuming its body). */
export async function errorFromResponse(res: Response): Promise<JobwireError> {
  let code = `http_${res.status}`;
  let message = `the server answered ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body?.error?.code === "string") code = body.error.code;
    if (typeof body?.error?.message === "string") message = body.error.message;
  } catch {
    // not JSON: described by the status
  }
  return new JobwireError(res.status, code, message, retryAfterSeconds(res.headers));
}
