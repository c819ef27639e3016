/**
 * The chat's page: one HTML document with its style and script inline, no
 * other resource (it works offline, and its CSP allows nothing else). User
 * text is only ever set with textContent, never parsed as HTML.
 *
 * Query parameters `room` and `name` fill the form; with both, the page joins
 * at once (`/?room=lobby&name=alice`). For tests and people alike, #status
 * says where the connection is: data-state is idle, connecting, open or
 * closed; data-code the close code of the last connection that was open;
 * data-worker the pid of the server process that welcomed it.
 */
import { createHash } from 'node:crypto';

const STYLE = `
:root { color-scheme: light dark; --bg: #f6f7f9; --panel: #fff; --ink: #1d2330; --muted: #6b7383; --line: #e3e6ec; --accent: #2f6fed; --bad: #c0392b; --ok: #1e9e57; }
@media (prefers-color-scheme: dark) { :root { --bg: #14171c; --panel: #1c2027; --ink: #e6e9ef; --muted: #8d95a5; --line: #2b313b; --accent: #6d9bff; } }
* { box-sizing: border-box; }
html, body { height: 100%; margin: 0; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--ink); display: flex; flex-direction: column; }
header { display: flex; align-items: center; gap: 12px; padding: 10px 16px; background: var(--panel); border-bottom: 1px solid var(--line); }
header h1 { font-size: 16px; margin: 0; font-weight: 650; }
#room { color: var(--muted); }
#status { margin-left: auto; font-size: 13px; color: var(--muted); display: flex; align-items: center; gap: 6px; }
#status::before { content: ""; width: 9px; height: 9px; border-radius: 50%; background: var(--muted); }
#status[data-state=open]::before { background: var(--ok); }
#status[data-state=connecting]::before { background: #e0a100; }
#status[data-state=closed]::before { background: var(--bad); }
button { font: inherit; padding: 6px 14px; border: 0; border-radius: 6px; background: var(--accent); color: #fff; cursor: pointer; }
button:disabled { opacity: .5; cursor: default; }
button.quiet { background: transparent; color: var(--muted); border: 1px solid var(--line); padding: 3px 10px; font-size: 13px; }
input { font: inherit; padding: 6px 10px; border: 1px solid var(--line); border-radius: 6px; background: var(--panel); color: var(--ink); min-width: 0; }
main { flex: 1; overflow-y: auto; padding: 12px 16px; display: flex; flex-direction: column; }
#log { list-style: none; margin: auto auto 0; padding: 0; width: 100%; max-width: 860px; }
#log li { padding: 3px 0; overflow-wrap: anywhere; white-space: pre-wrap; }
#log time { color: var(--muted); font-size: 12px; margin-right: 8px; font-variant-numeric: tabular-nums; }
#log .name { font-weight: 650; margin-right: 6px; }
#log .notice { color: var(--muted); font-size: 13px; }
#log .error { color: var(--bad); font-size: 13px; }
#log .mine .text { color: var(--accent); }
form { display: flex; gap: 8px; padding: 10px 16px; background: var(--panel); border-top: 1px solid var(--line); }
#say input { flex: 1; }
#join { flex-wrap: wrap; justify-content: center; border: 0; border-bottom: 1px solid var(--line); }
#join label { display: flex; align-items: center; gap: 6px; color: var(--muted); }
[hidden] { display: none !important; }
`;

const SCRIPT = `
'use strict';
const $ = (id) => document.getElementById(id);
const statusLine = $('status'), log = $('log'), main = $('main');
const joinForm = $('join'), sayForm = $('say'), text = $('text'), send = $('send'), leave = $('leave');
const params = new URLSearchParams(location.search);
$('name').value = params.get('name') || localStorage.getItem('resound-chat-name') || '';
$('room-input').value = params.get('room') || 'lobby';

let me = null;          // { name, room } while we want to be in a room
let ws = null;
let attempt = 0;        // reconnects since the last welcome
let retry = null;       // the timer of the next reconnect
let lastClose = null;   // why the last open connection closed

function setStatus(state, words) {
  statusLine.dataset.state = state;
  statusLine.textContent = words;
  if (lastClose) statusLine.dataset.code = String(lastClose.code);
  const ready = state === 'open';
  text.disabled = send.disabled = !ready;
  if (ready) text.focus();
}

function add(className, parts, time) {
  const stick = main.scrollTop + main.clientHeight >= main.scrollHeight - 4;
  const li = document.createElement('li');
  li.className = className;
  const at = document.createElement('time');
  at.textContent = new Date(time || Date.now()).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  li.append(at, ...parts);
  log.append(li);
  while (log.childElementCount > 500) log.firstElementChild.remove();
  if (stick) main.scrollTop = main.scrollHeight;
}

function span(className, words, color) {
  const s = document.createElement('span');
  s.className = className;
  s.textContent = words;
  if (color) s.style.color = color;
  return s;
}

function colorOf(name) {
  let h = 0;
  for (const c of name) h = (h * 31 + c.codePointAt(0)) % 360;
  return 'hsl(' + h + ' 55% 45%)';
}

function connect() {
  retry = null;
  setStatus('connecting', attempt === 0 ? 'connecting…' : 'reconnecting…');
  const socket = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/chat');
  ws = socket;
  let opened = false;
  socket.onopen = () => {
    opened = true;
    socket.send(JSON.stringify({ type: 'join', name: me.name, room: me.room }));
  };
  socket.onmessage = (event) => {
    const m = JSON.parse(event.data);
    if (m.type === 'welcome') {
      attempt = 0;
      lastClose = null;
      delete statusLine.dataset.code;
      statusLine.dataset.worker = String(m.worker);
      statusLine.title = 'server process ' + m.worker;
      setStatus('open', 'connected');
    } else if (m.type === 'message') {
      add(m.name === me.name ? 'msg mine' : 'msg', [span('name', m.name, colorOf(m.name)), span('text', m.text)], m.time);
    } else if (m.type === 'joined' || m.type === 'left') {
      add('notice', [span('', m.name + (m.type === 'joined' ? ' joined' : ' left'))], m.time);
    } else if (m.type === 'error') {
      add('error', [span('', m.error)], m.time);
      // A name or room the server refuses: back to the form.
      if (statusLine.dataset.state !== 'open') stop(1000);
    }
  };
  socket.onclose = (event) => {
    if (ws !== socket) return;
    ws = null;
    if (opened) lastClose = { code: event.code, reason: event.reason };
    if (!me) return;
    const why = lastClose ? ' (' + lastClose.code + (lastClose.reason ? ' ' + lastClose.reason : '') + ')' : '';
    if ([1003, 1007, 1008, 1009].includes(event.code)) {
      setStatus('closed', 'closed by the server' + why);
      return;
    }
    const wait = Math.min(10000, 500 * 2 ** attempt++) * (0.5 + Math.random() / 2);
    setStatus('closed', 'disconnected' + why + ' · retrying in ' + Math.ceil(wait / 1000) + ' s');
    retry = setTimeout(connect, wait);
  };
}

function stop(code) {
  me = null;
  clearTimeout(retry);
  retry = null;
  if (ws) ws.close(code);
  ws = null;
  attempt = 0;
  joinForm.hidden = false;
  leave.hidden = true;
  $('room').textContent = '';
  setStatus('idle', 'not in a room');
}

joinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = $('name').value.trim();
  const room = $('room-input').value.trim().toLowerCase();
  if (!name || !room) return;
  me = { name, room };
  localStorage.setItem('resound-chat-name', name);
  history.replaceState(null, '', '?room=' + encodeURIComponent(room));
  joinForm.hidden = true;
  leave.hidden = false;
  $('room').textContent = '#' + room;
  document.title = '#' + room + ' · resound chat';
  connect();
});

sayForm.addEventListener('submit', (event) => {
  event.preventDefault();
  if (!ws || ws.readyState !== WebSocket.OPEN || !text.value.trim()) return;
  ws.send(JSON.stringify({ type: 'say', text: text.value }));
  text.value = '';
});

leave.addEventListener('click', () => stop(1000));
// Back online: do not wait for the backoff.
addEventListener('online', () => { if (retry) { clearTimeout(retry); connect(); } });

setStatus('idle', 'not in a room');
if (params.get('name') && params.get('room')) joinForm.requestSubmit();
`;

const BODY = `
<header>
  <h1>resound chat</h1>
  <span id="room"></span>
  <button id="leave" class="quiet" type="button" hidden>leave</button>
  <span id="status" role="status" aria-live="polite"></span>
</header>
<form id="join" autocomplete="on">
  <label>name <input id="name" maxlength="24" required autofocus></label>
  <label>room <input id="room-input" maxlength="24" required pattern="[a-zA-Z0-9\\-]+" title="letters, digits and -"></label>
  <button>join</button>
</form>
<main id="main"><ul id="log" aria-live="polite"></ul></main>
<form id="say" autocomplete="off">
  <input id="text" maxlength="500" placeholder="say something" aria-label="message" disabled>
  <button id="send" disabled>send</button>
</form>
`;

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

export const CHAT_PAGE = `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>resound chat</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
<body>${BODY}<script>${SCRIPT}</script>
</body>
</html>
`;

export const CHAT_PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-length': Buffer.byteLength(CHAT_PAGE),
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // Nothing but this page's own style and script, and WebSockets to where it came from.
  'content-security-policy': `default-src 'none'; style-src ${sha256(STYLE)}; script-src ${sha256(SCRIPT)}; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
};
