import type { EventEmitter } from 'node:events';
import { type Clock, systemClock } from '../clock.js';
import { Warner, type WarningCode } from '../errors.js';
import { ClientResolver } from '../identity/client-ip.js';
import { type ClientIdentity, identify } from '../identity/identity.js';
import { createMemoryStore } from '../store/memory-store.js';
import type { Store } from '../store/store.js';
import { Admitter } from './admission.js';
import { BanBook } from './ban-book.js';
import { ConnectionTracker } from './connections.js';
import { Enforcer } from './enforcement.js';
import { Announcer, type KeeperEvents } from './events.js';
import { IgnoreList } from './ignore-list.js';
import { InFlight } from './in-flight.js';
import { jailNames, Operations } from './operations.js';
import type { ResolvedOptions } from './options.js';
import { OwnerBook } from './owners.js';
import { watchRanges } from './range-bans.js';
import { Recorder } from './recording.js';
import { configWarnings } from './resolve-options.js';
import { buildRules } from './rules.js';
import { Sweeper } from './sweeper.js';

/** The pieces a keeper delegates to, built and wired once (see docs/architecture.md). */
export interface KeeperParts {
  readonly options: ResolvedOptions;
  readonly clock: Clock;
  readonly banClock: Clock;
  readonly store: Store;
  readonly ignore: IgnoreList;
  readonly ready: Promise<void>;
  readonly announcer: Announcer;
  readonly resolver: ClientResolver;
  readonly connections: ConnectionTracker;
  readonly book: BanBook;
  readonly enforcer: Enforcer;
  readonly recorder: Recorder;
  readonly flight: InFlight;
  readonly admitter: Admitter;
  readonly operations: Operations;
  readonly sweeper: Sweeper;
}

/**
 * Builds the keeper's pieces from validated options and wires them to each other and to the
 * store: warnings (kept until someone listens), the client resolver, the ban book, enforcement,
 * admission, recording, the operators' calls, range bans, `store.init()`, and the sweep timer. `emitter` is the
 * keeper (events go out through it); `setReady` is called once the store has loaded.
 */
export function assemble(
  emitter: EventEmitter<KeeperEvents>,
  options: ResolvedOptions,
  setReady: (ready: boolean) => void,
): KeeperParts {
  const clock = options.clock ?? systemClock;
  const announcer: Announcer = new Announcer(
    emitter,
    options.logger,
    warnerFor(emitter, options, (): Announcer => announcer),
  );
  const warner = announcer.warner;
  const doubts = configWarnings(options);
  // One warning per code: the jails it concerns in one message.
  for (const code of new Set(doubts.map((d) => d.code))) {
    const same = doubts.filter((d) => d.code === code);
    warner.warn(code, same.map((d) => d.message).join(' '), { options: same.map((d) => d.option) });
  }
  const resolver = new ClientResolver(options.clientIp, options.ipv6Subnet, warner);
  const store =
    options.store ??
    createMemoryStore({ maxTrackedClients: options.maxTrackedClients, persist: options.persist });
  const banClock = store.clock ?? clock;
  const ignore = new IgnoreList(options.ignoreIp, store, (op, error) => announcer.storeError(op, error));
  const id = (address: string): ClientIdentity | undefined => identify(address, options.ipv6Subnet);
  const connections = new ConnectionTracker();
  const book = new BanBook(options, banClock, announcer, connections);
  const enforcer = new Enforcer(options, book, ignore, store, banClock, announcer, id);
  const rules = buildRules(options);
  const owners = new OwnerBook(clock, options.maxTrackedClients);
  const admitter = new Admitter(
    options,
    rules,
    store,
    book,
    ignore,
    announcer,
    clock,
    owners,
    (client, request) => enforcer.check(client, request),
  );
  const flight = new InFlight();
  const recorder = new Recorder(options, rules, store, book, ignore, announcer, clock, id, flight, owners, {
    onCounted: (key, jail) => admitter.suspect(key, jail),
    onSettled: (jail, key) => admitter.wake(jail, key),
    onReleased: (slots) => admitter.released(slots),
  });
  const operations = new Operations(options, store, book, ignore, enforcer, banClock);
  watchRanges(options, book, store, announcer, banClock);
  const init = store.init({
    clock,
    jails: jailNames(options),
    onBan: (ban, origin) => book.apply(ban, origin),
    onUnban: (ban, origin) => book.lift(ban, 'manual', origin),
    isIgnored: (client) => ignore.coversKey(client),
    warn: (code, message, details) => warner.warn(code, message, details),
    activeBans: () => book.active(),
    activeBansPage: book.page.bind(book),
    banCounts: () => book.index.counts(),
    storeDown: (info) => announcer.storeDown(info),
    storeUp: (info) => announcer.storeUp(info),
    storeError: (operation, error) => announcer.storeFailed(operation, error),
    onIgnore: (op, entries) => {
      if (op === 'set') ignore.sync(entries);
      else ignore.applyShared(op, entries);
    },
  });
  const ready = Promise.resolve(init)
    .catch((error) => announcer.storeError('init', error))
    .then(() => setReady(true));
  const sweeper = new Sweeper(book, store, announcer, options.sweepIntervalMs);
  return {
    options,
    clock,
    banClock,
    store,
    ignore,
    ready,
    announcer,
    resolver,
    connections,
    book,
    enforcer,
    recorder,
    flight,
    admitter,
    operations,
    sweeper,
  };
}

/**
 * The keeper's warner. Warnings raised before anyone listens (while constructing, or before the
 * first `on('warning')`) are kept and replayed to the first listener.
 */
function warnerFor(
  emitter: EventEmitter<KeeperEvents>,
  options: ResolvedOptions,
  announcer: () => Announcer,
): Warner {
  const backlog: { code: WarningCode; message: string }[] = [];
  emitter.on(
    'newListener' as 'warning',
    ((name: string) => {
      if (name !== 'warning' || backlog.length === 0) return;
      process.nextTick(() => {
        for (const w of backlog.splice(0)) announcer().emit('warning', w);
      });
    }) as never,
  );
  return new Warner(options.logger, (code, message) => {
    if (emitter.listenerCount('warning') > 0) announcer().emit('warning', { code, message });
    else if (backlog.length < 64) backlog.push({ code, message });
  });
}
