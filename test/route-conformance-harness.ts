/**
 * The route conformance matrix's machinery: a raw HTTP client (the request line goes out byte for
 * byte, so that spellings no HTTP library would send reach the router as written), a probe that
 * records which handler the router really ran, and the runner that compares jailkeeper's decision
 * with it.
 *
 * A row names a request and the handler the router runs for it (checked against the probe: the
 * row's claim about the router is tested too). What jailkeeper must decide follows from that
 * handler alone, through the app's design written beside its routes ({@link Meaning}): the jails a
 * failure there counts in, the jail-scope bans that refuse it, the jails a success there pardons.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { FailureEvent, Jailkeeper, PardonEvent } from '@jailkeeper/core';

/** The frameworks of the matrix; a scenario runs on those it names. */
export type FrameworkName = 'express 4' | 'express 5' | 'fastify 4' | 'fastify 5';
export const EXPRESS: readonly FrameworkName[] = ['express 4', 'express 5'];
export const FASTIFY: readonly FrameworkName[] = ['fastify 4', 'fastify 5'];

/** A value per framework: the exact name wins, then the family (`express`, `fastify`), then `other`. */
type PerFramework<T> = T | Partial<Record<FrameworkName | 'express' | 'fastify' | 'other', T>>;

function isPer<T>(value: PerFramework<T>): value is Partial<Record<string, T>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function pick<T>(value: PerFramework<T>, framework: FrameworkName): T {
  if (!isPer(value)) return value as T;
  const family = framework.startsWith('express') ? 'express' : 'fastify';
  for (const key of [framework, family, 'other']) if (key in value) return value[key] as T;
  throw new Error(`no value for ${framework}`);
}

/** A list of jail names, or one that depends on the method the handler ran with. */
type Jails = readonly string[] | ((method: string) => readonly string[]);

/**
 * What the app's author means by a handler: a response of it counts in `counts` (when it fails:
 * each label is a handler and its outcome), is refused to a client banned in `guards`, and
 * pardons in `pardons`. Written once per handler, from the app's design, never from jailkeeper.
 */
export interface Meaning {
  readonly counts?: Jails;
  readonly guards?: Jails;
  readonly pardons?: Jails;
}

function jailsOf(jails: Jails | undefined, method: string): readonly string[] {
  if (jails === undefined) return [];
  return typeof jails === 'function' ? jails(method) : jails;
}

/** Records which handlers ran, in order, for the request under way. */
export class Probe {
  ran: Array<{ label: string; method: string }> = [];

  hit(label: string, method: string): void {
    this.ran.push({ label, method });
  }

  reset(): void {
    this.ran = [];
  }
}

/** A request as it goes on the wire. */
export interface Wire {
  readonly method: string;
  /** The request-target, as written: `/LOGIN`, `//login`, `http://x/login`, `/a/../login`. */
  readonly target: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * Sends one request over a new socket from `from` (a loopback address) and reads the answer to
 * the end (the request says `Connection: close`). Resolves the status, or 0 when the server
 * closed without answering.
 */
export function rawRequest(port: number, from: string, wire: Wire): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: from });
    const chunks: Buffer[] = [];
    const extra = Object.entries(wire.headers ?? {})
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.on('connect', () => {
      socket.write(
        `${wire.method} ${wire.target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${extra}Content-Length: 0\r\n\r\n`,
      );
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const head = Buffer.concat(chunks).toString('latin1');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(head);
      resolve(match === null ? 0 : Number(match[1]));
    });
  });
}

/** One row: a request, and the handler the router runs for it (`null`: none, e.g. a 404). */
export interface Row {
  readonly name: string;
  readonly wire: Wire;
  /** The label of the handler that answers (the last to run), per framework when they differ. */
  readonly ran: PerFramework<string | null>;
}

/** An app under test: its port, the probe its handlers write to, and how to stop it. */
export interface RunningApp {
  readonly port: number;
  readonly probe: Probe;
  close(): Promise<void>;
}

export interface Context {
  readonly keeper: Jailkeeper;
  readonly failures: FailureEvent[];
  readonly pardons: PardonEvent[];
  readonly app: RunningApp;
  readonly meanings: Readonly<Record<string, Meaning>>;
  /** Jails with `scope: 'jail'`: a second client is banned in all of them for each row. */
  readonly scopedJails: readonly string[];
  readonly fresh: () => string;
}

/** Figures for the report: rows run per framework. */
export const tally = new Map<FrameworkName, number>();

/**
 * Runs one row: a clean client sends the request (the probe says which handler ran; its failures
 * and pardons must be those the handler means), then a client banned in every jail-scope jail
 * sends it again (the handlers up to the first one a ban there guards run; that one and the rest
 * must not).
 */
export async function runRow(ctx: Context, framework: FrameworkName, row: Row): Promise<void> {
  const { keeper, app } = ctx;
  const expected = pick(row.ran, framework);
  const label = `${framework} ${row.wire.method} ${row.wire.target}`;

  const clean = ctx.fresh();
  app.probe.reset();
  const status = await rawRequest(app.port, clean, row.wire);
  await keeper.idle();
  const ran = app.probe.ran;
  const last = ran.at(-1);
  assert.equal(last?.label ?? null, expected, `${label}: the router ran ${last?.label ?? 'no handler'}`);
  const meaning = last === undefined ? {} : (ctx.meanings[last.label] ?? {});
  const method = last?.method ?? row.wire.method;
  const counted = ctx.failures
    .filter((f) => f.ip === clean)
    .map((f) => f.jail)
    .sort();
  assert.deepEqual(
    counted,
    [...jailsOf(meaning.counts, method)].sort(),
    `${label} (${status}, ${last?.label ?? 'no handler'}): counted in`,
  );
  const pardoned = ctx.pardons
    .filter((p) => p.ip === clean)
    .map((p) => p.jail)
    .sort();
  assert.deepEqual(
    pardoned,
    [...jailsOf(meaning.pardons, method)].sort(),
    `${label} (${status}, ${last?.label ?? 'no handler'}): pardoned in`,
  );

  if (ctx.scopedJails.length > 0) {
    const banned = ctx.fresh();
    for (const jail of ctx.scopedJails) await keeper.ban(banned, { jail });
    app.probe.reset();
    const refusedStatus = await rawRequest(app.port, banned, row.wire);
    await keeper.idle();
    const guardedAt = ran.findIndex((r) => jailsOf(ctx.meanings[r.label]?.guards, r.method).length > 0);
    const allowed = guardedAt === -1 ? ran : ran.slice(0, guardedAt);
    assert.deepEqual(
      app.probe.ran.map((r) => r.label),
      allowed.map((r) => r.label),
      `${label}: a client banned in ${ctx.scopedJails.join(', ')} (answered ${refusedStatus}) ran`,
    );
    if (guardedAt !== -1) assert.equal(refusedStatus, 403, `${label}: refused with 403`);
  }
  tally.set(framework, (tally.get(framework) ?? 0) + 1);
}

/** A loopback address per client, never reused in a run. */
export function addresses(second: number): () => string {
  let next = 1;
  return () => {
    const n = next++;
    return `127.${second}.${(n >> 8) & 255}.${n & 255}`;
  };
}
