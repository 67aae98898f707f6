import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Fail2banFile } from './fail2ban.js';

/** A fail2ban configuration read from disk, ready for `importFail2ban`. */
export interface Fail2banConfigFiles {
  /** The jail files, in the order fail2ban reads them. */
  readonly files: Fail2banFile[];
  /** filter.d texts by filter name: the `.conf` followed by its `.local`. */
  readonly filters: Record<string, string>;
  /** Where the filters came from, if anywhere. */
  readonly filtersDir: string | undefined;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function listed(dir: string, ext: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => f.endsWith(ext)).sort();
  } catch {
    return [];
  }
}

async function readIfThere(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Reads filter.d: every `.conf`, each followed by its `.local` (which overrides it), as fail2ban does. */
export async function readFilters(dir: string): Promise<Record<string, string>> {
  const filters: Record<string, string> = {};
  for (const ext of ['.conf', '.local']) {
    for (const file of await listed(dir, ext)) {
      const name = file.slice(0, -ext.length);
      const body = await readFile(join(dir, file), 'utf8');
      filters[name] = ext === '.local' ? `${filters[name] ?? ''}\n${body}` : body;
    }
  }
  return filters;
}

/**
 * Reads a fail2ban configuration the way fail2ban does: given its directory (or its jail.conf or
 * jail.local), jail.conf, then jail.d/*.conf, then jail.local, then jail.d/*.local; given another
 * file, that file alone. Filters come from `filtersDir`, else from the filter.d beside the jails.
 * Throws ENOENT when `path` does not exist.
 */
export async function readFail2banConfig(path: string, filtersDir?: string): Promise<Fail2banConfigFiles> {
  const whole = (await isDirectory(path)) || /^jail\.(conf|local)$/.test(basename(path));
  const root = whole && !(await isDirectory(path)) ? dirname(path) : path;
  const files: Fail2banFile[] = [];
  if (whole) {
    const candidates = [
      'jail.conf',
      ...(await listed(join(root, 'jail.d'), '.conf')).map((f) => join('jail.d', f)),
      'jail.local',
      ...(await listed(join(root, 'jail.d'), '.local')).map((f) => join('jail.d', f)),
    ];
    for (const name of candidates) {
      const text = await readIfThere(join(root, name));
      if (text !== undefined) files.push({ name, text });
    }
    if (files.length === 0)
      throw Object.assign(new Error(`no jail.conf, jail.local or jail.d in ${root}`), { code: 'ENOENT' });
  } else {
    files.push({ name: basename(path), text: await readFile(path, 'utf8') });
  }
  const beside = join(whole ? root : dirname(path), 'filter.d');
  const dir = filtersDir ?? ((await isDirectory(beside)) ? beside : undefined);
  return { files, filters: dir === undefined ? {} : await readFilters(dir), filtersDir: dir };
}
