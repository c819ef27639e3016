/**
 * `resound chat --workers 2` as a child process, with Chromium tabs whose
 * WebSockets are served by different workers (each page shows the pid that
 * welcomed it; a tab joins again until the pids differ): they still hear each
 * other, notices included, and a room elsewhere still hears nothing. SIGTERM
 * to the primary ends every worker, and the pages show the close (1001).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launchChromium, type Browser, type Page } from '../browser.js';
import { until, withTimeout } from '../support.js';
import { connected, idleSocket, lines, openChat, reap, say, sees, startChatCli, STATUS, type ChatChild, type PageStatus } from './helpers.js';

/** Leave and join again through the page's own buttons: a new WebSocket, which the primary may give to the other worker. */
async function rejoin(page: Page): Promise<PageStatus> {
  await page.evaluate(`document.getElementById('leave').click(); document.getElementById('join').requestSubmit()`);
  return connected(page, 'the page to join again');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('resound chat --workers 2 in Chromium', { timeout: 60_000 }, () => {
  let child: ChatChild | undefined;
  let browser: Browser;
  let alice: Page;
  let bob: Page;
  let carol: Page;
  const workers = new Set<number>();

  before(async () => {
    child = await startChatCli(['--workers', '2']);
    browser = await launchChromium();
    alice = browser.page;
    [bob, carol] = [await browser.newPage(), await browser.newPage()];
  });

  after(async () => {
    await browser?.close();
    reap(child);
  });

  test('two tabs on different workers hear each other; a room elsewhere hears nothing', async () => {
    assert.match(child!.stdout(), /^resound chat on http:\/\/127\.0\.0\.1:\d+\/ \(2 workers\)\n$/);
    const a = Number((await openChat(alice, child!.url, 'alice', 'lobby')).worker);
    let b = Number((await openChat(bob, child!.url, 'bob', 'lobby')).worker);
    // Connections go round the workers; a page load may take a turn too, so try a few times.
    for (let tries = 0; b === a && tries < 10; tries++) b = Number((await rejoin(bob)).worker);
    assert.notEqual(a, b, `alice and bob on different workers (both on ${a} after 10 tries)`);
    for (const pid of [a, b]) {
      assert.ok(pid > 0 && pid !== child!.proc.pid, `a worker's pid, not the primary's: ${pid}`);
      workers.add(pid);
    }

    await sees(alice, 'bob joined', 'alice (the notice crossed workers)');
    await say(alice, 'hello from worker ' + a);
    await sees(bob, `alice: hello from worker ${a}`, 'bob');
    await say(bob, 'and back from worker ' + b);
    await sees(alice, `bob: and back from worker ${b}`, 'alice');

    await openChat(carol, child!.url, 'carol', 'elsewhere');
    await say(carol, 'anyone?');
    await sees(carol, 'carol: anyone?', 'carol');
    await say(bob, 'last one');
    await sees(alice, 'bob: last one', 'alice');
    assert.deepEqual(await lines(carol), ['carol joined', 'carol: anyone?'], 'carol heard nothing from the lobby');
    assert.ok(!(await lines(alice)).some((line) => line.startsWith('carol')), 'the lobby heard nothing from carol');
  });

  test('SIGTERM to the primary: every worker ends, the pages show 1001, the command exits 0', async () => {
    // A socket that never sends a request, as a browser's preconnect: it must not hold a worker's exit.
    const idle = await idleSocket(child!.url);
    child!.proc.kill('SIGTERM');
    for (const [page, who] of [[alice, 'alice'], [bob, 'bob']] as const) {
      const status = await page.waitFor<PageStatus>(`(() => { const s = ${STATUS}; return s.state === 'closed' ? s : null; })()`, `${who}'s page to show the close`);
      assert.equal(status.code, '1001', `${who}: ${status.text}`);
      assert.match(status.text, /^disconnected \(1001 server shutting down\)/);
    }
    // Well before the cluster's shutdownTimeout (10 s), after which it kills the workers that are still there.
    assert.deepEqual(await withTimeout(child!.exited, 5000, 'the primary to exit after SIGTERM'), { code: 0, signal: null }, child!.stderr());
    idle.destroy();
    await until(() => [...workers].every((pid) => !alive(pid)), `the workers ${[...workers].join(', ')} to be gone`, 5000, 50);
    assert.equal(child!.stderr(), '');
  });
});
