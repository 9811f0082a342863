// A small reader of text/event-stream bodies (the WHATWG format): the client reads streams over fetch,
// so it sees every HTTP status and header that EventSource hides.

/** One server-sent event. id is undefined when the event carried no id field. */
export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

/**
 * readEvents reads body to its end, calling onEvent for each event and onBytes for every chunk
 * (comments such as ": ping" included, so a caller can tell a quiet stream from a dead one).
 * Comments and retry fields are skipped; lines may end in LF, CRLF or CR.
 */
export async function readEvents(
  body: ReadableStream<Uint8Array>,
  onEvent: (ev: SseEvent) => void,
  onBytes: () => void,
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  let id: string | undefined;
  let event = "";
  let data: string[] = [];
  let seen = false;
  const line = (l: string) => {
    if (l === "") {
      if (seen) onEvent({ id, event: event || "message", data: data.join("\n") });
      id = undefined;
      event = "";
      data = [];
      seen = false;
      return;
    }
    if (l.startsWith(":")) return;
    const colon = l.indexOf(":");
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? "" : l.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") [id, seen] = [value, true];
    else if (field === "event") [event, seen] = [value, true];
    else if (field === "data") [seen] = [true, data.push(value)];
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      onBytes();
      buf += decoder.decode(value, { stream: true });
      for (;;) {
        const m = /\r\n|\r|\n/.exec(buf);
        if (!m) break;
        // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
        if (m[0] === "\r" && m.index === buf.length - 1) break;
        line(buf.slice(0, m.index));
        buf = buf.slice(m.index + m[0].length);
      }
    }
  } finally {
    reader.releaseLock();
  }
}
