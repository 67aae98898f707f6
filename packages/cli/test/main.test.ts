import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { BanRow } from '../src/backend.js';
import { bansTable, sortBans } from '../src/format.js';
import { main } from '../src/main.js';

async function run(args: string[]) {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t), env: {}, isTTY: false });
  return { code, out, err };
}

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

describe('jailkeeper --version', () => {
  it("prints the package's version and exits 0, with -v too, before anything else", async () => {
    for (const flag of ['--version', '-v']) {
      const res = await run([flag]);
      assert.equal(res.code, 0, res.err);
      assert.equal(res.out, `${pkg.version}\n`);
    }
    const help = await run(['--help']);
    assert.match(help.out, /--version/);
  });

  it('is refused beside a command (exit 2): it would otherwise hide what the command does', async () => {
    const res = await run(['bans', '--version']);
    assert.equal(res.code, 2);
    assert.match(res.err, /--version takes no command/);
  });
});

function ban(client: string, jail: string, startMs: number): BanRow {
  return {
    client,
    jail,
    startMs,
    endMs: startMs + 3_600_000,
    timeLeftMs: 3_600_000,
    banCount: 1,
    reason: 'r',
    manual: false,
    permanent: false,
  };
}

describe('bans order', () => {
  it('lists the newest ban first, then by jail and address, whatever order the backend gave', () => {
    const given = [
      ban('10.0.0.9', 'login', 1000),
      ban('10.0.0.1', 'scan', 3000),
      ban('10.0.0.3', 'login', 3000),
      ban('10.0.0.2', 'login', 3000),
      ban('10.0.0.5', 'manual', 2000),
    ];
    const order = (rows: BanRow[]) => rows.map((b) => b.client);
    const expected = ['10.0.0.2', '10.0.0.3', '10.0.0.1', '10.0.0.5', '10.0.0.9'];
    assert.deepEqual(order(sortBans(given)), expected);
    assert.deepEqual(order(sortBans([...given].reverse())), expected, 'the same order from any order');
    assert.equal(given[0]?.client, '10.0.0.9', 'the input is left as it was');
    const lines = bansTable(sortBans(given)).split('\n').slice(1);
    assert.deepEqual(
      lines.map((l) => l.split(/\s+/)[0]),
      expected,
    );
  });
});
