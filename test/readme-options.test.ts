import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createJailkeeper, createMemoryStore } from '@jailkeeper/core';
import { quietLogger } from '@jailkeeper/core/testing';
import { jailkeeper } from '@jailkeeper/express';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import { createAdminApi } from '@jailkeeper/ops';
import { createRedisStore, type RedisStoreOptions } from '@jailkeeper/redis';
import Fastify from 'fastify';

// Every options table of the package READMEs names exactly the keys the code accepts: the keys
// are read from the code itself (its JK_ERR_UNKNOWN_OPTION message lists the valid ones, from the
// lists a mapped type keeps in step with each options type), the names from the table.
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const readme = (name: string) => readFileSync(join(root, 'packages', name, 'README.md'), 'utf8');
const UNKNOWN = '__unknown_option__';

/** The first column's names of the first table after a heading. */
function tableNames(markdown: string, heading: string): string[] {
  const lines = markdown.split('\n');
  let i = lines.findIndex((line) => line.trim() === heading);
  assert.ok(i >= 0, `the README has the heading ${heading}`);
  while (i < lines.length && !(lines[i] as string).startsWith('|')) i++;
  const names: string[] = [];
  for (i += 2; i < lines.length && (lines[i] as string).startsWith('|'); i++) {
    const name = /^\|\s*`([A-Za-z][A-Za-z0-9]*)`/.exec(lines[i] as string)?.[1];
    assert.ok(name, `a row of ${heading} names an option: ${lines[i]}`);
    names.push(name);
  }
  return names;
}

/** The names inside `{ ... }` in the type column of one row of a table. */
function inlineNames(markdown: string, heading: string, row: string): string[] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((line) => line.trim() === heading);
  const line = lines.slice(start).find((l) => l.startsWith(`| \`${row}\``));
  const braces = line === undefined ? null : /\{([^}]*)\}/.exec(line);
  assert.ok(braces, `the ${row} row of ${heading} lists its keys in braces`);
  return (braces[1] as string).split(',').map((k) => k.trim().replace(/\?$/, ''));
}

/** The valid keys the code names when it refuses an unknown one. */
async function validKeys(attempt: () => unknown): Promise<string[]> {
  try {
    await attempt();
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    assert.equal(code, 'JK_ERR_UNKNOWN_OPTION', message);
    const list = /valid keys are ([^.]+)\./.exec(message);
    assert.ok(list, message);
    return (list[1] as string).split(', ');
  }
  assert.fail('an unknown option was accepted');
}

const sorted = (names: string[]) => [...names].sort();
const jails = { login: { statuses: [401], paths: ['/login'] } };
const keeper = () => createJailkeeper({ jails, logger: quietLogger });

describe('the README options tables name every option, and only those', () => {
  const core = readme('core');
  const cases: Array<[string, string, () => unknown]> = [
    [
      'core',
      '## Options of `createJailkeeper(options)`',
      () => createJailkeeper({ jails, [UNKNOWN]: 1 } as never),
    ],
    ['core', '### `attempts`', () => createJailkeeper({ jails, attempts: { [UNKNOWN]: 1 } as never })],
    [
      'core',
      '### `VerifiedCrawlersOptions`',
      () => createJailkeeper({ jails, verifiedCrawlers: { [UNKNOWN]: 1 } as never }),
    ],
    [
      'core',
      '### `JailOptions`',
      () => createJailkeeper({ jails: { a: { statuses: [401], [UNKNOWN]: 1 } as never } }),
    ],
    ['core', '### `RecidiveOptions`', () => createJailkeeper({ jails, recidive: { [UNKNOWN]: 1 } as never })],
    ['core', '### `createMemoryStore(options)`', () => createMemoryStore({ [UNKNOWN]: 1 } as never)],
    [
      'express',
      '## Options of `jailkeeper(keeper, options)`',
      () => jailkeeper(keeper(), { [UNKNOWN]: 1 } as never),
    ],
    [
      'fastify',
      '## Options of the plugin',
      () => Fastify().register(jailkeeperPlugin, { keeper: keeper(), [UNKNOWN]: 1 } as never),
    ],
    [
      'redis',
      '## Options of `createRedisStore(options)`',
      () => createRedisStore({ [UNKNOWN]: 1 } as unknown as RedisStoreOptions),
    ],
    [
      'ops',
      '## `createAdminApi(keeper, options)`',
      () => createAdminApi(keeper(), { [UNKNOWN]: 1 } as never),
    ],
  ];
  for (const [name, heading, attempt] of cases) {
    it(`${name}: ${heading}`, async () => {
      assert.deepEqual(sorted(tableNames(readme(name), heading)), sorted(await validKeys(attempt)));
    });
  }

  it('core: the keys banTimeIncrement and pardon list in the JailOptions table', async () => {
    const jail = (extra: object) =>
      createJailkeeper({ jails: { a: { statuses: [401], ...extra } as never } });
    assert.deepEqual(
      sorted(inlineNames(core, '### `JailOptions`', 'banTimeIncrement')),
      sorted(await validKeys(() => jail({ banTimeIncrement: { [UNKNOWN]: 1 } }))),
    );
    assert.deepEqual(
      sorted(inlineNames(core, '### `JailOptions`', 'pardon')),
      sorted(await validKeys(() => jail({ pardon: { [UNKNOWN]: 1 } }))),
    );
  });

  it('names the options the issue found missing', () => {
    const names = tableNames(core, '## Options of `createJailkeeper(options)`');
    for (const option of [
      'trustedProxies',
      'clientIpHeader',
      'getClientIp',
      'dangerouslyTrustAllProxies',
      'closeConnectionsOnBan',
      'attempts',
      'verifiedCrawlers',
    ]) {
      assert.ok(names.includes(option), option);
    }
    const express = tableNames(readme('express'), '## Options of `jailkeeper(keeper, options)`');
    const fastify = tableNames(readme('fastify'), '## Options of the plugin');
    for (const option of ['block', 'response', 'retryAfter', 'onRefused', 'skip']) {
      assert.ok(express.includes(option) && fastify.includes(option), option);
    }
    assert.ok(fastify.includes('keeper') && fastify.includes('guard'));
  });
});
