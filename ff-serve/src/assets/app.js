// ForgeFlow dashboard. Plain DOM, no framework, nothing fetched from
// elsewhere: every text from the server goes in through textContent.
'use strict';

const PAGE = 100;
const $ = (sel) => document.querySelector(sel);
const pages = { locks: 0, worktrees: 0, pending: 0, failed: 0 };
let admin = false;

// Characters that hide or reorder text (controls, bidi overrides and
// isolates, zero-width and other invisible formatting): the rule of
// ff_traits::text::is_hidden. Names, paths and command lines come from
// repositories, records and lock holders; each shows as it is, escaped.
const HIDDEN = /[\\\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb\u{1d173}-\u{1d17a}\u{e0000}-\u{e0fff}]/gu;
const NAMED = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\u001b': '\\e' };
function shown(text) {
  return String(text).replace(HIDDEN, (c) => NAMED[c] || `\\u{${c.codePointAt(0).toString(16)}}`);
}

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'class') node.className = v;
    else if (k === 'data') for (const [dk, dv] of Object.entries(v)) node.dataset[dk] = dv;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else if (k === 'title') node.title = shown(v);
    else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? '' : shown(c)));
  return node;
}

function age(ms) {
  if (ms == null) return '–';
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
  return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
}

async function getJSON(url) {
  const r = await fetch(url, { cache: 'no-store' });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
  return body;
}

function pager(name, total, reload) {
  const box = document.querySelector(`[data-pager="${name}"]`);
  const offset = pages[name] * PAGE;
  const last = Math.max(0, Math.ceil(total / PAGE) - 1);
  box.replaceChildren(
    el('button', { type: 'button', disabled: pages[name] === 0, on: { click: () => { pages[name]--; reload(); } } }, '‹'),
    el('span', { class: 'muted' }, total === 0 ? '0' : `${offset + 1}–${Math.min(total, offset + PAGE)} of ${total}`),
    el('button', { type: 'button', disabled: pages[name] >= last, on: { click: () => { pages[name]++; reload(); } } }, '›'),
  );
}

async function loadStats() {
  const s = await getJSON('/api/stats');
  admin = s.admin;
  $('#admin').hidden = !admin;
  $('#backends').textContent = shown(`locks: ${s.backends.locks_endpoint || s.backends.locks} · records: ${s.backends.store}` + (s.repository ? ` · ${s.repository}` : ''));
  const banner = $('#backend-banner');
  banner.hidden = s.backend_up;
  banner.textContent = s.backend_up ? '' : shown(`Backend down: ${s.backend_error}`);
  $('#c-locks').textContent = s.locks_held;
  $('#c-oldest').textContent = s.oldest_hold_ms == null ? 'none held' : `oldest ${age(s.oldest_hold_ms)}`;
  $('#c-pending').textContent = s.by_status.pending || 0;
  $('#c-pending-age').textContent = s.oldest_pending_ms == null ? '' : `oldest ${age(s.oldest_pending_ms)}`;
  $('#c-success').textContent = s.success_rate == null ? '–' : s.success_rate.toFixed(1) + '%';
  $('#c-records').textContent = `${s.records} records` + (s.corrupt ? `, ${s.corrupt} unreadable` : '');
  $('#c-latency').textContent = s.avg_duration_ms == null ? '–' : s.avg_duration_ms.toFixed(0) + ' ms';
  $('#c-worktrees').textContent = s.worktree_limit == null ? s.worktrees : `${s.worktrees} / ${s.worktree_limit}`;
  const bar = $('#c-worktree-bar');
  const share = s.worktree_limit ? Math.min(1, s.worktrees / s.worktree_limit) : 0;
  bar.style.width = (share * 100).toFixed(0) + '%';
  bar.classList.toggle('full', share >= 1);
  renderAlerts(s.alerts);
  plots(s.history);
}

function renderAlerts(alerts) {
  const list = $('#alerts');
  if (!alerts.length) {
    list.replaceChildren(el('li', { class: 'muted' }, 'no alerts'));
    return;
  }
  list.replaceChildren(...alerts.map((a) => el('li', { class: 'alert', data: { alert: a.name } },
    el('b', {}, a.name), a.summary, el('span', { class: 'muted' }, ` · since ${new Date(a.since).toLocaleTimeString()}`))));
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  return n;
}

function plot(id, series, fixedMax) {
  const box = document.getElementById(id);
  const W = 400, H = 120;
  const points = Math.max(...series.map((s) => s.values.length));
  const max = fixedMax || Math.max(1, ...series.flatMap((s) => s.values.filter((v) => v != null)));
  const nodes = [0.25, 0.5, 0.75].map((f) => svg('line', { class: 'grid', x1: 0, x2: W, y1: H * f, y2: H * f }));
  if (points < 2) {
    nodes.push(svg('text', { x: 8, y: H / 2 }));
    nodes[nodes.length - 1].textContent = 'collecting…';
  }
  for (const s of series) {
    let d = '';
    s.values.forEach((v, i) => {
      if (v == null) return;
      const x = points < 2 ? 0 : (i / (points - 1)) * W;
      const y = H - (v / max) * (H - 6) - 3;
      d += (d === '' || s.values[i - 1] == null ? 'M' : 'L') + x.toFixed(1) + ' ' + y.toFixed(1) + ' ';
    });
    if (d) nodes.push(svg('path', { class: s.cls, d }));
  }
  const label = svg('text', { x: W - 4, y: 12, 'text-anchor': 'end' });
  label.textContent = 'max ' + (fixedMax ? fixedMax : max.toFixed(0));
  nodes.push(label);
  box.replaceChildren(...nodes);
}

function plots(history) {
  plot('plot-success', [{ cls: 'c', values: history.map((h) => h.success_rate) }], 100);
  plot('plot-latency', [
    { cls: 'b', values: history.map((h) => h.max_ms) },
    { cls: 'a', values: history.map((h) => h.mean_ms) },
  ]);
  plot('plot-load', [
    { cls: 'a', values: history.map((h) => h.locks_held) },
    { cls: 'b', values: history.map((h) => h.pending) },
  ]);
}

async function loadLocks() {
  const q = encodeURIComponent($('#locks-filter').value);
  const held = $('#locks-held').checked ? '&held=true' : '';
  const r = await getJSON(`/api/locks?limit=${PAGE}&offset=${pages.locks * PAGE}&q=${q}${held}`);
  $('#locks-total').textContent = `(${r.total})`;
  pager('locks', r.total, loadLocks);
  $('#locks-body').replaceChildren(...r.items.map((l) => {
    const h = l.holders[0];
    const dead = l.held && l.holders.every((x) => x.liveness === 'dead');
    const holder = !h ? 'free' : l.holders.length > 1 ? `${l.holders.length} holders (pid ${h.pid} …)` : `pid ${h.pid} on ${h.hostname}`;
    const action = admin && dead
      ? el('button', { type: 'button', on: { click: () => unlock(l.name) } }, 'clear dead holder')
      : '';
    return el('tr', { class: dead ? 'dead' : '', data: { lockName: l.name } },
      el('td', { title: l.name }, l.name), el('td', {}, l.mode || ''), el('td', {}, holder + (dead ? ' (dead)' : '')),
      el('td', {}, h ? h.operation : ''), el('td', { class: 'num' }, h ? age(h.age_ms) : ''),
      el('td', { class: 'num' }, h ? h.fencing_token : ''), el('td', {}, action));
  }));
}

async function loadWorktrees() {
  const agent = $('#worktrees-agent').value;
  const r = await getJSON(`/api/worktrees?limit=${PAGE}&offset=${pages.worktrees * PAGE}${agent ? `&agent=${agent}` : ''}`);
  $('#worktrees-total').textContent = `(${r.total})`;
  pager('worktrees', r.total, loadWorktrees);
  $('#worktrees-body').replaceChildren(...r.items.map((w) => el('tr', { data: { worktree: w.id } },
    el('td', {}, w.issue), el('td', {}, w.branch), el('td', {}, w.status + (w.hook_failed ? ' (hook failed)' : '')),
    el('td', { class: 'agent', title: w.agent_status && w.agent_status.note ? w.agent_status.note : '' },
      w.agent_status ? `${w.agent_status.state} ${age(Date.now() - Date.parse(w.agent_status.since))}` : ''),
    el('td', { class: 'num' }, w.slot == null ? '' : w.slot + (w.port ? ` / ${w.port}` : '')),
    el('td', { class: 'num' }, age(w.age_ms)), el('td', { title: w.path }, w.path))));
}

async function loadOperations(status) {
  const r = await getJSON(`/api/operations?status=${status}&limit=${PAGE}&offset=${pages[status] * PAGE}`);
  $(`#${status}-total`).textContent = `(${r.total})`;
  pager(status, r.total, () => loadOperations(status));
  $(`#${status}-body`).replaceChildren(...r.items.map((o) => status === 'pending'
    ? el('tr', {}, el('td', {}, o.operation), el('td', { title: o.key }, o.label || o.key.slice(0, 12)), el('td', { class: 'num' }, o.attempts),
      el('td', { class: 'num' }, age(o.age_ms)), el('td', {}, o.owner ? `pid ${o.owner.pid} on ${o.owner.hostname}` : ''))
    : el('tr', {}, el('td', {}, o.operation), el('td', { title: o.key }, o.label || o.key.slice(0, 12)), el('td', { class: 'num' }, o.attempts),
      el('td', { title: o.error ? o.error.message : '' }, o.error ? `${o.error.kind}: ${o.error.message}` : ''),
      el('td', {}, o.ended_at ? new Date(o.ended_at).toLocaleTimeString() : ''))));
}

async function adminPost(path, body) {
  const r = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer ' + $('#admin-token').value },
    body: JSON.stringify(body),
  });
  const answer = await r.json();
  $('#admin-result').textContent = shown(r.ok ? JSON.stringify(answer) : answer.error.message);
  return r.ok;
}

async function unlock(name) {
  if (await adminPost('/api/admin/unlock', { name })) schedule('locks');
}

const loaders = {
  stats: loadStats,
  locks: loadLocks,
  worktrees: loadWorktrees,
  pending: () => loadOperations('pending'),
  failed: () => loadOperations('failed'),
};
const due = new Set();
let timer = null;
// Events come in bursts: reload each panel at most every 150 ms.
function schedule(...names) {
  names.forEach((n) => due.add(n));
  if (timer) return;
  timer = setTimeout(async () => {
    timer = null;
    const now = [...due];
    due.clear();
    await Promise.all(now.map((n) => loaders[n]().catch((e) => console.warn(n, e))));
  }, 150);
}

const affects = {
  lock_acquired: ['locks', 'stats'], lock_released: ['locks', 'stats'],
  operation_claimed: ['pending', 'stats'], operation_completed: ['pending', 'stats'],
  operation_failed: ['pending', 'failed', 'stats'], operation_rolled_back: ['pending', 'stats'],
  worktree_created: ['worktrees', 'stats'], worktree_removed: ['worktrees', 'stats'],
  status_changed: ['worktrees'],
  backend_down: ['stats'], backend_up: Object.keys(loaders),
  alert_firing: ['stats'], alert_resolved: ['stats'], lagged: Object.keys(loaders),
};

function activity(kind, e) {
  const list = $('#activity');
  list.prepend(el('li', {}, `${new Date(e.at).toLocaleTimeString()}  ${kind}  ${(e.detail && e.detail.label) || e.subject}`));
  while (list.children.length > 100) list.lastChild.remove();
}

function follow() {
  const source = new EventSource('/api/events');
  const live = $('#live');
  source.addEventListener('open', () => { live.textContent = 'live'; live.className = 'pill on'; });
  source.addEventListener('error', () => { live.textContent = 'reconnecting…'; live.className = 'pill off'; });
  source.addEventListener('hello', () => schedule(...Object.keys(loaders)));
  for (const kind of Object.keys(affects)) {
    source.addEventListener(kind, (m) => {
      const e = JSON.parse(m.data);
      if (kind !== 'lagged') activity(kind, e);
      schedule(...affects[kind]);
    });
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('#locks-filter').addEventListener('input', () => { pages.locks = 0; schedule('locks'); });
  $('#locks-held').addEventListener('change', () => { pages.locks = 0; schedule('locks'); });
  $('#worktrees-agent').addEventListener('change', () => { pages.worktrees = 0; schedule('worktrees'); });
  $('#gc-run').addEventListener('click', () => adminPost('/api/admin/gc', { max_age: $('#gc-age').value }));
  schedule(...Object.keys(loaders));
  follow();
  // Ages move even when nothing happens.
  setInterval(() => schedule('stats', 'locks', 'pending', 'worktrees'), 2000);
});
