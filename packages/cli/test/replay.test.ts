import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { main } from '../src/main.js';

async function run(args: string[]) {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t), env: {}, isTTY: false });
  return { code, out, err };
}

describe('replay of a JSON log', () => {
  it('reads pino-http lines, uses their time, bans at maxRetry and lets the ban expire', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'jk-replay-json-'));
    const config = join(dir, 'jk.json');
    await writeFile(
      config,
      JSON.stringify({
        jails: { login: { statuses: [401], paths: ['/login'], maxRetry: 3, banTime: '1m' } },
      }),
    );
    const t0 = Date.UTC(2026, 10, 22, 8);
    const line = (sec: number, ip: string, status: number, url = '/login') =>
      JSON.stringify({
        level: 30,
        time: t0 + sec * 1000,
        req: { method: 'POST', url, remoteAddress: ip },
        res: { statusCode: status },
      });
    const lines = [
      line(0, '203.0.113.1', 401),
      line(1, '203.0.113.1', 401),
      line(2, '198.51.100.1', 200),
      line(3, '203.0.113.1', 401), // the 3rd failure: banned here, line 4
      line(4, '203.0.113.1', 401), // refused while banned
      line(70, '203.0.113.1', 200, '/'), // the 1-minute ban is over
    ];
    const log = join(dir, 'app.log');
    await writeFile(log, `${lines.join('\n')}\n`);
    const res = await run(['replay', log, '--config', config, '--json']);
    assert.equal(res.code, 0, res.err);
    const report = JSON.parse(res.out);
    assert.equal(report.format, 'json');
    assert.equal(report.parsed, 6);
    assert.deepEqual(
      report.bans.map((b: { ip: string; line: number; atMs: number }) => [b.ip, b.line, b.atMs]),
      [['203.0.113.1', 4, t0 + 3000]],
    );
    assert.equal(report.refused, 1, 'only the request inside the ban is refused');
    assert.equal(report.jails.login.counted, 3);
  });
});
