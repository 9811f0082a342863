/** Job types: a name, an input JSON Schema and a typed handler. */
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import type { ValidateFunction } from "ajv";
import { Codes, PermanentError } from "./errors.js";
import { validJobType } from "./names.js";
import type { TypeOptions } from "./options.js";

/** One run (attempt) of a job, as its handler sees it. */
export interface Job<I> {
  /** The job's id (a ULID), the same across attempts: use it as the idempotency key of effects. */
  id: string;
  type: string;
  /** The owner token of the user who submitted it (a subject-safe form of the user id). */
  owner: string;
  /** The input, checked against the type's schema. */
  input: I;
  /** This run's number, from 1; a job re-run after a crash or a lost ack has a higher one. */
  attempt: number;
  /** The job's limit: the attempt that reaches it is the last. */
  maxAttempts: number;
  createdAt: Date;
  /** The job's display name (the value of the type's nameField in its input), "" when it has none. */
  name: string;
}

/** What a handler gets besides its job. */
export interface HandlerContext {
  /**
   * Reports how far the job has come; cheap to call often. Coalesced to at most one progress event per
   * interval (the first one an interval after the start); the latest value always reaches the log, at
   * the latest with the terminal event.
   */
  progress(p: { done: number; total: number; message?: string }): void;
  /** Aborted on cancel, timeout or stop; `signal.reason` is an {@link AbortReason} saying which. */
  signal: AbortSignal;
}

/**
 * Runs one attempt. Resolve with the result; throw to fail the attempt (retried with backoff until
 * maxAttempts), a {@link PermanentError} to fail at once, a {@link RetryAfterError} to retry later, a
 * {@link CancelledError} to end it cancelled. After a cancel, resolve promptly with the partial result:
 * the job ends cancelled and keeps it. Delivery is at least once: make effects idempotent.
 */
export type Handler<I, R> = (job: Job<I>, ctx: HandlerContext) => Promise<R> | R;

export interface JobTypeDefinition<I, R> {
  /** One to four dot-separated lower-case words (`email.send`). */
  type: string;
  /** Shown in GET /v1/job-types (at most 1000 bytes). */
  description?: string;
  /** The JSON Schema (draft 2020-12 unless `$schema` names another) every input must match; at most 64 KiB. */
  schema: object;
  /** A top-level input property whose string value names a job in listings. */
  nameField?: string;
  handler: Handler<I, R>;
  /** How the type runs; unset fields take the worker's defaults. */
  options?: TypeOptions;
}

/** A checked job type, ready for Worker.register. */
export interface JobType<I = unknown, R = unknown> {
  readonly type: string;
  readonly description: string;
  readonly nameField: string;
  /** The compact schema document, as stored in the registry. */
  readonly schemaDocument: string;
  /** The first 16 bytes of SHA-256 of schemaDocument, lower-case hex. */
  readonly schemaHash: string;
  readonly options: TypeOptions;
  readonly handler: Handler<I, R>;
  /** Checks an input, throwing a PermanentError `invalid_input` that names the JSON pointer. */
  checkInput(input: unknown): I;
}

const maxSchemaBytes = 64 * 1024;
const require = createRequire(import.meta.url);
const ajvFor = (doc: { $schema?: unknown }) => {
  const draft7 = typeof doc.$schema === "string" && /draft-0[67]/.test(doc.$schema);
  const mod = require(draft7 ? "ajv" : "ajv/dist/2020");
  const Ajv = mod.default ?? mod;
  return new Ajv({ allErrors: false, strict: false, loadSchema: undefined });
};

/** Defines a job type, checking its name and compiling its schema at once. */
export function defineJobType<I, R>(def: JobTypeDefinition<I, R>): JobType<I, R> {
  if (!validJobType(def.type)) {
    throw new Error(`job type ${JSON.stringify(def.type)}: want one to four dot-separated lower-case words (a-z, 0-9, _), e.g. "email.send"`);
  }
  if (typeof def.handler !== "function") throw new Error(`job type ${def.type}: no handler`);
  const schemaDocument = JSON.stringify(def.schema);
  if (Buffer.byteLength(schemaDocument) > maxSchemaBytes) throw new Error(`job type ${def.type}: schema over 64 KiB`);
  if ((def.description ?? "").length > 1000) throw new Error(`job type ${def.type}: description over 1000 bytes`);
  let validate: ValidateFunction;
  try {
    validate = ajvFor(def.schema).compile(def.schema);
  } catch (err) {
    throw new Error(`job type ${def.type}: invalid schema: ${(err as Error).message}`);
  }
  return {
    type: def.type,
    description: def.description ?? "",
    nameField: def.nameField ?? "",
    schemaDocument,
    schemaHash: createHash("sha256").update(schemaDocument).digest("hex").slice(0, 32),
    options: def.options ?? {},
    handler: def.handler,
    checkInput(input: unknown): I {
      if (!validate(input ?? null)) {
        const e = validate.errors?.[0];
        throw new PermanentError(`input ${e?.instancePath || "/"}: ${e?.message ?? "does not match the schema"}`, Codes.invalidInput);
      }
      return input as I;
    },
  };
}
