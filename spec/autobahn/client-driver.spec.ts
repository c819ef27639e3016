import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serve } from '../../lib/index.js';
import { drive } from './client-driver.js';

test('the Autobahn client driver runs every case as an echo client, then updates the reports', { timeout: 20_000 }, async () => {
  const echoed = new Map<string, unknown[]>();
  const visits: string[] = [];
  const server = await serve(
    {
      onOpen(conn) {
        const { path, query } = conn.request;
        visits.push(`${path}${query.size > 0 ? `?${query.toString()}` : ''}`);
        if (path === '/getCaseCount') {
          void conn.sendText('3');
          conn.close();
        } else if (path === '/runCase') {
          const id = query.get('case')!;
          echoed.set(id, []);
          void conn.sendText(`text ${id}`);
          void conn.sendBinary(Buffer.from([Number(id), 0xff]));
        } else {
          conn.close();
        }
      },
      onMessage(conn, message) {
        const seen = echoed.get(conn.request.query.get('case')!)!;
        seen.push(message);
        if (seen.length === 2) conn.close(1000, 'case done');
      },
    },
    '127.0.0.1',
    0,
  );
  try {
    await drive(server.url);
  } finally {
    await server.close();
  }
  assert.deepEqual(visits, [
    '/getCaseCount',
    '/runCase?case=1&agent=resound',
    '/runCase?case=2&agent=resound',
    '/runCase?case=3&agent=resound',
    '/updateReports?agent=resound',
  ]);
  for (const id of ['1', '2', '3']) {
    assert.deepEqual(echoed.get(id), [`text ${id}`, Buffer.from([Number(id), 0xff])]);
  }
});
