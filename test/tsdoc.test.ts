import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import ts from 'typescript';
import { root } from './readme-blocks.js';

// Issue 11: every export of every package's entry points carries TSDoc, as the editor shows it.
const entries = readdirSync(join(root, 'packages')).flatMap((name) => {
  const src = join(root, 'packages', name, 'src');
  const subpaths = name === 'core' ? ['adapter/index.ts', 'testing/index.ts'] : [];
  return ['index.ts', ...subpaths].map((file) => join(src, file));
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
  assert.deepEqual(missing, []);
});
