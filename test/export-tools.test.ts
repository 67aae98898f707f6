/**
 * The export formats checked by the programs that load them: `nginx -t` with the geo file and the
 * map-style include, and `ipset restore` inside a network namespace of the test's own. Where the
 * program is missing (or namespaces are not permitted), the check is skipped and says so;
 * .ci/run installs nginx-light and ipset.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Ban } from '@jailkeeper/core/store';
import { exportBans } from '@jailkeeper/ops';
import { IPSET, NGINX, NO_IPSET, NO_NGINX } from './needs.js';

const now = Date.now();
const ban = (client: string, endMs = now + 3600_000): Ban => ({
  jail: 'login',
  client,
  startMs: now,
  endMs,
  banCount: 1,
  reason: 'test',
  manual: false,
});
const BANS = [
  ban('203.0.113.7'),
  ban('198.51.100.20', Number.POSITIVE_INFINITY),
  ban('2001:db8:1:2::/64'),
  ban('2001:db8::1'),
  ban('not-a-network; return 200'),
];

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jk-export-tools-'));
});
after(() => rm(dir, { recursive: true, force: true }));

async function nginxTest(http: string): Promise<{ status: number | null; output: string }> {
  const conf = join(dir, `nginx-${Math.random().toString(36).slice(2)}.conf`);
  await writeFile(
    conf,
    `error_log stderr;\npid ${dir}/nginx.pid;\nevents {}\nhttp {\n  access_log off;\n  client_body_temp_path ${dir};\n  proxy_temp_path ${dir};\n  fastcgi_temp_path ${dir};\n  uwsgi_temp_path ${dir};\n  scgi_temp_path ${dir};\n${http}\n}\n`,
  );
  const run = spawnSync(NGINX as string, ['-t', '-q', '-p', dir, '-c', conf], { encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

describe('export formats, loaded by their programs', () => {
  it('nginx-geo passes nginx -t and refuses with 444 by the geo variable', {
    skip: NO_NGINX,
  }, async () => {
    const file = join(dir, 'banned-geo.conf');
    const text = exportBans(BANS, 'nginx-geo');
    assert.doesNotMatch(text, /return 200/, 'a value that is not a network is never written');
    await writeFile(file, text);
    const res = await nginxTest(
      `  include ${file};\n  server {\n    listen 127.0.0.1:18099;\n    if ($jailkeeper_banned) { return 444; }\n  }`,
    );
    assert.equal(res.status, 0, res.output);
    // and a broken file is caught by the same check: the test can fail
    await writeFile(file, text.replace('203.0.113.7 1;', '203.0.113.7 1'));
    assert.notEqual((await nginxTest(`  include ${file};\n  server { listen 127.0.0.1:18099; }`)).status, 0);
  });

  it('nginx-map lines pass nginx -t inside a geo block of the operator', {
    skip: NO_NGINX,
  }, async () => {
    const file = join(dir, 'banned-map.conf');
    await writeFile(file, exportBans(BANS, 'nginx-map'));
    const res = await nginxTest(
      `  geo $banned_client {\n    default 0;\n    include ${file};\n  }\n  server {\n    listen 127.0.0.1:18098;\n    if ($banned_client) { return 403; }\n  }`,
    );
    assert.equal(res.status, 0, res.output);
  });

  it('ipset restore -! loads both sets in a network namespace of its own', {
    skip: NO_IPSET,
  }, async (t) => {
    const file = join(dir, 'banned.ipset');
    await writeFile(file, exportBans(BANS, 'ipset', { name: 'jktest' }));
    const script = `${IPSET} restore -! < ${file} && ${IPSET} list jktest && ${IPSET} list jktest6 && ${IPSET} restore -! < ${file} && ${IPSET} list jktest | grep -c '^[0-9]'`;
    const run = spawnSync('unshare', ['-n', 'sh', '-c', script], { encoding: 'utf8' });
    if (run.status !== 0 && /Operation not permitted|unshare failed|cannot/i.test(run.stderr)) {
      t.skip(`network namespaces are not permitted here: ${run.stderr.trim()}`);
      return;
    }
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /Name: jktest\n/);
    assert.match(run.stdout, /^203\.0\.113\.7$/m);
    assert.match(run.stdout, /^198\.51\.100\.20$/m);
    assert.match(run.stdout, /^2001:db8:1:2::\/64$/m);
    assert.match(run.stdout, /^2001:db8::1$/m);
    // restored twice (the --watch case): still two IPv4 members, no error
    assert.match(run.stdout.trim().split('\n').at(-1) ?? '', /^2$/);
    // the namespace was the test's own: the host has no such set
    assert.notEqual(spawnSync(IPSET as string, ['list', 'jktest']).status, 0);
  });

  it('the plain and haproxy-acl files hold one network a line, nothing else', () => {
    for (const format of ['plain', 'haproxy-acl'] as const) {
      const lines = exportBans(BANS, format).trim().split('\n');
      assert.deepEqual(lines, ['198.51.100.20', '2001:db8:1:2::/64', '2001:db8::1', '203.0.113.7']);
    }
  });
});
