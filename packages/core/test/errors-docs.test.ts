import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CODES, WARNING_CODES } from '../src/errors.js';

// docs/errors.md has one section per code, with its cause, its fix and how to silence it, under
// the anchor the error messages link to.
const page = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
const sections = new Map(
  page
    .split(/^### /m)
    .slice(1)
    .map((section) => [section.slice(0, section.indexOf('\n')).trim(), section] as const),
);

describe('docs/errors.md', () => {
  const codes: Array<[string, string]> = [
    ...Object.entries(ERROR_CODES).map(([code, { docs }]) => [code, docs] as [string, string]),
    ...Object.entries(WARNING_CODES),
  ];
  for (const [code, anchor] of codes) {
    it(`explains ${code}`, () => {
      const section = sections.get(code);
      assert.ok(section, `docs/errors.md has a section ### ${code}`);
      // GitHub's anchor of a heading: lower case, spaces to dashes.
      assert.equal(anchor, code.toLowerCase());
      assert.match(section, /^- \*\*Cause:\*\*/m, 'its cause');
      assert.match(section, /^- \*\*Fix:\*\*/m, 'its fix');
      assert.match(section, /^- \*\*Silence:\*\*/m, 'how to silence it');
    });
  }

  it('has no section for a code that does not exist', () => {
    const known = new Set(codes.map(([code]) => code));
    for (const heading of sections.keys()) {
      if (/^JK_/.test(heading)) assert.ok(known.has(heading), `${heading} is a code`);
    }
  });
});
