// MoA Queue job console: plain browser JavaScript, no framework, no build step.
// All user-supplied text (answers, errors, metadata, ids) goes into the page
// through textContent, never innerHTML.

const LIST_REFRESH_MS = 2000;
const JOB_REFRESH_MS = 1000;
const PAGE_SIZE = 50;
const FINISHED = new Set(['completed', 'failed', 'cancelled']);

/** Bumped on every navigation: a poll loop of an older view stops itself. */
let generation = 0;
/** Offsets of the list pages visited, for the Newer button. */
let listCursors = [0];

// ---------------------------------------------------------------------------
// DOM and formatting helpers
// ---------------------------------------------------------------------------

function $(id) {
  return document.getElementById(id);
}

/** Creates an element; `text` is set as textContent, children appended in order. */
function el(tag, options = {}, children = []) {
  const node = document.createElement(tag);
  if (options.className) node.className = options.className;
  if (options.text !== undefined && options.text !== null) node.textContent = String(options.text);
  if (options.title) node.title = options.title;
  if (options.href) node.setAttribute('href', options.href);
  for (const [name, value] of Object.entries(options.attrs ?? {})) node.setAttribute(name, String(value));
  for (const child of children) if (child) node.append(child);
  return node;
}

function badge(status) {
  return el('span', { className: `badge ${status}`, text: status });
}

function formatDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} m ${String(Math.floor(seconds % 60)).padStart(2, '0')} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} m`;
}

function formatCost(usd) {
  if (usd === null || usd === undefined) return '—';
  if (usd === 0) return '$0';
  if (usd < 0.01) return `$${usd.toPrecision(3)}`;
  return `$${usd.toFixed(usd < 1 ? 4 : 2)}`;
}

function formatTokens(count) {
  if (count === null || count === undefined) return '—';
  return Number(count).toLocaleString('en-US');
}

function formatAgo(epochMs) {
  const seconds = Math.max(0, Math.round((Date.now() - epochMs) / 1000));
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(epochMs).toLocaleDateString();
}

function formatClock(epochMs) {
  return new Date(epochMs).toLocaleTimeString([], { hour12: false });
}

function formatDate(epochMs) {
  return new Date(epochMs).toLocaleString([], { hour12: false });
}

function showBanner(message) {
  const banner = $('banner');
  banner.textContent = message ?? '';
  banner.hidden = !message;
}

// ---------------------------------------------------------------------------
// Server access
// ---------------------------------------------------------------------------

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function getJson(path) {
  const response = await fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' } });
  if (response.status === 401) {
    const next = `${location.pathname}${location.hash}`;
    location.assign(`/console/login?next=${encodeURIComponent(next)}`);
    throw new HttpError(401, 'not logged in');
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new HttpError(response.status, body?.error?.message ?? `HTTP ${response.status}`);
  return body;
}

/** Runs `load` now and then every `intervalMs` while the view is current and `load` asks to go on. */
function poll(load, intervalMs) {
  const mine = generation;
  const tick = async () => {
    if (mine !== generation) return;
    let again = true;
    try {
      again = (await load(() => mine === generation)) !== false;
      if (mine === generation) showBanner('');
    } catch (error) {
      if (mine !== generation) return;
      if (error instanceof HttpError && error.status === 404) {
        showBanner(error.message);
        return;
      }
      showBanner(`Cannot reach the API: ${error.message}. Retrying…`);
    }
    if (again && mine === generation) setTimeout(tick, intervalMs);
  };
  tick();
}

// ---------------------------------------------------------------------------
// Job list
// ---------------------------------------------------------------------------

function jobRow(job) {
  const row = el(
    'tr',
    { attrs: { 'data-testid': 'job-row', 'data-job-id': job.id, 'data-status': job.status } },
    [
      el('td', { className: 'id' }, [
        el('a', { href: `#/jobs/${encodeURIComponent(job.id)}`, text: job.id }),
      ]),
      el('td', {}, [badge(job.status)]),
      el('td', { className: 'owner', text: job.owner }),
      el('td', { text: job.preset }),
      el('td', { text: formatAgo(job.created_at), title: formatDate(job.created_at) }),
      el('td', { className: 'num', text: formatDuration(job.duration_ms) }),
      el('td', { className: 'num', text: formatTokens(job.total_tokens) }),
      el('td', { className: 'num', text: formatCost(job.cost_usd) }),
    ],
  );
  row.addEventListener('click', (event) => {
    if (event.target instanceof Element && event.target.closest('a')) return;
    location.hash = `#/jobs/${encodeURIComponent(job.id)}`;
  });
  return row;
}

function showList() {
  $('list-view').hidden = false;
  const cursor = listCursors.at(-1) ?? 0;
  poll(async (current) => {
    const page = await getJson(`/console/api/jobs?limit=${PAGE_SIZE}&cursor=${cursor}`);
    if (!current()) return false;
    $('job-rows').replaceChildren(...page.data.map(jobRow));
    $('list-empty').hidden = page.data.length > 0;
    $('list-updated').textContent = `Updated ${formatClock(Date.now())} · refreshes every 2 s`;
    $('newer').disabled = listCursors.length <= 1;
    $('older').disabled = page.next_cursor === null;
    $('older').dataset.cursor = page.next_cursor ?? '';
    return true;
  }, LIST_REFRESH_MS);
}

$('older').addEventListener('click', () => {
  const next = Number($('older').dataset.cursor);
  if (!Number.isFinite(next)) return;
  listCursors.push(next);
  route();
});

$('newer').addEventListener('click', () => {
  if (listCursors.length > 1) listCursors.pop();
  route();
});

// ---------------------------------------------------------------------------
// One job
// ---------------------------------------------------------------------------

function stat(label, value, detail) {
  return el('div', { className: 'stat' }, [
    el('div', { className: 'label', text: label }),
    el('div', { className: 'value', text: value }),
    detail ? el('div', { className: 'detail', text: detail }) : null,
  ]);
}

/** Where a call's bar starts and ends (ms since the job was created) and how it is drawn. */
function callSpan(job, layer, call) {
  const now = job.finished_at_ms ?? job.now_ms;
  const start = call.started_at ?? layer.started_at ?? now;
  const end = call.finished_at ?? now;
  return { start: start - job.created_at_ms, end: Math.max(end, start) - job.created_at_ms };
}

/** A round tick step giving at most about eight ticks over `spanMs`. */
function tickStep(spanMs) {
  const raw = spanMs / 8;
  const power = 10 ** Math.floor(Math.log10(Math.max(raw, 1)));
  for (const factor of [1, 2, 5, 10]) if (factor * power >= raw) return factor * power;
  return 10 * power;
}

function formatTick(ms, step) {
  if (ms === 0) return '0';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(step < 100 ? 2 : step < 1000 ? 1 : 0)} s`;
  return `${Math.floor(ms / 60_000)}:${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')}`;
}

function percent(value, span) {
  return `${Math.min(100, Math.max(0, (value / span) * 100))}%`;
}

function renderTimeline(job) {
  const container = $('timeline');
  if (job.timeline.length === 0) {
    container.replaceChildren(
      el('p', {
        className: 'tl-empty',
        text: job.status === 'queued' ? 'Waiting for a worker…' : 'No calls were made.',
      }),
    );
    return;
  }
  let spanMs = (job.finished_at_ms ?? job.now_ms) - job.created_at_ms;
  for (const layer of job.timeline) {
    for (const call of layer.calls) spanMs = Math.max(spanMs, callSpan(job, layer, call).end);
  }
  spanMs = Math.max(spanMs, 1);
  const step = tickStep(spanMs);

  const ticks = [];
  const grid = [];
  for (let at = 0; at <= spanMs * 0.96; at += step) {
    ticks.push(el('span', { className: 'tl-tick', text: formatTick(at, step) }));
    ticks.at(-1).style.left = percent(at, spanMs);
    grid.push(at);
  }
  const axis = el('div', { className: 'tl-row tl-axis' }, [
    el('div', { className: 'tl-label', text: 'since created' }),
    el('div', { className: 'tl-track' }, ticks),
  ]);

  const gridLines = () =>
    grid.slice(1).map((at) => {
      const line = el('span', { className: 'tl-grid' });
      line.style.left = percent(at, spanMs);
      return line;
    });

  const groups = job.timeline.map((layer) => {
    const layerEnd = (layer.finished_at ?? job.finished_at_ms ?? job.now_ms) - job.created_at_ms;
    const layerStart = (layer.started_at ?? job.now_ms) - job.created_at_ms;
    const span = el('span', { className: 'tl-span' });
    span.style.left = percent(layerStart, spanMs);
    span.style.width = percent(Math.max(layerEnd - layerStart, 0), spanMs);
    const head = el('div', { className: 'tl-row tl-layer-head' }, [
      el('div', {
        className: 'tl-label',
        text: `Layer ${layer.layer} · ${layer.role} · ${layer.status === 'running' ? 'running' : formatDuration(layerEnd - layerStart)}`,
      }),
      el(
        'div',
        { className: 'tl-track', title: `layer ${layer.layer}: ${formatDuration(layerEnd - layerStart)}` },
        [...gridLines(), span],
      ),
    ]);
    const rows = layer.calls.map((call) => {
      const { start, end } = callSpan(job, layer, call);
      const bar = el('div', {
        className: `bar ${call.status}`,
        attrs: {
          'data-testid': 'timeline-bar',
          'data-status': call.status,
          'data-layer': layer.layer,
          'data-model': call.model,
        },
        title:
          `${call.model} · ${call.status}\n` +
          `${formatDuration(end - start)} (from +${formatDuration(start)} to +${formatDuration(end)})\n` +
          `tokens ${formatTokens(call.prompt_tokens)} in / ${formatTokens(call.completion_tokens)} out · ` +
          `cost ${formatCost(call.cost_usd)}` +
          (call.error ? `\nerror: ${call.error.message}` : ''),
        text: (end - start) / spanMs > 0.08 ? formatDuration(end - start) : '',
      });
      bar.style.left = percent(start, spanMs);
      bar.style.width = percent(end - start, spanMs);
      return el('div', { className: 'tl-row' }, [
        el('div', {
          className: 'tl-label',
          text: call.model,
          title: `${call.model} (agent ${call.agent_index + 1})`,
        }),
        el('div', { className: 'tl-track' }, [...gridLines(), bar]),
      ]);
    });
    return el('div', { className: 'tl-layer' }, [head, ...rows]);
  });
  container.replaceChildren(axis, ...groups);
}

function renderCalls(job) {
  const rows = job.timeline.flatMap((layer) =>
    layer.calls.map((call) =>
      el('tr', { attrs: { 'data-testid': 'call-row', 'data-status': call.status } }, [
        el('td', { text: `${layer.layer} · ${layer.role}` }),
        el('td', { className: 'mono', text: call.model }),
        el('td', {}, [badge(call.status)]),
        el('td', {
          className: 'num',
          text: call.started_at === null ? '—' : `+${formatDuration(call.started_at - job.created_at_ms)}`,
        }),
        el('td', { className: 'num', text: formatDuration(call.latency_ms) }),
        el('td', { className: 'num', text: call.attempts || '—' }),
        el('td', { className: 'num', text: formatTokens(call.prompt_tokens) }),
        el('td', { className: 'num', text: formatTokens(call.completion_tokens) }),
        el('td', { className: 'num', text: formatCost(call.cost_usd) }),
        el('td', {
          className: 'error-cell',
          text: call.error ? `${call.error.type}: ${call.error.message}` : '',
        }),
      ]),
    ),
  );
  $('call-rows').replaceChildren(...rows);
}

function renderJob(job) {
  const finished = FINISHED.has(job.status);
  const durationMs = (job.finished_at_ms ?? job.now_ms) - job.created_at_ms;
  document.title = `${job.id} · MoA Queue`;
  $('job-id').textContent = job.id;
  $('job-status').replaceChildren(badge(job.status));
  $('job-updated').textContent = finished
    ? `Finished ${formatDate(job.finished_at_ms ?? job.now_ms)}`
    : `Live · updated ${formatClock(Date.now())}`;
  const calls = job.timeline.reduce((sum, layer) => sum + layer.calls.length, 0);
  $('job-stats').replaceChildren(
    stat('Preset', job.preset),
    stat('Created', formatClock(job.created_at_ms), formatAgo(job.created_at_ms)),
    stat('Duration', formatDuration(durationMs), finished ? 'created → finished' : 'so far'),
    stat(
      'Tokens',
      formatTokens(job.usage.total_tokens),
      `${formatTokens(job.usage.prompt_tokens)} in · ${formatTokens(job.usage.completion_tokens)} out`,
    ),
    stat('Cost', formatCost(job.cost_usd), job.cost_usd === null ? 'a model has no price' : 'USD'),
    stat('Calls', String(calls), `${job.timeline.length} layer${job.timeline.length === 1 ? '' : 's'}`),
  );
  const errorBox = $('job-error');
  errorBox.hidden = !job.error;
  errorBox.textContent = job.error ? `${job.error.type}: ${job.error.message}` : '';

  renderTimeline(job);
  renderCalls(job);

  const answer = $('answer');
  const hasAnswer = typeof job.output === 'string';
  answer.classList.toggle('placeholder', !hasAnswer);
  answer.textContent = hasAnswer
    ? job.output
    : finished
      ? 'No answer: the job did not complete.'
      : 'Not finished yet…';

  const entries = Object.entries(job.metadata ?? {});
  $('metadata-card').hidden = entries.length === 0;
  $('metadata').replaceChildren(
    ...entries.flatMap(([key, value]) => [el('dt', { text: key }), el('dd', { text: value })]),
  );
}

function showJob(id) {
  $('job-view').hidden = false;
  $('job-id').textContent = id;
  for (const target of ['job-status', 'job-stats', 'timeline', 'call-rows', 'metadata'])
    $(target).replaceChildren();
  $('answer').textContent = '';
  $('job-updated').textContent = 'Loading…';
  poll(async (current) => {
    const job = await getJson(`/console/api/jobs/${encodeURIComponent(id)}`);
    if (!current()) return false;
    renderJob(job);
    return !FINISHED.has(job.status);
  }, JOB_REFRESH_MS);
}

// ---------------------------------------------------------------------------
// Routing: #/ is the list, #/jobs/<id> a job
// ---------------------------------------------------------------------------

function route() {
  generation += 1;
  showBanner('');
  $('list-view').hidden = true;
  $('job-view').hidden = true;
  const match = /^#\/jobs\/([^/]+)$/.exec(location.hash);
  for (const link of document.querySelectorAll('[data-nav]')) link.classList.toggle('active', !match);
  if (match) {
    showJob(decodeURIComponent(match[1]));
  } else {
    document.title = 'MoA Queue · Job console';
    showList();
  }
}

window.addEventListener('hashchange', route);

getJson('/console/api/session')
  .then((session) => {
    $('logout').hidden = !session.auth_required;
    // bull-board is for admins only.
    $('queues-link').hidden = !session.admin;
    // Admins see every tenant's jobs, so the list shows whose each one is.
    document
      .querySelector('table.jobs')
      ?.classList.toggle('with-owner', session.auth_required && session.admin);
  })
  .catch(() => {});

route();
