/**
 * Regenerate docs/chat.png: the chat page with a short conversation in it
 * (two names, one room), 900 × 600. Not a test:
 *
 *   npm run build && node dist/spec/chat/screenshot.js [out.png]
 */
import { launchChromium } from '../browser.js';
import { sourcePath } from '../support.js';
import { openChat, say, sees, startChat } from './helpers.js';

const CONVERSATION: ReadonlyArray<readonly ['alice' | 'bob', string]> = [
  ['alice', 'hi bob! is the new chat up?'],
  ['bob', 'yes: one port for the page and the WebSocket, on two workers'],
  ['alice', 'and we still see each other across workers?'],
  ['bob', 'rooms are topics, and topics are shared through the primary'],
  ['alice', 'nice. what if the server restarts?'],
  ['bob', 'the page reconnects with backoff; the dot up there says how it is going'],
];

const out = process.argv[2] ?? sourcePath('docs/chat.png');
const chat = await startChat();
const browser = await launchChromium();
try {
  const alice = browser.page;
  await alice.setViewport(900, 600);
  const bob = await browser.newPage();
  await openChat(alice, chat.url, 'alice', 'lobby');
  await openChat(bob, chat.url, 'bob', 'lobby');
  await sees(alice, 'bob joined', 'alice');
  for (const [who, text] of CONVERSATION) {
    await say(who === 'alice' ? alice : bob, text);
    await sees(alice, `${who}: ${text}`, 'alice');
  }
  // No caret blinking in the message box, and no half-drawn frame.
  await alice.evaluate(`document.activeElement.blur(); new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))`);
  await alice.screenshot(out);
  process.stdout.write(`${out}\n`);
} finally {
  await browser.close();
  await chat.close();
}
