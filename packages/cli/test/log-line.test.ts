import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clfTimeHasZone, createCombinedParser, parseClfTime, parseJsonLine } from '../src/log-line.js';

describe('access-log lines', () => {
  it('parses the combined format, time zone included, and keeps the query string apart from the path', () => {
    const parse = createCombinedParser();
    const entry = parse(
      '203.0.113.7 - frank [10/Oct/2000:13:55:36 -0700] "POST /login?next=/admin HTTP/1.1" 401 2326 "http://example.com/" "Mozilla/4.08 [en] (Win98; I ;Nav)"',
    );
    assert.deepEqual(entry, {
      ip: '203.0.113.7',
      timeMs: Date.UTC(2000, 9, 10, 20, 55, 36),
      method: 'POST',
      path: '/login',
      query: 'next=/admin',
      status: 401,
      userAgent: 'Mozilla/4.08 [en] (Win98; I ;Nav)',
      localTime: false,
    });
    assert.equal(parseClfTime('01/Jan/2026:00:00:00 +0100'), Date.UTC(2025, 11, 31, 23));
  });

  it('reads months written under another locale (sept., févr., Mär, Dez), with or without a zone', () => {
    assert.equal(parseClfTime('10/sept./2015:13:55:36 +0200'), Date.UTC(2015, 8, 10, 11, 55, 36));
    assert.equal(parseClfTime('03/févr./2015:01:02:03 +0100'), Date.UTC(2015, 1, 3, 0, 2, 3));
    assert.equal(parseClfTime('03/Mär/2015:01:02:03 +0000'), Date.UTC(2015, 2, 3, 1, 2, 3));
    assert.equal(parseClfTime('01/Dez/2015:01:02:03 -0100'), Date.UTC(2015, 11, 1, 2, 2, 3));
    assert.equal(parseClfTime('01/août/2015:00:00:00 +0000'), Date.UTC(2015, 7, 1));
    assert.equal(parseClfTime('10/sept./2015:13:55:36'), new Date(2015, 8, 10, 13, 55, 36).getTime());
    assert.ok(clfTimeHasZone('10/sept./2015:13:55:36 +0200'));
    assert.ok(!clfTimeHasZone('10/sept./2015:13:55:36'));
    assert.ok(Number.isNaN(parseClfTime('10/Xyz/2015:13:55:36 +0200')), 'not a month');
    const entry = createCombinedParser()(
      '203.0.113.7 - - [10/sept./2015:13:55:36 +0200] "GET /wp-login.php HTTP/1.1" 404 153 "-" "x"',
    );
    assert.equal(entry?.timeMs, Date.UTC(2015, 8, 10, 11, 55, 36));
    assert.equal(entry?.path, '/wp-login.php');
  });

  it('parses the common format (no referrer nor agent) and IPv6 clients', () => {
    const entry = createCombinedParser()(
      '2001:db8::1 - - [22/Nov/2026:06:00:00 +0000] "GET /ws HTTP/1.1" 403 0',
    );
    assert.equal(entry?.ip, '2001:db8::1');
    assert.equal(entry?.status, 403);
    assert.equal(entry?.userAgent, '');
  });

  it('parses vhost_combined: the virtual host first, then the client', () => {
    const parse = createCombinedParser();
    const entry = parse(
      'www.sitename.com 192.0.2.222 - - [18/Aug/2024:21:08:39 +0100] "GET /filename.jpg HTTP/1.1" 403 332 "-" "TrackBack/1.02"',
    );
    assert.equal(entry?.ip, '192.0.2.222');
    assert.equal(entry?.status, 403);
    assert.equal(entry?.userAgent, 'TrackBack/1.02');
    assert.equal(
      parse('www.example.com:443 2001:db8::7 - - [18/Aug/2024:21:08:39 +0100] "GET / HTTP/1.1" 200 1')?.ip,
      '2001:db8::7',
    );
    // A host name with no address after it stays the client: replay reports it as not attributable.
    assert.equal(
      parse('proxy.example.net - - [18/Aug/2024:21:08:39 +0100] "GET / HTTP/1.1" 200 1')?.ip,
      'proxy.example.net',
    );
  });

  it('reads a time without a zone as local time, and says so', () => {
    const parse = createCombinedParser();
    const entry = parse(
      '192.0.2.12 - user1 [27/Jun/2013:11:55:44] "GET /knocking/ HTTP/1.1" 200 266 "http://domain.net/hello-world/" "Mozilla/5.0 Firefox/40.0"',
    );
    assert.equal(entry?.timeMs, new Date(2013, 5, 27, 11, 55, 44).getTime());
    assert.equal(entry?.localTime, true);
    assert.equal(parseClfTime('31/Jan/2015:14:29:44 '), new Date(2015, 0, 31, 14, 29, 44).getTime());
    assert.equal(clfTimeHasZone('31/Jan/2015:14:29:44 '), false);
    assert.equal(clfTimeHasZone('31/Jan/2015:14:29:44 +0000'), true);
    assert.ok(Number.isNaN(parseClfTime('31/Jan/2015:14:29:44 junk')));
  });

  it('finds the user agent when fields follow it, and skips escaped quotes', () => {
    const parse = createCombinedParser();
    assert.equal(
      parse(
        '78.97.84.130 - - [09/Jan/2017:10:50:27 +0200] "POST /wp-login.php HTTP/1.1" 500 4332 "https://example.com/wp-login.php" "Opera/9.80 (Windows NT 6.2)" "-"PORT:443 0.271 0.271 . "GZIP:-"',
      )?.userAgent,
      'Opera/9.80 (Windows NT 6.2)',
    );
    const fake = parse(
      '66.249.66.1 - - - [31/Jan/2015:14:29:44 ] fail2ban.org "GET / HTTP/1.1" 200 814 "-" "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)" + 293 1149 546',
    );
    assert.equal(fake?.userAgent, 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)');
    assert.equal(fake?.ip, '66.249.66.1');
    assert.equal(
      parse(
        '185.20.138.40 - - [07/Nov/2017:17:49:37] "GET // HTTP/1.1" 200 243 "-" "() { :;};echo; /bin/bash -c \\" echo 2014 | md5sum\\""',
      )?.userAgent,
      '() { :;};echo; /bin/bash -c \\" echo 2014 | md5sum\\"',
    );
  });

  it('refuses lines that are not access-log lines', () => {
    const parse = createCombinedParser();
    for (const line of [
      'garbage',
      '1.2.3.4 - - [bad time] "GET / HTTP/1.1" 200 1',
      '1.2.3.4 - - [22/Nov/2026:06:00:00 +0000] "GET / HTTP/1.1" abc 1',
      '',
      '2012/04/09 11:53:29 [error] 2865#0: *66647 user "xyz" was not found in "/var/www/.htpasswd", client: 192.0.43.10, server: www.myhost.com, request: "GET / HTTP/1.1", host: "www.myhost.com"',
      '[Sat Jun 01 02:17:42 2013] [error] [client 192.168.0.2] user root not found',
      'Feb 15 16:23:00 srv httpd[22034]: [authz_core:error] [pid 22034] [client 192.0.2.1:58585] AH01630: client denied by server configuration: /home/www/',
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
        query: 'y=1',
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
