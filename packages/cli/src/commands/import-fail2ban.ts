import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { checkConfig } from '../config.js';
import { EXIT } from '../errors.js';
import { importFail2ban } from '../fail2ban.js';
import { type Fail2banConfigFiles, readFail2banConfig } from '../fail2ban-files.js';
import { type Io, printJson, usage, type Values, writeAtomic } from './shared.js';

/** `jailkeeper import-fail2ban`: a fail2ban configuration translated into a jailkeeper config. */
export async function importCommand(path: string, values: Values, io: Io): Promise<number> {
  if (values.out !== undefined) await checkOut(values.out);
  let read: Fail2banConfigFiles;
  try {
    read = await readFail2banConfig(path, values.filters);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      usage(`No fail2ban configuration at ${path} (a directory such as /etc/fail2ban, or a jail file).`);
    throw error;
  }
  if (values.filters !== undefined && Object.keys(read.filters).length === 0)
    usage(`--filters ${values.filters} holds no filter (fail2ban's filter.d, with .conf files).`);
  const result = importFail2ban(read.files, read.filters);
  if (values.json) {
    printJson(io, { ...result, read: read.files.map((f) => f.name), filters: read.filtersDir ?? null });
    if (result.ok && values.out !== undefined)
      await writeAtomic(values.out, `${JSON.stringify(result.config, null, 2)}\n`);
    return result.ok ? EXIT.ok : EXIT.problems;
  }
  io.err(
    `Read ${read.files.map((f) => f.name).join(', ')}${read.filtersDir === undefined ? ' (no filter.d: the stock filters are known without it)' : `; filters from ${read.filtersDir}`}.\n`,
  );
  const listed =
    result.notes.length === 0
      ? 'Everything was translated.'
      : `Not translated, or translated with a change (${result.notes.length}):\n${result.notes.map((n) => `- ${n}`).join('\n')}`;
  if (result.errors.length > 0) {
    const errors = result.errors.map((e) => `jailkeeper: ${e.code}: ${e.message}`).join('\n');
    io.err(`${listed}\n${errors}\nNothing was written: fail2ban's configuration has an error.\n`);
    return EXIT.problems;
  }
  if (!result.ok) {
    io.err(`${listed}\nNothing was written: no jail could be translated.\n`);
    return EXIT.problems;
  }
  const json = `${JSON.stringify(result.config, null, 2)}\n`;
  if (values.out !== undefined) await writeAtomic(values.out, json);
  else io.out(json);
  const problems = checkConfig(result.config as Record<string, unknown>);
  io.err(`${listed}\n`);
  if (problems.length > 0)
    io.err(`The result needs editing: ${problems.map((p) => `${p.code} ${p.option}`).join(', ')}\n`);
  if (values.out !== undefined)
    io.err(`Wrote ${values.out}; check it with: jailkeeper check-config ${values.out}\n`);
  return problems.length > 0 ? EXIT.problems : EXIT.ok;
}

/** `--out` names a file in a directory that exists: said before anything is read, not a stack trace after. */
async function checkOut(out: string): Promise<void> {
  const dir = dirname(resolve(out));
  let isDir = false;
  try {
    isDir = (await stat(dir)).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir)
    usage(`--out ${out}: the directory ${dir} does not exist; create it first, or write elsewhere.`);
  try {
    if ((await stat(out)).isDirectory()) usage(`--out ${out} is a directory; name a file in it.`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
