/**
 * The badBots preset's list is fail2ban's: every alternative of apache-badbots.conf's two lists,
 * in order, and the preset matches each listed agent whole (and nothing longer or shorter).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { presets } from '@jailkeeper/core';
import { BAD_BOT_AGENTS } from '@jailkeeper/core/operator';
import { FAIL2BAN_CONF, FAIL2BAN_SKIP } from './fail2ban-data.js';

describe("presets.badBots: fail2ban's bad-bot list", () => {
  it('holds every alternative of badbotscustom and badbots, in order', { skip: FAIL2BAN_SKIP }, async () => {
    const filter = await readFile(`${FAIL2BAN_CONF}filter.d/apache-badbots.conf`, 'utf8');
    const listed = ['badbotscustom', 'badbots'].flatMap(
      (name) => new RegExp(`^${name} = (.*)$`, 'm').exec(filter)?.[1]?.split('|') ?? [],
    );
    assert.ok(listed.length > 50);
    assert.deepEqual([...BAD_BOT_AGENTS], listed);
  });

  it('matches a whole user agent, as fail2ban does, never a part of one', () => {
    const [pattern] = presets.badBots.userAgents as [RegExp];
    for (const agent of ['EmailSiphon', 'TrackBack/1.02', 'Jorgee', 'Mozilla/5.0 Jorgee', 'Snapbot/1.0']) {
      assert.ok(pattern.test(agent), agent);
    }
    for (const agent of [
      'Mozilla/5.0 (compatible; EmailSiphon)',
      'EmailSiphon/2',
      'emailsiphon',
      'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
    ]) {
      assert.ok(!pattern.test(agent), agent);
    }
  });
});
