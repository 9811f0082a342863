// jobwire's web page: import playlists and watch every job live.
//
// Plain JavaScript modules, no framework and no build step of its own: the client of the gateway (its
// requests, and the one stream with its resume, backoff and refusals) is @jobwire/client, bundled into
// /static/jobwire-client.js by that package's `npm run build`. The page talks only to its own origin:
//   POST   /v1/session            sign in: the gateway checks the token and keeps it in an HttpOnly cookie,
//   DELETE /v1/session            sign out: the gateway clears that cookie,
//   GET    /v1/jobs               the first page of jobs (newest first; also "am I signed in?"), then
//   GET    /v1/events             ONE stream per tab for all of the user's jobs (the client's watchJobs),
//   POST   /v1/jobs               start an import (with an Idempotency-Key),
//   POST   /v1/jobs/{id}/cancel   cancel a queued or running job,
//   GET    /v1/jobs/{id}/history  a job's events,
//   GET    /v1/library            the imported tracks, paged,
//   GET    /v1/session            who the cookie's token speaks for: an operator also gets the console,
//   GET    /v1/operator/events    the operators' console, ONE stream while its view is shown (watchConsole),
//   GET    /v1/dead-letters       and POST /v1/dead-letters/retry|purge: the console's dead-letter list,
//   POST   /v1/job-types/{type}/pause|resume   the console's pause and resume buttons.
// Everything from the server is put into the page with textContent, never as HTML.
import { JobwireClient, JobsStore, POSITION_KEY, isTerminal } from '/static/jobwire-client.js';

(() => {
  const USER_KEY = 'jobwire.user'; // localStorage: the signed-in user's name, for display only
  const TOKEN_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
  const MAX_BODY = 1 << 20; // the gateway's default body limit
  const REFUSED = 'The server refused your token (it may have expired). Paste a new one to continue.';

  const $ = (sel, root = document) => root.querySelector(sel);
  const el = {
    status: $('#conn-status'), user: $('#user'), signout: $('#signout'), tabs: $('#tabs'),
    signin: $('#signin'), signinForm: $('#signin-form'), tokenInput: $('#token-input'), signinMsg: $('#signin-msg'),
    signinSubmit: $('#signin-submit'),
    app: $('#app'), viewJobs: $('#view-jobs'), viewLibrary: $('#view-library'),
    form: $('#import-form'), name: $('#name'), format: $('#format'), file: $('#file'), playlist: $('#playlist'),
    formatHint: $('#format-hint'), start: $('#start'), formMsg: $('#form-msg'),
    jobs: $('#jobs'), jobsCount: $('#jobs-count'), jobsEmpty: $('#jobs-empty'), jobsMsg: $('#jobs-msg'), jobsMore: $('#jobs-more'),
    library: $('#library tbody'), libraryCount: $('#library-count'), libraryEmpty: $('#library-empty'),
    libraryMsg: $('#library-msg'), libraryMore: $('#library-more'), libraryRefresh: $('#library-refresh'),
    dialog: $('#history-dialog'), historyTitle: $('#history-title'), history: $('#history tbody'),
    historyMsg: $('#history-msg'), historyClose: $('#history-close'),
    jobTemplate: $('#job-template'),
    tabConsole: $('#tab-console'), viewConsole: $('#view-console'), consoleStatus: $('#console-status'),
    consoleAt: $('#console-at'), consoleMsg: $('#console-msg'), consoleTypes: $('#console-types tbody'),
    consoleGateways: $('#console-gateways tbody'), gatewaysCount: $('#gateways-count'),
    dlq: $('#dead-letters tbody'), dlqCount: $('#dlq-count'), dlqMsg: $('#dlq-msg'), dlqEmpty: $('#dlq-empty'),
    dlqMore: $('#dlq-more'), purgeDialog: $('#purge-dialog'), purgeText: $('#purge-text'),
    purgeConfirm: $('#purge-confirm'), purgeCancel: $('#purge-cancel'),
  };

  // ---------------------------------------------------------------------------------------------
  // Token

  // The token lives in the jobwire_token cookie, which the gateway sets when the page signs in
  // (POST /v1/session, after verifying the token) and clears when it signs out (DELETE /v1/session).
  // fetch sends it to this origin by itself, for requests and the stream alike: no Authorization
  // header to keep, and no token in a URL (URLs end up in logs and history). The cookie is HttpOnly: no
  // script can read it, neither this page's nor one injected into it, so a cross-site scripting bug
  // cannot steal the token. SameSite=Strict keeps other sites from sending it, and the gateway refuses
  // a state-changing request with the cookie whose Origin is another site (CSRF); Secure keeps it off
  // plain http when the page is served over https; it lives as long as the token. The strict
  // Content-Security-Policy (no inline script, no other origin) still stands in front of all that.
  //
  // The page never keeps the token. It remembers only the user's name (the token's sub, decoded at
  // sign-in, for display), so whether this browser is signed in is known only by asking the server:
  // a 401 means no, or no longer.

  // tokenClaims decodes the token's payload for display only (the server verifies it).
  function tokenClaims(token) {
    try {
      const b64 = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)));
    } catch {
      return null;
    }
  }

  // takeTokenFromFragment reads #token=... from the URL and removes the fragment, so the token is
  // neither bookmarked nor left in the address bar.
  function takeTokenFromFragment() {
    if (!location.hash) return null;
    const token = new URLSearchParams(location.hash.slice(1)).get('token');
    if (token === null) return null;
    history.replaceState(null, '', location.pathname + location.search);
    return token.trim();
  }

  // ---------------------------------------------------------------------------------------------
  // Small helpers

  // The gateway's client: this origin (baseUrl ''), authenticated by the cookie (no token).
  const client = new JobwireClient();

  // api runs one call of the client and returns its answer. A 401 means the browser is no longer
  // signed in: the session ends in this tab (unless quiet401: the caller decides) and the
  // JobwireError (status, code, message) is thrown as for any other refusal; status 0 is "unreachable".
  async function api(call, { quiet401 = false } = {}) {
    try {
      return await call(client);
    } catch (e) {
      if (e.status === 401 && !quiet401) sessionLost();
      throw e;
    }
  }

  // uuid returns a random UUID; crypto.randomUUID needs a secure context (https or localhost).
  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function make(tag, text, className) {
    const n = document.createElement(tag);
    if (text !== undefined && text !== null) n.textContent = String(text);
    if (className) n.className = className;
    return n;
  }

  function setText(node, text) {
    text = text == null ? '' : String(text);
    if (node.textContent !== text) node.textContent = text;
  }

  function clock(iso, ms = false) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '';
    const s = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
    return ms ? s + '.' + String(d.getMilliseconds()).padStart(3, '0') : s;
  }

  function dayAndClock(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '';
    const today = new Date().toDateString() === d.toDateString();
    return today ? clock(iso) : d.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ' + clock(iso);
  }

  function seconds(ms) {
    return ms < 10000 ? (ms / 1000).toFixed(1) + ' s' : Math.round(ms / 1000) + ' s';
  }

  function duration(sec) {
    if (!sec) return '';
    const m = Math.floor(sec / 60);
    const s = String(sec % 60).padStart(2, '0');
    return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}:${s}` : `${m}:${s}`;
  }

  function capitalize(s) {
    return s.charAt(0).toUpperCase() + s.slice(1);
  }

  function plural(n, one, many) {
    return `${n} ${n === 1 ? one : many}`;
  }

  function storage(fn) {
    try {
      return fn(window.sessionStorage);
    } catch {
      return null; // storage disabled: resuming after a reload falls back to the snapshot
    }
  }

  // shared is localStorage, seen by every tab of this origin (as the cookie is).
  function shared(fn) {
    try {
      return fn(window.localStorage);
    } catch {
      return null; // storage disabled: the user's name is not shown
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Connection status

  const STATUS_TEXT = {
    connecting: 'Connecting…',
    live: 'Live',
    reconnecting: 'Reconnecting…',
    expired: 'Stream expired, reconnecting…',
    reset: 'Resynced',
    closed: 'Disconnected',
    offline: 'Offline',
    'signed-out': 'Signed out',
  };

  function setStatus(state, text) {
    el.status.dataset.state = state;
    setText(el.status, text || STATUS_TEXT[state]);
  }

  // ---------------------------------------------------------------------------------------------
  // Jobs: the local state, kept in step by the REST answers and the event stream

  // The jobs, kept by the client's JobsStore: a state only replaces an older one (revisions only
  // grow), a removed job stays removed. The stream feeds it, and so do the REST answers.
  const jobs = new JobsStore();
  jobs.subscribe(() => scheduleRender());
  const views = new Map(); // id -> <li>
  const cancelling = new Set();
  let jobsCursor = '';
  let renderPending = false;

  function upsert(st) {
    if (st && typeof st.id === 'string') jobs.put(st);
  }

  function clearJobs() {
    jobs.clear();
    cancelling.clear();
    jobsCursor = '';
    el.jobsMore.hidden = true;
    scheduleRender();
  }

  function scheduleRender() {
    if (renderPending) return;
    renderPending = true;
    // A timer rather than requestAnimationFrame: a tab in the background still keeps its list current.
    setTimeout(render, 0);
  }

  function render() {
    renderPending = false;
    const { list } = jobs.getSnapshot(); // newest first
    const ids = list.map((st) => st.id);
    for (const st of list) if (isTerminal(st.state)) cancelling.delete(st.id);
    for (const [id, li] of views) {
      if (!jobs.get(id)) {
        li.remove();
        views.delete(id);
      }
    }
    let prev = null;
    for (const id of ids) {
      let li = views.get(id);
      if (!li) {
        li = el.jobTemplate.content.firstElementChild.cloneNode(true);
        li.dataset.id = id;
        views.set(id, li);
      }
      const st = jobs.get(id);
      const key = `${st.revision}|${st.updatedAt}|${st.state}|${cancelling.has(id)}`;
      if (li.dataset.key !== key) {
        li.dataset.key = key;
        updateJob(li, st);
      }
      const want = prev ? prev.nextSibling : el.jobs.firstChild;
      if (want !== li) el.jobs.insertBefore(li, want);
      prev = li;
    }
    const running = list.filter((st) => !isTerminal(st.state)).length;
    setText(el.jobsCount, ids.length ? plural(ids.length, 'job', 'jobs') + (running ? ` · ${running} running` : '') : '');
    el.jobsEmpty.hidden = ids.length > 0;
    document.title = running ? `(${running}) jobwire` : 'jobwire';
  }

  function updateJob(li, st) {
    const p = st.progress || {};
    const percent = st.state === 'completed' ? 100 : Math.max(0, Math.min(100, Number(p.percent) || 0));
    const result = st.result && typeof st.result === 'object' ? st.result : null;

    li.dataset.state = st.state;
    setText($('.name', li), st.name || (st.type === 'playlist.import' ? 'Untitled playlist' : st.type));
    const state = $('.state', li);
    setText(state, st.state);
    state.dataset.state = st.state;

    const bar = $('.bar', li);
    if (bar.getAttribute('aria-valuenow') !== String(percent)) {
      bar.setAttribute('aria-valuenow', String(percent));
      $('.fill', bar).style.width = percent + '%'; // CSSOM, allowed by the CSP (no style attribute in markup)
    }
    bar.setAttribute('aria-valuetext', `${percent}%` + (p.message ? `, ${p.message}` : ''));
    bar.setAttribute('aria-label', `Progress of ${$('.name', li).textContent}`);

    setText($('.message', li), jobMessage(st, percent));
    renderCounts($('.counts', li), result);

    const err = $('.error', li);
    // A cancelled job's reason is already in its message; a failure's reason is shown on its own.
    const errText = st.state !== 'cancelled' && st.error && st.error.message ? st.error.message : '';
    setText(err, errText);
    err.hidden = !errText;

    renderInvalid($('.invalid', li), result);

    const when = $('.when', li);
    when.dateTime = st.createdAt || '';
    let whenText = st.createdAt ? 'Submitted ' + dayAndClock(st.createdAt) : '';
    if (st.startedAt && st.finishedAt) {
      whenText += ` · took ${seconds(new Date(st.finishedAt) - new Date(st.startedAt))}`;
    }
    if (st.attempt > 1) whenText += ` · attempt ${st.attempt}`;
    setText(when, whenText);

    const cancel = $('.cancel', li);
    cancel.hidden = isTerminal(st.state);
    cancel.disabled = cancelling.has(st.id);
    setText(cancel, cancelling.has(st.id) ? 'Cancelling…' : 'Cancel');
  }

  function jobMessage(st, percent) {
    const p = st.progress || {};
    switch (st.state) {
      case 'queued':
        if (st.runAt && new Date(st.runAt) > new Date()) return 'Scheduled for ' + dayAndClock(st.runAt);
        return st.attempt > 1 ? 'Waiting to retry' : 'Waiting for a worker';
      case 'active':
        return (p.message || 'Running') + ` · ${percent}%`;
      case 'completed':
        return 'Done';
      case 'cancelled':
        if (p.total) return `Cancelled at ${p.done} of ${p.total}`;
        return st.error && st.error.message ? capitalize(st.error.message) : 'Cancelled';
      case 'failed':
        return 'Failed';
    }
    return '';
  }

  const COUNTS = [
    ['added', 'added'],
    ['existing', 'already in library'],
    ['duplicates', 'duplicates'],
    ['invalid', 'invalid'],
  ];

  function renderCounts(node, result) {
    const key = result ? COUNTS.map(([k]) => Number(result[k]) || 0).join(',') : '';
    if (node.dataset.key === key) return;
    node.dataset.key = key;
    node.replaceChildren();
    if (!result) return;
    for (const [k, label] of COUNTS) {
      const n = Number(result[k]) || 0;
      if (n === 0 && k !== 'added') continue;
      const span = make('span', null, 'count');
      span.dataset.count = k;
      span.dataset.value = String(n);
      span.append(make('b', n), ' ' + label);
      node.append(span);
    }
  }

  function renderInvalid(details, result) {
    const lines = result && Array.isArray(result.invalidLines) ? result.invalidLines : [];
    const key = String(lines.length) + ':' + (result ? result.invalid : '');
    if (details.dataset.key === key) return;
    details.dataset.key = key;
    details.hidden = lines.length === 0;
    if (!lines.length) return;
    const total = Number(result.invalid) || lines.length;
    setText($('summary', details), `${plural(total, 'line', 'lines')} skipped` + (total > lines.length ? ` (first ${lines.length} shown)` : ''));
    const ul = $('ul', details);
    ul.replaceChildren(...lines.map((l) => {
      const li = make('li');
      li.append(make('span', `line ${l.line}`, 'line'), ' ', make('span', l.reason), ' ', make('code', l.text));
      return li;
    }));
  }

  async function loadJobs(more) {
    el.jobsMore.disabled = true;
    try {
      showJobList(await api((c) => c.list({ limit: 50, cursor: more ? jobsCursor : undefined })));
    } catch (e) {
      if (e.status !== 401) setText(el.jobsMsg, 'Could not load your jobs: ' + e.message);
    } finally {
      el.jobsMore.disabled = false;
      el.jobsMore.hidden = !jobsCursor;
      scheduleRender();
    }
  }

  // showJobList merges a page of GET /v1/jobs into the list.
  function showJobList(list) {
    for (const st of (list && list.jobs) || []) upsert(st);
    jobsCursor = (list && list.nextCursor) || '';
    setText(el.jobsMsg, '');
    el.jobsMore.hidden = !jobsCursor;
    scheduleRender();
  }

  async function cancelJob(id) {
    if (cancelling.has(id)) return;
    cancelling.add(id);
    scheduleRender();
    try {
      await api((c) => c.cancel(id));
      // The stream brings the cancelled state; the button says "Cancelling…" until then.
    } catch (e) {
      cancelling.delete(id);
      scheduleRender();
      if (e.code !== 'job_finished' && e.status !== 401) setText(el.jobsMsg, 'Could not cancel: ' + e.message);
    }
  }

  el.jobs.addEventListener('click', (ev) => {
    const button = ev.target.closest('button');
    const li = button && button.closest('.job');
    if (!li) return;
    if (button.classList.contains('cancel')) cancelJob(li.dataset.id);
    if (button.classList.contains('history')) showHistory(li.dataset.id);
  });
  el.jobsMore.addEventListener('click', () => loadJobs(true));

  // ---------------------------------------------------------------------------------------------
  // The event stream: one watch of all jobs per tab (the client's; it resumes from the position it
  // keeps in sessionStorage under POSITION_KEY, backs off on refusals and reconnects after expiry)

  const stream = { watch: null, live: false, expired: false, statusTimer: 0 };

  function openStream() {
    closeStream();
    const watch = jobs.watch(client, {
      onStatus: (st) => {
        if (stream.watch === watch) showStreamStatus(st);
      },
      onReset: () => {
        // The server cannot resume from our position: the store dropped every job; a snapshot follows.
        setStatus('reset');
        clearTimeout(stream.statusTimer);
        stream.statusTimer = setTimeout(() => {
          if (stream.watch === watch && stream.live) setStatus('live');
        }, 3000);
      },
      onError: (e) => console.warn('jobwire stream:', e.message),
    });
    stream.watch = watch;
  }

  function closeStream() {
    clearTimeout(stream.statusTimer);
    stream.live = false;
    if (stream.watch) {
      stream.watch.close();
      stream.watch = null;
    }
  }

  // showStreamStatus says in the header where the stream stands.
  function showStreamStatus(st) {
    stream.live = st.state === 'live';
    switch (st.state) {
      case 'connecting':
        if (!stream.expired) setStatus(st.attempt ? 'reconnecting' : 'connecting');
        return;
      case 'live':
        stream.expired = false;
        setStatus('live');
        return;
      case 'waiting': {
        stream.expired = st.reason === 'expired';
        const retry = `retrying in ${Math.max(1, Math.round(st.delayMs / 1000))} s`;
        if (st.reason === 'expired') setStatus('expired');
        else if (st.reason === 'dropped') setStatus('reconnecting');
        else if (st.reason === 'unreachable') setStatus('offline', `Server unreachable, ${retry}`);
        else if (st.error.status === 429 || st.error.code === 'server_busy') {
          setStatus('closed', `Live updates refused (too many open tabs, or the server is busy), ${retry}`);
        } else setStatus('closed', `Server error ${st.error.status}, ${retry}`);
        return;
      }
      case 'ended':
        stream.watch = null;
        if (st.reason === 'unauthorized') sessionLost();
        else if (st.reason === 'refused') setStatus('closed', 'Live updates refused: ' + st.error.message);
    }
  }

  window.addEventListener('online', () => {
    if (session.on && !stream.live) openStream(); // now, rather than at the end of a backoff
  });
  window.addEventListener('pagehide', () => {
    closeStream();
    closeConsole();
  });
  window.addEventListener('pageshow', (ev) => {
    if (!ev.persisted || !session.on) return; // restored from the back/forward cache:
    openStream();
    if (!el.viewConsole.hidden) openConsole();
  });

  // ---------------------------------------------------------------------------------------------
  // Importing

  const FORMAT_NAMES = { m3u: 'M3U', xspf: 'XSPF', csv: 'CSV', json: 'JSON' };
  const EXT_FORMATS = { m3u: 'm3u', m3u8: 'm3u', xspf: 'xspf', csv: 'csv', tsv: 'csv', json: 'json' };
  const CSV_ARTIST = new Set(['artist', 'artists', 'artistname', 'artistnames', 'creator', 'performer']);
  const CSV_TITLE = new Set(['title', 'track', 'trackname', 'tracktitle', 'song', 'songname', 'songtitle']);
  const MEDIA_EXT = /\.(mp3|flac|m4a|aac|ogg|oga|opus|wav|wma|aiff?|alac|ape|mp4|webm)$/i;

  let pickedName = ''; // the name of the picked file, for its extension
  let draftKey = null; // the Idempotency-Key of this form's content: kept until accepted or changed
  let submitting = false;

  function extFormat(filename) {
    const m = /\.([^./\\]+)$/.exec(filename || '');
    return m ? EXT_FORMATS[m[1].toLowerCase()] || '' : '';
  }

  // sniffFormat follows the server's rules (importer.DetectFormat) for pasted text.
  function sniffFormat(content) {
    const head = content.replace(/^\uFEFF/, '').trimStart().slice(0, 4096);
    if (!head) return '';
    if (head[0] === '[') return 'json';
    if (head[0] === '<') return head.includes('<playlist') ? 'xspf' : '';
    const first = head.split(/\r?\n/, 1)[0].trim();
    if (/^#EXT(M3U|INF:)/i.test(first)) return 'm3u';
    const delim = [',', ';', '\t'].sort((a, b) => first.split(b).length - first.split(a).length)[0];
    const cells = first.split(delim).map((c) => c.toLowerCase().replace(/[^a-z0-9]/g, ''));
    if (cells.some((c) => CSV_ARTIST.has(c)) && cells.some((c) => CSV_TITLE.has(c))) return 'csv';
    const entry = head.split(/\r?\n/).map((l) => l.trim()).find((l) => l && l[0] !== '#');
    if (entry && (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry) || /[/\\]/.test(entry) || MEDIA_EXT.test(entry))) return 'm3u';
    return '';
  }

  // chosenFormat returns the format to send and how it was chosen.
  function chosenFormat() {
    if (el.format.value !== 'auto') return { format: el.format.value, how: 'chosen' };
    const byExt = extFormat(pickedName);
    if (byExt) return { format: byExt, how: 'from the file name' };
    return { format: sniffFormat(el.playlist.value), how: 'detected' };
  }

  function updateHint() {
    if (!el.playlist.value.trim()) {
      setText(el.formatHint, pickedName ? '' : 'Format is detected from the file name or the content.');
      return;
    }
    const { format, how } = chosenFormat();
    const lines = el.playlist.value.split('\n').filter((l) => l.trim()).length;
    const size = `${plural(lines, 'line', 'lines')}`;
    setText(el.formatHint, format ? `${FORMAT_NAMES[format]} (${how}) · ${size}` : `Format not recognised: choose one · ${size}`);
    el.formatHint.dataset.format = format;
  }

  el.form.addEventListener('input', (ev) => {
    draftKey = null; // different content is a different import
    if (ev.target === el.playlist && !el.playlist.value) pickedName = '';
    setText(el.formMsg, '');
    updateHint();
  });

  el.file.addEventListener('change', async () => {
    const f = el.file.files && el.file.files[0];
    if (!f) return;
    draftKey = null;
    if (f.size > MAX_BODY) {
      setText(el.formMsg, `${f.name} is too large (${Math.ceil(f.size / 1024)} KiB; the limit is 1 MiB).`);
      el.file.value = '';
      return;
    }
    try {
      el.playlist.value = await f.text();
    } catch {
      setText(el.formMsg, `Could not read ${f.name}.`);
      return;
    }
    pickedName = f.name;
    if (!el.name.value.trim()) el.name.value = f.name.replace(/\.[^.]+$/, '');
    setText(el.formMsg, '');
    updateHint();
  });

  el.form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (submitting) return; // a double click sends one request; the Idempotency-Key covers retries
    const content = el.playlist.value;
    if (!content.trim()) {
      setText(el.formMsg, 'Paste a playlist or pick a file first.');
      return;
    }
    const { format } = chosenFormat();
    if (!format) {
      setText(el.formMsg, 'The format was not recognised: choose it in the Format list.');
      el.format.focus();
      return;
    }
    const name = el.name.value.trim() || pickedName.replace(/\.[^.]+$/, '') || 'Pasted playlist';
    const job = { type: 'playlist.import', input: { name, format, content } };
    if (new Blob([JSON.stringify(job)]).size > MAX_BODY) {
      setText(el.formMsg, 'This playlist is too large to send (the limit is 1 MiB).');
      return;
    }
    draftKey = draftKey || uuid();
    submitting = true;
    el.start.disabled = true;
    setText(el.start, 'Starting…');
    try {
      const { job: st } = await api((c) => c.submit(job, { idempotencyKey: draftKey }));
      upsert(st);
      el.form.reset();
      pickedName = '';
      draftKey = null;
      setText(el.formMsg, '');
      updateHint();
    } catch (e) {
      // The key stays: sending the same form again cannot start a second import.
      if (e.status !== 401) setText(el.formMsg, 'Could not start the import: ' + e.message);
    } finally {
      submitting = false;
      el.start.disabled = false;
      setText(el.start, 'Start import');
    }
  });

  // ---------------------------------------------------------------------------------------------
  // History

  let historyFor = '';

  async function showHistory(id) {
    historyFor = id;
    const st = jobs.get(id);
    setText(el.historyTitle, `History of ${st && st.name ? st.name : id}`);
    el.history.replaceChildren();
    setText(el.historyMsg, 'Loading…');
    if (!el.dialog.open) el.dialog.showModal();
    try {
      const h = await api((c) => c.history(id));
      if (historyFor !== id) return;
      setText(el.historyMsg, '');
      el.history.replaceChildren(...historyRows(h.events || []));
    } catch (e) {
      if (historyFor === id && e.status !== 401) setText(el.historyMsg, 'Could not load the history: ' + e.message);
    }
  }

  // historyRows shows one row per event, with each run of progress events folded into one row.
  function historyRows(events) {
    const rows = [];
    for (let i = 0; i < events.length; i++) {
      const ev = events[i];
      if (ev.type === 'job.progress') {
        let j = i;
        while (j + 1 < events.length && events[j + 1].type === 'job.progress') j++;
        const first = events[i].progress || {};
        const last = events[j].progress || {};
        const n = j - i + 1;
        const detail = n === 1 ? `${last.done} of ${last.total}` : `${n} updates, ${first.done} → ${last.done} of ${last.total}`;
        rows.push(historyRow(ev, events[j], detail));
        i = j;
        continue;
      }
      rows.push(historyRow(ev, ev, eventDetail(ev)));
    }
    return rows;
  }

  function historyRow(first, last, detail) {
    const tr = make('tr');
    tr.dataset.type = first.type;
    const seq = first === last ? String(first.seq) : `${first.seq}–${last.seq}`;
    tr.append(make('td', seq, 'num'), make('td', clock(first.at, true)), make('td', String(first.type).replace(/^job\./, ''), 'event'), make('td', detail));
    return tr;
  }

  function eventDetail(ev) {
    const parts = [];
    switch (ev.type) {
      case 'job.submitted':
        if (ev.name) parts.push(ev.name);
        if (ev.runAt) parts.push('runs at ' + dayAndClock(ev.runAt));
        break;
      case 'job.started':
        if (ev.worker) parts.push('worker ' + ev.worker);
        break;
      case 'job.completed':
      case 'job.cancelled':
        if (ev.result && typeof ev.result === 'object') {
          parts.push(COUNTS.filter(([k]) => k === 'added' || Number(ev.result[k]) > 0)
            .map(([k, label]) => `${Number(ev.result[k]) || 0} ${label}`).join(', '));
        }
        break;
      case 'job.failed':
        parts.push(ev.final ? 'final' : 'will retry' + (ev.retryAt ? ' at ' + clock(ev.retryAt) : ''));
        break;
    }
    if (ev.error && ev.error.message) parts.push(ev.error.message);
    if (ev.attempt > 1) parts.push('attempt ' + ev.attempt);
    return parts.join(' · ');
  }

  el.historyClose.addEventListener('click', () => el.dialog.close());
  el.dialog.addEventListener('close', () => {
    historyFor = '';
  });
  el.dialog.addEventListener('click', (ev) => {
    if (ev.target === el.dialog) el.dialog.close(); // a click on the backdrop
  });

  // ---------------------------------------------------------------------------------------------
  // Library

  const library = { cursor: '', count: 0, loading: false };

  async function loadLibrary(more) {
    if (library.loading) return;
    library.loading = true;
    el.libraryMore.disabled = true;
    try {
      const page = await api((c) => c.library({ limit: 100, cursor: more ? library.cursor : undefined }));
      if (!more) {
        el.library.replaceChildren();
        library.count = 0;
      }
      const rows = (page.tracks || []).map((t) => {
        const tr = make('tr');
        tr.dataset.key = t.key;
        tr.append(make('td', t.artist), make('td', t.title), make('td', t.album || ''), make('td', duration(t.durationSec), 'num'), make('td', dayAndClock(t.addedAt), 'muted'));
        return tr;
      });
      el.library.append(...rows);
      library.count += rows.length;
      library.cursor = page.nextCursor || '';
      setText(el.libraryMsg, '');
    } catch (e) {
      if (e.status !== 401) setText(el.libraryMsg, 'Could not load the library: ' + e.message);
    } finally {
      library.loading = false;
      el.libraryMore.disabled = false;
      el.libraryMore.hidden = !library.cursor;
      el.libraryEmpty.hidden = library.count > 0 || Boolean(el.libraryMsg.textContent);
      setText(el.libraryCount, library.count ? plural(library.count, 'track', 'tracks') + (library.cursor ? ' shown, more below' : '') : '');
    }
  }

  function resetLibrary() {
    el.library.replaceChildren();
    library.cursor = '';
    library.count = 0;
    el.libraryMore.hidden = true;
    el.libraryEmpty.hidden = true;
    setText(el.libraryCount, '');
    setText(el.libraryMsg, '');
  }

  el.libraryMore.addEventListener('click', () => loadLibrary(true));
  el.libraryRefresh.addEventListener('click', () => loadLibrary(false));

  // ---------------------------------------------------------------------------------------------
  // Operator console: for operators only (GET /v1/session says whether the cookie's token is one)
  //
  // While the Console view is shown the page holds ONE console stream (the client's watchConsole): the
  // gateway pushes a whole snapshot whenever a number changes, made once for every viewer, so nothing
  // here runs on a timer. The dead-letter list is read again when the snapshot's count of dead letters
  // changes, and after a retry or purge.

  const operator = {
    on: false, watch: null, pending: new Map(), // job type -> the paused state asked for
    dlqCursor: '', dlqTotal: -1, dlqLoading: false, dlqAgain: false, dlqRows: 0, purgeKey: '',
  };
  const TYPE_COUNTS = ['queued', 'scheduled', 'active', 'completed', 'failed', 'cancelled', 'deadLettered'];
  const TYPE_RATES = ['startedPerSec', 'finishedPerSec'];

  // loadOperator asks the gateway who the session is, and offers the console to an operator.
  async function loadOperator() {
    let who = null;
    try {
      who = await api((c) => c.session());
    } catch {
      return; // signed out (401: handled), or unreachable: no console this time
    }
    if (!session.on) return;
    if (who.user && who.user !== session.user) {
      session.user = who.user;
      setText(el.user, who.user);
      el.user.hidden = false;
    }
    setOperator(Boolean(who.operator));
  }

  function setOperator(on) {
    operator.on = on;
    el.tabConsole.hidden = !on;
    if (!on && !el.viewConsole.hidden) showView('jobs');
  }

  function openConsole() {
    if (operator.watch || !operator.on) return;
    setText(el.consoleMsg, '');
    const watch = client.watchConsole({
      onConsole: (snap) => {
        if (operator.watch === watch) renderConsole(snap);
      },
      onStatus: (st) => {
        if (operator.watch === watch) showConsoleStatus(st);
      },
      onError: (e) => console.warn('jobwire console:', e.message),
    });
    operator.watch = watch;
  }

  function closeConsole() {
    if (!operator.watch) return;
    operator.watch.close();
    operator.watch = null;
    operator.dlqTotal = -1; // read the list again when the console comes back
  }

  function showConsoleStatus(st) {
    const state = el.consoleStatus;
    switch (st.state) {
      case 'connecting':
        state.dataset.state = st.attempt ? 'reconnecting' : 'connecting';
        setText(state, st.attempt ? 'Reconnecting…' : 'Connecting…');
        return;
      case 'live':
        state.dataset.state = 'live';
        setText(state, 'Live');
        return;
      case 'waiting':
        state.dataset.state = st.reason === 'unreachable' || st.reason === 'refused' ? 'offline' : 'reconnecting';
        setText(state, `Reconnecting in ${Math.max(1, Math.round(st.delayMs / 1000))} s`);
        return;
      case 'ended':
        if (operator.watch) operator.watch = null;
        state.dataset.state = 'closed';
        setText(state, 'Disconnected');
        if (st.reason === 'unauthorized') sessionLost();
        else if (st.reason === 'refused') setText(el.consoleMsg, 'The console was refused: ' + st.error.message);
    }
  }

  function rate(n) {
    return Number(n || 0).toFixed(1);
  }

  function renderConsole(snap) {
    setText(el.consoleAt, snap.at ? 'as of ' + clock(snap.at) : '');
    renderTypes(snap.types || []);
    renderGateways(snap.gateways || []);
    if (snap.deadLetters !== operator.dlqTotal) {
      operator.dlqTotal = snap.deadLetters;
      loadDeadLetters(false);
    }
  }

  // keyedRows keeps one <tr> per key in tbody, in the order of items, made by build and filled by fill.
  function keyedRows(tbody, items, keyOf, build, fill) {
    const rows = new Map([...tbody.children].map((tr) => [tr.dataset.key, tr]));
    let prev = null;
    for (const item of items) {
      const key = keyOf(item);
      let tr = rows.get(key);
      if (!tr) {
        tr = build(key);
        tr.dataset.key = key;
      }
      rows.delete(key);
      fill(tr, item);
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== tr) tbody.insertBefore(tr, want);
      prev = tr;
    }
    for (const tr of rows.values()) tr.remove();
  }

  // cell returns the row's cell of field, made at its first use (so cells keep the order of the first
  // fill), with text (null: a cell of elements, left as it is).
  function cell(tr, field, text, className) {
    let td = $(`td[data-field="${field}"]`, tr);
    if (!td) {
      td = make('td', null, className);
      td.dataset.field = field;
      tr.append(td);
    }
    if (text !== null) setText(td, text);
    return td;
  }

  function renderTypes(types) {
    keyedRows(el.consoleTypes, types, (t) => t.type, () => make('tr'), (tr, t) => {
      tr.dataset.type = t.type;
      tr.dataset.paused = String(Boolean(t.paused));
      cell(tr, 'type', t.type, 'type');
      for (const f of TYPE_COUNTS) cell(tr, f, Number(t[f]) || 0, 'num').toggleAttribute('data-zero', !t[f]);
      for (const f of TYPE_RATES) cell(tr, f, rate(t[f]), 'num').toggleAttribute('data-zero', !t[f]);
      cell(tr, 'workersOnline', Number(t.workersOnline) || 0, 'num');
      const stateCell = cell(tr, 'state', null);
      let pill = $('.state', stateCell);
      if (!pill) stateCell.append((pill = make('span', null, 'state')));
      const state = t.paused ? 'paused' : t.workersOnline ? 'running' : 'offline';
      pill.dataset.state = state;
      setText(pill, t.paused ? 'paused' : t.workersOnline ? 'running' : 'no worker');
      if (t.rateLimit) pill.title = `at most ${t.rateLimit.limit} starts per ${t.rateLimit.interval}`;
      const actions = cell(tr, 'actions', null);
      let button = $('button', actions);
      if (!button) {
        button = make('button', null, 'pause');
        button.type = 'button';
        actions.append(make('span', null, 'actions'));
        actions.firstChild.append(button);
      }
      if (operator.pending.get(t.type) === Boolean(t.paused)) operator.pending.delete(t.type);
      const pending = operator.pending.has(t.type);
      button.dataset.action = t.paused ? 'resume' : 'pause';
      button.disabled = pending;
      setText(button, pending ? (operator.pending.get(t.type) ? 'Pausing…' : 'Resuming…') : t.paused ? 'Resume' : 'Pause');
    });
  }

  function renderGateways(gateways) {
    setText(el.gatewaysCount, plural(gateways.length, 'gateway', 'gateways'));
    keyedRows(el.consoleGateways, gateways, (g) => g.id, () => make('tr'), (tr, g) => {
      cell(tr, 'host', g.host || '', 'type');
      cell(tr, 'addr', g.addr || '');
      cell(tr, 'id', g.id, 'key');
      cell(tr, 'openStreams', Number(g.openStreams) || 0, 'num');
      cell(tr, 'consoleStreams', Number(g.consoleStreams) || 0, 'num');
    });
  }

  async function setPaused(type, paused) {
    if (operator.pending.has(type)) return;
    operator.pending.set(type, paused);
    const button = $(`tr[data-type="${CSS.escape(type)}"] button.pause`, el.consoleTypes);
    if (button) {
      button.disabled = true;
      setText(button, paused ? 'Pausing…' : 'Resuming…');
    }
    setText(el.consoleMsg, '');
    try {
      // The console's next snapshot shows the new state (the button waits for it).
      await api((c) => (paused ? c.pauseJobType(type) : c.resumeJobType(type)));
    } catch (e) {
      operator.pending.delete(type);
      if (button) button.disabled = false;
      if (e.status !== 401) setText(el.consoleMsg, `Could not ${paused ? 'pause' : 'resume'} ${type}: ${e.message}`);
    }
  }

  el.consoleTypes.addEventListener('click', (ev) => {
    const button = ev.target.closest('button.pause');
    const tr = button && button.closest('tr');
    if (tr) setPaused(tr.dataset.type, button.dataset.action === 'pause');
  });

  // Dead letters

  // loadDeadLetters reads the first page of dead letters again (more: the next page). Asked while a read
  // is under way, it reads again after it, so the list never stays older than the last change.
  async function loadDeadLetters(more) {
    if (operator.dlqLoading) {
      operator.dlqAgain = operator.dlqAgain || !more;
      return;
    }
    operator.dlqLoading = true;
    el.dlqMore.disabled = true;
    try {
      const page = await api((c) => c.deadLetters({ limit: 100, cursor: more ? operator.dlqCursor : undefined }));
      if (!more) {
        el.dlq.replaceChildren();
        operator.dlqRows = 0;
      }
      const rows = (page.deadLetters || []).map(deadLetterRow);
      el.dlq.append(...rows);
      operator.dlqRows += rows.length;
      operator.dlqCursor = page.nextCursor || '';
      setText(el.dlqMsg, '');
    } catch (e) {
      if (e.status !== 401) setText(el.dlqMsg, 'Could not load the dead letters: ' + e.message);
    } finally {
      operator.dlqLoading = false;
      el.dlqMore.disabled = false;
      el.dlqMore.hidden = !operator.dlqCursor;
      el.dlqEmpty.hidden = operator.dlqRows > 0 || Boolean(el.dlqMsg.textContent);
      const total = Math.max(operator.dlqTotal, operator.dlqRows);
      setText(el.dlqCount, total > 0 ? plural(total, 'dead letter', 'dead letters') : '');
      if (operator.dlqAgain) {
        operator.dlqAgain = false;
        loadDeadLetters(false);
      }
    }
  }

  function deadLetterRow(dl) {
    const tr = make('tr');
    tr.dataset.key = dl.key;
    tr.dataset.seq = String(dl.seq);
    const err = dl.error || {};
    tr.append(make('td', dl.malformed ? '(malformed)' : dl.type || '', 'type'), make('td', dl.key, 'key'),
      make('td', [err.code, err.message].filter(Boolean).join(': '), 'error'), make('td', dl.attempts || '', 'num'),
      make('td', dayAndClock(dl.deadAt), 'muted'));
    const actions = make('span', null, 'actions');
    if (!dl.malformed) {
      const retry = make('button', 'Retry', 'retry');
      retry.type = 'button';
      actions.append(retry);
    }
    const purge = make('button', 'Purge', 'purge');
    purge.type = 'button';
    actions.append(purge);
    const td = make('td');
    td.append(actions);
    tr.append(td);
    return tr;
  }

  // actOnDeadLetter retries or purges one dead letter and says what became of it.
  async function actOnDeadLetter(action, key) {
    const tr = $(`tr[data-key="${CSS.escape(key)}"]`, el.dlq);
    for (const b of tr ? tr.querySelectorAll('button') : []) b.disabled = true;
    setText(el.dlqMsg, '');
    try {
      const sel = { keys: [key] };
      const [res] = await api((c) => (action === 'retry' ? c.retryDeadLetters(sel) : c.purgeDeadLetters(sel)));
      if (res && res.status !== 200) setText(el.dlqMsg, `Could not ${action} ${key}: ${res.error ? res.error.message : res.status}`);
    } catch (e) {
      if (e.status !== 401) setText(el.dlqMsg, `Could not ${action} ${key}: ${e.message}`);
    }
    loadDeadLetters(false);
  }

  el.dlq.addEventListener('click', (ev) => {
    const button = ev.target.closest('button');
    const tr = button && button.closest('tr');
    if (!tr) return;
    if (button.classList.contains('retry')) actOnDeadLetter('retry', tr.dataset.key);
    if (button.classList.contains('purge')) {
      // A purge cannot be undone: it asks first.
      operator.purgeKey = tr.dataset.key;
      setText(el.purgeText, `${tr.dataset.key} will be removed for good; its job stays failed and can no longer be retried.`);
      el.purgeDialog.showModal();
    }
  });
  // Every opening sets purgeKey first, so nothing clears it on close: the dialog's close event is
  // dispatched later, and a purge opened right after the last one closed would lose its key to it.
  el.purgeConfirm.addEventListener('click', () => {
    const key = operator.purgeKey;
    operator.purgeKey = '';
    el.purgeDialog.close();
    if (key) actOnDeadLetter('purge', key);
  });
  el.purgeCancel.addEventListener('click', () => {
    operator.purgeKey = '';
    el.purgeDialog.close();
  });
  el.dlqMore.addEventListener('click', () => loadDeadLetters(true));

  // ---------------------------------------------------------------------------------------------
  // Views

  function showView(name) {
    if (name === 'console' && !operator.on) name = 'jobs';
    el.viewJobs.hidden = name !== 'jobs';
    el.viewLibrary.hidden = name !== 'library';
    el.viewConsole.hidden = name !== 'console';
    for (const b of el.tabs.querySelectorAll('button')) {
      if (b.dataset.view === name) b.setAttribute('aria-current', 'page');
      else b.removeAttribute('aria-current');
    }
    if (name === 'library') loadLibrary(false);
    if (name === 'console') openConsole();
    else closeConsole();
  }

  el.tabs.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-view]');
    if (b) showView(b.dataset.view);
  });

  // ---------------------------------------------------------------------------------------------
  // Session

  const session = { on: false, user: '' };
  // Tabs share the cookie: a tab that signs in or out tells the others, which then ask the server
  // where they stand (the cookie itself is out of their reach). Each tab keeps its own single
  // EventSource.
  const channel = 'BroadcastChannel' in window ? new BroadcastChannel('jobwire') : null;
  const TAB_MESSAGES = {
    signin: REFUSED, // signed in elsewhere: the check should pass; if not, the cookie was refused
    signout: 'You signed out in another tab.',
    refused: REFUSED, // another tab's token was refused
  };
  let checks = 0; // bumped by every check and sign-in: only the latest one's answer counts
  let signingIn = false;

  function tell(message) {
    if (channel) channel.postMessage(message);
  }

  function userOf(token) {
    const claims = tokenClaims(token);
    return claims && claims.sub ? String(claims.sub) : '';
  }

  const savedUser = () => shared((s) => s.getItem(USER_KEY)) || '';

  // startSession shows the signed-in page and opens the tab's stream. list is a first page of jobs
  // the caller already has (from the check); without it the page asks for one.
  function startSession(list) {
    const user = savedUser();
    if (session.on && user !== session.user) {
      storage((s) => s.removeItem(POSITION_KEY)); // another user's position
    }
    closeStream();
    clearJobs();
    resetLibrary();
    setOperator(false); // until GET /v1/session says otherwise
    showView('jobs');
    session.on = true;
    session.user = user;
    setText(el.user, session.user);
    el.user.hidden = !session.user;
    el.signout.hidden = false;
    el.signout.disabled = false;
    el.tabs.hidden = false;
    el.signin.hidden = true;
    el.app.hidden = false;
    setText(el.signinMsg, '');
    setText(el.jobsMsg, '');
    openStream();
    if (list) showJobList(list);
    else loadJobs(false);
    updateHint();
    loadOperator();
  }

  // showSignIn ends the session in this tab and shows the sign-in box; the cookie is the server's
  // business.
  function showSignIn(message) {
    session.on = false;
    session.user = '';
    setOperator(false);
    closeConsole();
    if (el.purgeDialog.open) el.purgeDialog.close();
    closeStream();
    clearJobs();
    resetLibrary();
    storage((s) => s.removeItem(POSITION_KEY));
    if (el.dialog.open) el.dialog.close();
    el.app.hidden = true;
    el.tabs.hidden = true;
    el.user.hidden = true;
    el.signout.hidden = true;
    el.signin.hidden = false;
    setText(el.signinMsg, message || '');
    setStatus('signed-out');
    el.tokenInput.value = '';
    el.tokenInput.focus();
  }

  // sessionLost handles a 401 of a signed-in tab: its cookie is gone, expired or no longer valid.
  // The other tabs are told, and check for themselves.
  function sessionLost() {
    if (!session.on) return;
    checks++; // an older check's answer no longer counts
    showSignIn(REFUSED);
    tell('refused');
  }

  // check asks the server whether this browser is signed in, with the request the page makes anyway:
  // the first page of jobs. It resolves to that page, or to null on a 401; anything else (the server
  // is unreachable or failing) throws.
  async function check() {
    try {
      return await api((c) => c.list({ limit: 50 }), { quiet401: true });
    } catch (e) {
      if (e.status === 401) return null;
      throw e;
    }
  }

  // resume decides from the server where this tab stands: on load, and when another tab signed in or
  // out. Signed in: the session starts (again, if the user changed). Not signed in: the sign-in box,
  // with message if the tab was signed in. Unknown (server unreachable): nothing changes, except on
  // load, where the session starts anyway: its requests and stream retry with backoff, and the first
  // 401 shows the sign-in box.
  async function resume(message) {
    const n = ++checks;
    const deciding = !session.on && el.signin.hidden; // on load: neither the page nor the sign-in box shown yet
    if (deciding) setStatus('connecting');
    let list;
    try {
      list = await check();
    } catch {
      list = undefined;
    }
    if (n !== checks) return;
    if (list === null) {
      // A sign-in box that may be being typed into stays as it is.
      if (session.on || deciding) showSignIn(session.on ? message : '');
      return;
    }
    if (session.on) {
      if (list && (!session.user || savedUser() !== session.user)) startSession(list); // someone else now
    } else if (list || deciding) {
      startSession(list);
    }
  }

  // signIn sends the token to the gateway, which verifies it and keeps it in the HttpOnly cookie.
  // fromLink: the token came with the page's URL, so a session may already be running; a bad link
  // must not end a good session.
  async function signIn(token, fromLink) {
    if (signingIn) return;
    const n = ++checks;
    let why = '';
    if (!TOKEN_RE.test(token)) {
      why = 'That is not a jobwire token: paste the whole link, or the token from it.';
    } else {
      signingIn = true;
      el.signinSubmit.disabled = true;
      setStatus('connecting', 'Signing in…');
      try {
        await api((c) => c.request('POST', '/v1/session', { body: { token } }), { quiet401: true });
      } catch (e) {
        if (e.status === 401) why = 'That token is not valid or has expired.';
        else if (e.status === 0) why = 'Could not sign in: ' + e.message;
        else why = 'The server refused to sign you in: ' + e.message;
      } finally {
        signingIn = false;
        el.signinSubmit.disabled = false;
      }
    }
    if (n !== checks) return; // the user acted again meanwhile
    if (!why) {
      const user = userOf(token);
      shared((s) => (user ? s.setItem(USER_KEY, user) : s.removeItem(USER_KEY)));
      startSession();
      tell('signin');
      return;
    }
    if (fromLink) {
      let list = null;
      try {
        list = await check();
      } catch {
        // cannot tell: say why the link failed
      }
      if (n !== checks) return;
      if (list) {
        startSession(list);
        setText(el.jobsMsg, 'The token in that link was not accepted; you are still signed in. ' + why);
        return;
      }
    }
    showSignIn(why);
  }

  // signOut asks the gateway to clear the cookie, then tells the other tabs. If the gateway cannot be
  // reached the cookie stays, and so does the session: the page says so rather than pretend.
  async function signOut() {
    el.signout.disabled = true;
    const n = ++checks;
    try {
      await api((c) => c.request('DELETE', '/v1/session'), { quiet401: true });
    } catch (e) {
      el.signout.disabled = false;
      if (n === checks && session.on) setText(el.jobsMsg, 'Could not sign out: ' + e.message);
      return;
    }
    shared((s) => s.removeItem(USER_KEY));
    showSignIn();
    tell('signout');
  }

  el.signinForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    let value = el.tokenInput.value.trim();
    const at = value.indexOf('#token=');
    if (at >= 0) value = new URLSearchParams(value.slice(at + 1)).get('token') || '';
    signIn(value.trim(), false);
  });

  el.signout.addEventListener('click', () => signOut());

  if (channel) {
    channel.onmessage = (ev) => {
      // Signed in or out elsewhere, perhaps as someone else: this tab asks the server and follows, so
      // it never shows one user's jobs with another user's cookie.
      if (Object.hasOwn(TAB_MESSAGES, ev.data) && !signingIn) resume(TAB_MESSAGES[ev.data]);
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Start

  const fromURL = takeTokenFromFragment();
  if (fromURL !== null) {
    signIn(fromURL, true);
  } else {
    resume();
  }
})();
