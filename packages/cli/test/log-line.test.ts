import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createCombinedParser, parseClfTime, parseJsonLine } from '../src/log-line.js';

describe('access-log lines', () => {
  it('parses the combined format, time zone included, and drops the query string', () => {
    const parse = createCombinedParser();
    const entry = parse(
      '203.0.113.7 - frank [10/Oct/2000:13:55:36 -0700] "POST /login?next=/admin HTTP/1.1" 401 2326 "http://example.com/" "Mozilla/4.08 [en] (Win98; I ;Nav)"',
    );
    assert.deepEqual(entry, {
      ip: '203.0.113.7',
      timeMs: Date.UTC(2000, 9, 10, 20, 55, 36),
      method: 'POST',
      path: '/login',
      status: 401,
      userAgent: 'Mozilla/4.08 [en] (Win98; I ;Nav)',
    });
    assert.equal(parseClfTime('01/Jan/2026:00:00:00 +0100'), Date.UTC(2025, 11, 31, 23));
  });

  it('parses the common format (no referrer nor agent) and IPv6 clients', () => {
    const entry = createCombinedParser()(
      '2001:db8::1 - - [22/Nov/2026:06:00:00 +0000] "GET /ws HTTP/1.1" 403 0',
    );
    assert.equal(entry?.ip, '2001:db8::1');
    assert.equal(entry?.status, 403);
    assert.equal(entry?.userAgent, '');
  });

  it('refuses lines that are not access-log lines', () => {
    const parse = createCombinedParser();
    for (const line of [
      'garbage',
      '1.2.3.4 - - [bad time] "GET / HTTP/1.1" 200 1',
      '1.2.3.4 - - [22/Nov/2026:06:00:00 +0000] "GET / HTTP/1.1" abc 1',
      '',
    ]) {
      assert.equal(parse(line), undefined, line);
    }
  });

  it('parses flat JSON lines and pino-http lines', () => {
    assert.deepEqual(
      parseJsonLine(
        '{"remote_addr":"198.51.100.1","time":"2026-11-22T06:00:00Z","request_method":"GET","request_uri":"/x?y=1","status":"404","http_user_agent":"curl"}',
      ),
      {
        ip: '198.51.100.1',
        timeMs: Date.UTC(2026, 10, 22, 6),
        method: 'GET',
        path: '/x',
        status: 404,
        userAgent: 'curl',
      },
    );
    assert.deepEqual(
      parseJsonLine(
        '{"level":30,"time":1795320000000,"req":{"method":"POST","url":"/login","remoteAddress":"::ffff:10.0.0.1","headers":{"user-agent":"ua"}},"res":{"statusCode":401}}',
      ),
      {
        ip: '::ffff:10.0.0.1',
        timeMs: 1795320000000,
        method: 'POST',
        path: '/login',
        status: 401,
        userAgent: 'ua',
      },
    );
    assert.equal(parseJsonLine('{"status":200}'), undefined);
    assert.equal(parseJsonLine('not json'), undefined);
  });
});
