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

  it('reads vhost_combined and zone-less times, and reports the lines it cannot attribute to a client', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'jk-replay-clf-'));
    const config = join(dir, 'jk.json');
    await writeFile(
      config,
      JSON.stringify({ jails: { bots: { userAgents: ['EvilBot'], maxRetry: 2, findTime: '1d' } } }),
    );
    const log = join(dir, 'access.log');
    await writeFile(
      log,
      [
        'www.example.com 192.0.2.1 - - [20/Nov/2026:06:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "EvilBot/1.0"',
        '192.0.2.1 - - [20/Nov/2026:07:00:01] "GET /a HTTP/1.1" 404 5 "-" "EvilBot/1.0" 0.002 "upstream"',
        'proxy.example.net - - [20/Nov/2026:07:00:02 +0000] "GET / HTTP/1.1" 200 5 "-" "EvilBot/1.0"',
        '2026/11/20 07:00:03 [error] 1#0: *1 open() "/x" failed, client: 192.0.2.1, server: a',
      ].join('\n'),
    );
    const res = await run(['replay', log, '--config', config, '--json']);
    assert.equal(res.code, 0, res.err);
    assert.ok(res.out.endsWith('}\n'), 'JSON output ends with a newline');
    const report = JSON.parse(res.out);
    assert.equal(report.parsed, 2);
    assert.equal(report.unattributed, 1);
    assert.deepEqual(
      report.unattributedSamples.map((s: { line: number }) => s.line),
      [3],
    );
    assert.equal(report.unparseable, 1);
    assert.equal(report.localTimes, 1);
    assert.equal(report.jails.bots.counted, 2);
    assert.deepEqual(
      report.bans.map((b: { ip: string; line: number }) => [b.ip, b.line]),
      [['192.0.2.1', 2]],
    );

    const human = await run(['replay', log, '--config', config]);
    assert.match(human.out, /2 parsed, 1 unparseable, 1 not attributable to a client/);
    assert.match(human.out, /line 3 \(no client address\): proxy\.example\.net/);
    assert.match(
      human.out,
      /1 line\(s\) had a time without a zone: read as this machine's local time \(.+\)/,
    );
  });
});

describe('replay of a log written under another locale', () => {
  it('reads French months (sept., oct.): every line parsed, the ban at its time', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'jk-replay-locale-'));
    const config = join(dir, 'jk.json');
    await writeFile(config, JSON.stringify({ jails: { login: { statuses: [401], maxRetry: 2 } } }));
    const log = join(dir, 'access.log');
    await writeFile(
      log,
      [
        '203.0.113.9 - - [30/sept./2015:23:59:58 +0200] "POST /login HTTP/1.1" 401 10 "-" "x"',
        '203.0.113.9 - - [01/oct./2015:00:00:01 +0200] "POST /login HTTP/1.1" 401 10 "-" "x"',
      ].join('\n'),
    );
    const res = await run(['replay', log, '--config', config, '--json']);
    assert.equal(res.code, 0, res.err);
    const report = JSON.parse(res.out);
    assert.equal(report.parsed, 2);
    assert.equal(report.unparseable, 0);
    assert.equal(report.bans[0]?.atMs, Date.UTC(2015, 8, 30, 22, 0, 1));
  });
});
