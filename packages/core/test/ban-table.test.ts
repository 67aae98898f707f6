import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BanTable, OWNER_FLAG } from '../src/store/ban-table.js';
import type { Ban } from '../src/store/store.js';

const NOW = 1_800_000_000_000;
const ban = (client: string, jail: string, endMs: number, extra: Partial<Ban> = {}): Ban => ({
  jail,
  client,
  startMs: NOW - 1000,
  endMs,
  banCount: 1,
  reason: `r${jail}`,
  manual: false,
  ...extra,
});

describe('BanTable past one segment (65,536 slots)', () => {
  it('keeps every ban of 200,000, across segments, through removal, reuse, walks and expiry', () => {
    const table = new BanTable();
    // 150,000 clients, a third of them also banned in a second jail: 200,000 slots, four segments.
    const model = new Map<string, Ban>();
    const add = (b: Ban, owner = false) => {
      table.set(b, owner);
      model.set(`${b.jail} ${b.client}`, b);
    };
    for (let i = 0; i < 150_000; i++) {
      add(ban(`c${i}`, 'login', NOW + 10_000 + (i % 50) * 1000, { banCount: 1 + (i % 7) }), i % 5 === 0);
      if (i % 3 === 0) add(ban(`c${i}`, 'scan', Number.POSITIVE_INFINITY, { manual: true }));
    }
    assert.equal(table.size, 200_000);
    // Every ban reads back whole, from any segment, by its client's chain.
    for (const [key, b] of model) {
      const slot = table.find(b.client, b.jail);
      assert.notEqual(slot, -1, key);
      assert.deepEqual(table.ban(slot), b, key);
      assert.equal(
        table.hasFlag(slot, OWNER_FLAG),
        b.jail === 'login' && Number(b.client.slice(1)) % 5 === 0,
      );
    }
    const chain = (client: string) => {
      const jails: string[] = [];
      for (let s = table.head(client); s !== -1; s = table.chained(s)) jails.push(table.jail(s));
      return jails.sort();
    };
    assert.deepEqual(chain('c149997'), ['login', 'scan']);
    assert.deepEqual(chain('c149998'), ['login']);

    // Remove 20,000 (first segment and last), then add 20,000 new clients: the freed slots are used.
    for (let i = 0; i < 150_000; i += 7) {
      if (model.size <= 180_000) break;
      for (const jail of ['login', 'scan']) {
        const slot = table.find(`c${i}`, jail);
        if (slot === -1) continue;
        table.remove(slot);
        model.delete(`${jail} c${i}`);
      }
    }
    const removed = 200_000 - model.size;
    for (let i = 0; i < removed; i++) add(ban(`n${i}`, 'login', NOW + 5000));
    assert.equal(table.size, 200_000);
    // A walk in pages lists each active ban once.
    const seen = new Set<string>();
    let after: number | undefined;
    do {
      const page = table.page(after, 5000, NOW);
      for (const b of page.bans) {
        const key = `${b.jail} ${b.client}`;
        assert.ok(!seen.has(key), `listed once: ${key}`);
        seen.add(key);
        assert.deepEqual(b, model.get(key), key);
      }
      after = page.next;
    } while (after !== undefined);
    assert.equal(seen.size, model.size);

    // Expiry by buckets: everything finite ends within a minute; a replaced end moves buckets.
    add(ban('c1', 'login', NOW + 3_600_000));
    let expired = 0;
    table.expire(NOW + 60_000, (slot) => {
      assert.ok(table.endMs(slot) <= NOW + 60_000);
      expired++;
    });
    const permanent = [...model.values()].filter((b) => b.endMs === Number.POSITIVE_INFINITY).length;
    assert.equal(table.size, permanent + 1, 'the permanent bans and the one moved past the wave are left');
    assert.equal(expired, model.size - permanent - 1);
    assert.equal(table.endMs(table.find('c1', 'login')), NOW + 3_600_000);
  });
});
