import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReservationTable } from '../src/store/reservations.js';

describe('ReservationTable', () => {
  it('counts open reservations per key, frees each once, and expires the unsettled', () => {
    const table = new ReservationTable();
    table.add('login\0a', 'r1', 1000);
    table.add('login\0a', 'r2', 2000);
    table.add('login\0a', 'r3', 3000);
    table.add('login\0b', 'r4', 1000);
    assert.equal(table.open('login\0a', 0), 3);
    assert.equal(table.remove('login\0a', 'r2'), true);
    assert.equal(table.remove('login\0a', 'r2'), false, 'settled once');
    assert.equal(table.open('login\0a', 0), 2);
    assert.equal(table.open('login\0a', 1000), 1, 'r1 expired at its deadline');
    assert.equal(table.remove('login\0a', 'r1'), false, 'an expired reservation is not open');
    assert.equal(table.remove('login\0a', 'r3'), true);
    assert.equal(table.open('login\0a', 0), 0);
    assert.equal(table.size, 1, 'only b holds one');
  });

  it('reuses a key emptied by its settles, and the sweep drops keys left with none', () => {
    const table = new ReservationTable();
    for (let i = 0; i < 5; i++) {
      table.add('k', `r${i}`, 10_000);
      assert.equal(table.open('k', 0), 1);
      assert.equal(table.remove('k', `r${i}`), true);
    }
    assert.equal(table.size, 0);
    table.add('held', 'x', 500);
    table.add('expiring', 'y', 100);
    table.sweep(200);
    assert.equal(table.size, 1);
    assert.equal(table.open('held', 200), 1);
    assert.equal(table.open('expiring', 200), 0);
    table.clear('held');
    assert.equal(table.open('held', 0), 0);
  });
});
