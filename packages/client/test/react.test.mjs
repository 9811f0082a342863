// The React hooks, rendered in Node by react-test-renderer (effects and subscriptions really run)
// against a real `jobwire dev`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createElement as h } from "react";
import { act, create } from "react-test-renderer";
import { startDev, waitFor } from "@jobwire/testkit";
import { JobwireClient } from "@jobwire/client";
import { JobwireProvider, useJob, useJobs } from "@jobwire/client/react";

globalThis.IS_REACT_ACT_ENVIRONMENT = false; // updates come from the network, outside act

const csv = (name, n) => ({
  name,
  format: "csv",
  content: "artist,title\n" + Array.from({ length: n }, (_, i) => `${name} artist ${i},${name} song ${i}\n`).join(""),
});

/** tracked is a fetch that remembers each stream request's signal, to see streams close. */
const tracked = () => {
  const streams = [];
  const f = (input, init) => {
    if (String(input).includes("/events")) streams.push({ url: String(input), signal: init.signal });
    return fetch(input, init);
  };
  return { streams, fetch: f };
};

test("useJobs and useJob under a provider, and useJob with a client", async (t) => {
  const dev = await startDev({ t, env: { JOBWIRE_IMPORT_TRACK_DELAY: "10ms" } });
  const net = tracked();
  const client = new JobwireClient({ baseUrl: dev.url, token: await dev.token("alice"), storage: null, fetch: net.fetch });

  const renders = { list: 0 };
  function List() {
    const { list, status } = useJobs();
    renders.list++;
    return h("ul", { "data-status": status.state }, list.map((j) => h("li", { key: j.id, "data-state": j.state }, `${j.name}:${j.progress.percent}`)));
  }
  function One({ id }) {
    const job = useJob(id);
    return h("p", null, job ? `${job.state} ${job.progress.percent}` : "unknown");
  }
  const { job: a } = await client.submit({ type: "playlist.import", input: csv("First", 20) });
  let root;
  await act(async () => {
    root = create(h(JobwireProvider, { client }, h(List), h(One, { id: a.id })));
  });
  const text = () => JSON.stringify(root.toJSON());
  await waitFor("First completed in the list and in useJob", () => text().includes("First:100") && text().includes("completed 100"));
  const { job: b } = await client.submit({ type: "playlist.import", input: csv("Second", 20) });
  await waitFor("Second in the list, live", () => text().includes("Second:100") && text().includes('"data-status":"live"'));
  const items = root.toJSON()[0].children;
  assert.equal(items.length, 2);
  assert.match(JSON.stringify(items[0]), /Second/, "newest first");
  assert.equal(net.streams.length, 1, "one stream for the whole tree");
  assert.ok(renders.list > 2, "re-rendered as states arrived");

  // useJob of a job the provider's stream has not got is asked for (GET) and shown.
  await act(async () => root.update(h(JobwireProvider, { client }, h(List), h(One, { id: b.id }))));
  await waitFor("useJob of the second job", () => text().includes("completed 100"));

  await act(async () => root.unmount());
  assert.ok(net.streams[0].signal.aborted, "unmounting the provider closed its stream");

  // With a client and no provider: useJob follows the job's own stream to its terminal state.
  const { job: c } = await client.submit({ type: "playlist.import", input: csv("Third", 30) });
  function Own() {
    const job = useJob(c.id, client);
    return h("p", null, job ? `${job.state} ${job.progress.percent}` : "unknown");
  }
  let own;
  await act(async () => {
    own = create(h(Own));
  });
  await waitFor("Third completed through its own stream", () => JSON.stringify(own.toJSON()).includes("completed 100"));
  assert.ok(net.streams.at(-1).url.includes(`/v1/jobs/${c.id}/events`));
  await act(async () => own.unmount());
  assert.ok(net.streams.at(-1).signal.aborted);
});
