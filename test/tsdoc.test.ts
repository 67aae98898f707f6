import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import ts from 'typescript';
import { root } from './readme-blocks.js';

// Issue 11: every export of every package's entry points carries TSDoc, as the editor shows it.
// The entry points are those of each package's exports map (its ES module builds, read as sources).
const entries = readdirSync(join(root, 'packages')).flatMap((name) => {
  const dir = join(root, 'packages', name);
  const { exports } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
    exports: Record<string, string | { import?: { default?: string } }>;
  };
  return Object.values(exports)
    .map((entry) => (typeof entry === 'string' ? undefined : entry.import?.default))
    .filter((file): file is string => file !== undefined)
    .map((file) => join(dir, file.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts')));
});

it('every export of every entry point has TSDoc', () => {
  const program = ts.createProgram(entries, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const missing: string[] = [];
  let exports = 0;
  for (const entry of entries) {
    const file = program.getSourceFile(entry);
    assert.ok(file, entry);
    const module = checker.getSymbolAtLocation(file);
    assert.ok(module, `${entry} is a module`);
    for (const symbol of checker.getExportsOfModule(module)) {
      exports++;
      const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
      const doc = ts.displayPartsToString(target.getDocumentationComment(checker)).trim();
      if (doc === '') missing.push(`${entry.slice(root.length + 1)}: ${symbol.getName()}`);
    }
  }
  assert.ok(exports > 100, `read ${exports} exports`);
  assert.ok(
    entries.some((e) => e.endsWith(join('core', 'src', 'operator', 'index.ts'))),
    'reads the subpaths',
  );
  assert.deepEqual(missing, []);
});
