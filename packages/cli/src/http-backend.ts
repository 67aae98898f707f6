import { userInfo } from 'node:os';
import type { ExportFormat } from '@jailkeeper/ops';
import type { Backend, BanRow, StatusReport } from './backend.js';
import { CliError, EXIT } from './errors.js';

/** Talks to a running app's admin API. */
export class HttpBackend implements Backend {
  readonly where: string;
  readonly #base: string;
  readonly #token: string;

  constructor(url: string, token: string) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new CliError(
        EXIT.usage,
        `--url must be the admin API's URL, such as http://127.0.0.1:3000/_jailkeeper; received ${JSON.stringify(url)}.`,
      );
    }
    this.#base = parsed.href.replace(/\/+$/, '');
    this.#token = token;
    this.where = `the admin API at ${this.#base}`;
  }

  /** One admin API call: the parsed JSON, or with `raw` the body as text (an export). */
  async #request(method: string, path: string, body?: unknown, raw = false): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(`${this.#base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.#token}`,
          // Who made a change, for the app's audit log.
          'x-jailkeeper-actor': actor(),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new CliError(
        EXIT.unreachable,
        `Cannot reach ${this.where} (${cause}). Is the app running, and is the admin API mounted at this path?`,
      );
    }
    const text = await response.text();
    let data: unknown;
    try {
      data = text === '' ? undefined : JSON.parse(text);
    } catch {
      data = text;
    }
    if (response.ok) return raw ? text : data;
    const error = (data as { error?: { code?: string; message?: string } } | undefined)?.error;
    if (response.status === 401) {
      throw new CliError(
        EXIT.refused,
        `${this.where} refused the token. Pass the app's admin token with --token or JAILKEEPER_TOKEN.`,
      );
    }
    if (response.status === 403 || response.status === 429) {
      throw new CliError(EXIT.refused, `${this.where} refused this caller: ${error?.message ?? 'forbidden'}`);
    }
    if (response.status === 404 && error === undefined) {
      throw new CliError(
        EXIT.unreachable,
        `${this.where} answered 404: is the admin API mounted at this path?`,
      );
    }
    if (error?.code?.startsWith('JK_ERR_'))
      throw new CliError(EXIT.rejected, error.message ?? error.code, error.code);
    throw new CliError(
      EXIT.unreachable,
      `${this.where} answered ${response.status}: ${typeof data === 'string' ? data.slice(0, 200) : JSON.stringify(data)}`,
    );
  }

  async status(): Promise<StatusReport> {
    const s = (await this.#request('GET', '/status')) as StatusReport;
    return s;
  }

  /** Every page of `GET /bans`. */
  async bans(jail?: string): Promise<BanRow[]> {
    const out: BanRow[] = [];
    let after: string | undefined;
    do {
      const query = new URLSearchParams({ limit: '5000' });
      if (jail !== undefined) query.set('jail', jail);
      if (after !== undefined) query.set('after', after);
      const page = (await this.#request('GET', `/bans?${query}`)) as { bans: BanRow[]; next?: string };
      out.push(...page.bans);
      after = page.next;
    } while (after !== undefined);
    return out;
  }

  async ban(
    address: string,
    options: { jail?: string; duration?: string; reason?: string },
  ): Promise<BanRow> {
    return ((await this.#request('POST', '/bans', { address, ...options })) as { ban: BanRow }).ban;
  }

  async unban(address: string, jail?: string): Promise<BanRow[]> {
    const q = `?address=${encodeURIComponent(address)}${jail === undefined ? '' : `&jail=${encodeURIComponent(jail)}`}`;
    return ((await this.#request('DELETE', `/bans${q}`)) as { lifted: BanRow[] }).lifted;
  }

  async unbanAll(jail?: string): Promise<BanRow[]> {
    const q = `?all=true${jail === undefined ? '' : `&jail=${encodeURIComponent(jail)}`}`;
    return ((await this.#request('DELETE', `/bans${q}`)) as { lifted: BanRow[] }).lifted;
  }

  async ignoreList(): Promise<string[]> {
    return ((await this.#request('GET', '/ignore')) as { entries: string[] }).entries;
  }

  async ignoreAdd(entry: string): Promise<string[]> {
    return ((await this.#request('POST', '/ignore', { entry })) as { added: string[] }).added;
  }

  async ignoreRemove(entry: string): Promise<string[]> {
    return (
      (await this.#request('DELETE', `/ignore?entry=${encodeURIComponent(entry)}`)) as { removed: string[] }
    ).removed;
  }

  async exportText(format: ExportFormat, options: { name?: string; jail?: string }): Promise<string> {
    const query = new URLSearchParams({ format });
    if (options.name !== undefined) query.set('name', options.name);
    if (options.jail !== undefined) query.set('jail', options.jail);
    return (await this.#request('GET', `/export?${query}`, undefined, true)) as string;
  }

  async close(): Promise<void> {}
}

function actor(): string {
  try {
    return `${userInfo().username} (cli)`;
  } catch {
    return 'cli';
  }
}
