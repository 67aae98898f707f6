import assert from 'node:assert/strict';
import { isIPv6 } from 'node:net';
import { describe, it } from 'node:test';
import ipaddr from 'ipaddr.js';
import { formatIPv6, parseIPv6 } from '../src/identity/ipv6.js';

// Core parses IPv6 itself (it used to depend on ipaddr.js for it): these tests hold it to
// ipaddr.js and to Node's own parser on every form, and on a random corpus, so the keys clients
// are counted under did not change.

/**
 * ipaddr.js's words, or undefined where it refuses the text. One quirk set aside: ipaddr.js reads
 * `::1.2.3.4` (and only that spelling) as IPv4-mapped, `::ffff:1.2.3.4`, while RFC 4291 and its
 * own reading of `0::1.2.3.4` make it IPv4-compatible, `::102:304`, as core does. Both are the
 * client 1.2.3.4 to identity (see embedded-ipv4.test.ts), so no key changed.
 */
function reference(text: string): number[] | undefined {
  if (/^::\d+\.\d+\.\d+\.\d+$/.test(text)) return reference(`0${text}`);
  return ipaddr.IPv6.isValid(text) ? ipaddr.IPv6.parse(text).parts.slice() : undefined;
}

/** A small deterministic generator, so a failure names a seed that reproduces it. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

describe('parseIPv6', () => {
  const forms: Array<[string, number[] | undefined]> = [
    ['::', [0, 0, 0, 0, 0, 0, 0, 0]],
    ['::1', [0, 0, 0, 0, 0, 0, 0, 1]],
    ['1::', [1, 0, 0, 0, 0, 0, 0, 0]],
    ['1:2:3:4:5:6:7:8', [1, 2, 3, 4, 5, 6, 7, 8]],
    ['1:2:3:4:5:6:7::', [1, 2, 3, 4, 5, 6, 7, 0]],
    ['::2:3:4:5:6:7:8', [0, 2, 3, 4, 5, 6, 7, 8]],
    ['2001:DB8::Ab:0', [0x2001, 0xdb8, 0, 0, 0, 0, 0xab, 0]],
    ['::ffff:1.2.3.4', [0, 0, 0, 0, 0, 0xffff, 0x102, 0x304]],
    ['1:2:3:4:5:6:1.2.3.4', [1, 2, 3, 4, 5, 6, 0x102, 0x304]],
    ['0001:0002::0003', [1, 2, 0, 0, 0, 0, 0, 3]],
    ['::1.2.3.4', [0, 0, 0, 0, 0, 0, 0x102, 0x304]],
    // Not one address.
    ['', undefined],
    [':', undefined],
    [':::', undefined],
    [':1::', undefined],
    ['1:', undefined],
    ['::1:', undefined],
    ['1:::2', undefined],
    ['1::2::3', undefined],
    ['1:2:3:4:5:6:7:8:9', undefined],
    ['1:2:3:4:5:6:7:8::', undefined],
    ['::1:2:3:4:5:6:7:8', undefined],
    ['1:2:3:4:5:6:7', undefined],
    ['12345::', undefined],
    ['g::', undefined],
    ['1.2.3.4::', undefined],
    ['::1.2.3.4:5', undefined],
    ['1:2:3:4:5:6:7:1.2.3.4', undefined],
    ['::1.2.3', undefined],
    ['::256.1.1.1', undefined],
    [' ::1', undefined],
  ];
  for (const [text, words] of forms) {
    it(`${JSON.stringify(text)} → ${words ? words.map((w) => w.toString(16)).join(':') : 'refused'}`, () => {
      assert.deepEqual(parseIPv6(text), words);
      assert.deepEqual(reference(text), words, 'ipaddr.js agrees');
      assert.equal(isIPv6(text), words !== undefined, 'Node agrees');
    });
  }

  // 200,000 when JK_LONG_TESTS is set (.ci/run sets it), 50,000 in the README's test command.
  const TEXTS = process.env.JK_LONG_TESTS ? 200_000 : 50_000;
  it(`agrees with ipaddr.js and Node on ${TEXTS.toLocaleString('en')} random texts built from address parts`, () => {
    const next = random(28);
    const parts = [
      '',
      '0',
      '1',
      'f',
      'ff',
      'ffff',
      'FFFF',
      '12345',
      'db8',
      '0000',
      'g',
      '1.2.3.4',
      '255.0.0.1',
    ];
    let accepted = 0;
    for (let n = 0; n < TEXTS; n++) {
      const groups = 1 + Math.floor(next() * 10);
      let text = next() < 0.2 ? ':' : '';
      for (let g = 0; g < groups; g++) {
        text += parts[Math.floor(next() * parts.length)];
        if (g < groups - 1) text += next() < 0.12 ? '::' : ':';
      }
      if (next() < 0.1) text += ':';
      const mine = parseIPv6(text);
      // ipaddr.js takes leading-zero dotted quads and such; parseIp refuses those before this.
      if (isIPv6(text) !== (mine !== undefined)) assert.fail(`Node and parseIPv6 differ on ${text}`);
      assert.deepEqual(mine, reference(text), text);
      if (mine) accepted++;
    }
    // About one text in 30 is an address: enough of both kinds to compare.
    assert.ok(accepted > TEXTS / 40, `${accepted} of the texts were addresses`);
  });
});

describe('formatIPv6', () => {
  const forms: Array<[number[], string]> = [
    [[0, 0, 0, 0, 0, 0, 0, 0], '::'],
    [[0, 0, 0, 0, 0, 0, 0, 1], '::1'],
    [[1, 0, 0, 0, 0, 0, 0, 0], '1::'],
    [[0x2001, 0xdb8, 0, 1, 0, 0, 0, 1], '2001:db8:0:1::1'], // a lone zero is not compressed
    [[0x2001, 0xdb8, 0, 0, 1, 0, 0, 1], '2001:db8::1:0:0:1'], // the first of equal runs
    [[1, 0, 0, 2, 0, 0, 0, 3], '1:0:0:2::3'], // the longest run
    [[0xabcd, 0xef, 1, 2, 3, 4, 5, 6], 'abcd:ef:1:2:3:4:5:6'],
  ];
  for (const [words, text] of forms) {
    it(text, () => {
      assert.equal(formatIPv6(words), text);
      assert.equal(new ipaddr.IPv6(words).toRFC5952String(), text, 'ipaddr.js agrees');
    });
  }

  it('agrees with ipaddr.js on 100,000 random addresses, zero runs likely', () => {
    const next = random(5952);
    for (let n = 0; n < 100_000; n++) {
      const words = Array.from({ length: 8 }, () => (next() < 0.5 ? 0 : Math.floor(next() * 65536)));
      const text = formatIPv6(words);
      assert.equal(text, new ipaddr.IPv6(words).toRFC5952String());
      assert.deepEqual(parseIPv6(text), words, `${text} reads back`);
    }
  });
});
