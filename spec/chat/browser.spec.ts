/**
 * The chat page in headless Chromium, used as people use it: tabs that join
 * rooms from the URL, type and press send, read the log; a tab closed; the
 * server stopped and started again on the same port, and the pages
 * reconnecting by themselves. The chat runs in this process.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launchChromium, type Browser, type Page } from '../browser.js';
import { connected, lines, openChat, say, sees, startChat, STATUS, type LocalChat, type PageStatus } from './helpers.js';

describe('the chat page in Chromium', { timeout: 60_000 }, () => {
  let chat: LocalChat;
  let browser: Browser;
  let alice: Page;
  let bob: Page;
  let carol: Page;

  before(async () => {
    chat = await startChat();
    browser = await launchChromium();
    alice = browser.page;
    [bob, carol] = [await browser.newPage(), await browser.newPage()];
  });

  after(async () => {
    await browser?.close();
    await chat?.close();
  });

  test('two tabs in one room hear each other; a third in another room hears neither', async () => {
    const status = await openChat(alice, chat.url, 'alice', 'lobby');
    assert.equal(status.worker, String(process.pid), 'the page shows which process welcomed it');
    await openChat(bob, chat.url, 'bob', 'lobby');
    await openChat(carol, chat.url, 'carol', 'elsewhere');
    await sees(alice, 'bob joined', 'alice');

    await say(alice, 'hi bob');
    await sees(bob, 'alice: hi bob', 'bob');
    await say(bob, 'hi alice ✓');
    await sees(alice, 'bob: hi alice ✓', 'alice');
    await say(carol, 'anyone?');
    await sees(carol, 'carol: anyone?', 'carol');

    assert.deepEqual(await lines(carol), ['carol joined', 'carol: anyone?'], 'carol heard nothing from the lobby');
    // bob's message came after carol's: had carol's reached the lobby, it would be in by now.
    await say(bob, 'still just us?');
    await sees(alice, 'bob: still just us?', 'alice');
    assert.deepEqual(await lines(alice), ['alice joined', 'bob joined', 'alice: hi bob', 'bob: hi alice ✓', 'bob: still just us?']);
  });

  test('user text is shown as text: markup in a name or a message is never parsed', async () => {
    const mallory = await browser.newPage();
    try {
      await openChat(mallory, chat.url, '<b>mallory</b>', 'lobby');
      await sees(alice, '<b>mallory</b> joined', 'alice');
      await say(mallory, '<img src=x onerror="document.title=\'owned\'">');
      await sees(alice, '<b>mallory</b>: <img src=x onerror="document.title=\'owned\'">', 'alice');
      assert.deepEqual(await alice.evaluate('[document.querySelectorAll("#log img, #log b").length, document.title]'), [0, '#lobby · resound chat']);
    } finally {
      // Closing the tab is leaving: the others are told.
      await mallory.close();
    }
    await sees(alice, '<b>mallory</b> left', 'alice');
    await sees(bob, '<b>mallory</b> left', 'bob');
  });

  test('a name the server refuses puts the page back on the form with the reason', async () => {
    const page = await browser.newPage();
    try {
      // The form's maxlength stops a person at 24; the URL does not.
      await page.goto(`${chat.url}?room=lobby&name=${'x'.repeat(30)}`);
      await page.waitFor(`!document.getElementById('join').hidden && document.getElementById('status').dataset.state === 'idle'`, 'the join form back');
      assert.deepEqual(await lines(page), ['name: 1 to 24 characters, no control characters']);
    } finally {
      await page.close();
    }
  });

  test('the server stops: the pages say so (1001); it starts again on the same port: they reconnect and talk', async () => {
    const port = chat.port;
    await chat.close();
    for (const [page, who] of [[alice, 'alice'], [bob, 'bob']] as const) {
      const status = await page.waitFor<PageStatus>(`(() => { const s = ${STATUS}; return s.state === 'closed' ? s : null; })()`, `${who}'s page to show the close`);
      assert.equal(status.code, '1001');
      assert.match(status.text, /^disconnected \(1001 server shutting down\) · retrying in \d+ s$/);
      assert.equal(await page.evaluate<boolean>(`document.getElementById('text').disabled`), true, 'nothing can be typed while disconnected');
    }
    // Down long enough for a reconnect attempt or two to fail.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    chat = await startChat(port);
    await connected(alice, "alice's page to reconnect");
    await connected(bob, "bob's page to reconnect");
    await connected(carol, "carol's page to reconnect");
    await say(bob, 'back again');
    await sees(alice, 'bob: back again', 'alice');
    const log = await lines(alice);
    assert.equal(log.filter((line) => line === 'alice joined').length, 2, 'alice joined again by herself (what each page hears of the others depends on who was back first)');
    for (const page of [alice, bob, carol]) {
      assert.deepEqual(
        page.log.filter((line) => /Content Security Policy|Refused to/.test(line)),
        [],
        'the page broke none of its own CSP',
      );
    }
  });
});
