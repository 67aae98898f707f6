import type { Jailkeeper } from '@jailkeeper/core';
import { invalid } from '@jailkeeper/core/adapter';

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** Prepended to every metric name. @default 'jailkeeper_' */
  prefix?: string;
}

// biome-ignore lint/suspicious/noExplicitAny: prom-client's constructors are generic over their label names
type MetricConstructor = new (config: any) => unknown;

/** The part of prom-client that {@link JailkeeperMetrics.register} uses: pass `import * as promClient from 'prom-client'`. */
export interface PromClientLike {
  Counter: MetricConstructor;
  Gauge: MetricConstructor;
  register: unknown;
}

interface PromMetric {
  reset(): void;
  inc(labels: Record<string, string>, value: number): void;
  set(labels: Record<string, string>, value: number): void;
}

interface Sample {
  readonly labels: Record<string, string>;
  readonly value: number;
}

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly labelNames: readonly string[];
  samples(): Sample[];
}

/** Prometheus metrics of one keeper; see {@link createMetrics}. */
export interface JailkeeperMetrics {
  /** The Content-Type of {@link JailkeeperMetrics.text}. */
  readonly contentType: string;
  /** The metrics in Prometheus text exposition format 0.0.4. */
  text(): string;
  /**
   * Registers the same metrics with prom-client (an optional peer dependency), for apps that
   * already expose a registry: `metrics.register(promClient, registry)`.
   */
  register(promClient: PromClientLike, registry?: unknown): void;
  /** Stops listening to the keeper. */
  close(): void;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/**
 * Counts what a keeper does, for Prometheus: failures, bans and unbans per jail (made or lifted by
 * this process), requests refused, active bans, store errors and degraded mode. Counting happens in
 * event listeners and at scrape time, never on a clean request's path.
 * @example
 * const metrics = createMetrics(keeper);
 * app.get('/metrics', (req, res) => res.type(metrics.contentType).send(metrics.text()));
 */
export function createMetrics(keeper: Jailkeeper, options: MetricsOptions = {}): JailkeeperMetrics {
  const prefix = options.prefix ?? 'jailkeeper_';
  if (typeof prefix !== 'string' || (prefix !== '' && !NAME.test(prefix))) {
    invalid('createMetrics options.prefix', 'a Prometheus name prefix (letters, digits, _ and :)', prefix);
  }
  const failures = new Map<string, number>();
  const bans = new Map<string, number>();
  const unbans = new Map<string, number>();
  let storeErrors = 0;
  const onFailure = (e: { jail: string }) => bump(failures, e.jail);
  const onBan = (e: { jail: string; origin: string }) => {
    if (e.origin === 'local') bump(bans, e.jail);
  };
  // Unbans made elsewhere (the CLI, another instance) are counted too, with origin="remote": every
  // instance sees them, so a fleet-wide figure takes max() over instances for that origin.
  const onUnban = (e: { jail: string; cause: string; origin: string }) => {
    bump(unbans, `${e.jail}\u0000${e.cause}\u0000${e.origin}`);
  };
  const onStoreError = () => {
    storeErrors++;
  };
  keeper.on('failure', onFailure);
  keeper.on('ban', onBan);
  keeper.on('unban', onUnban);
  keeper.on('storeError', onStoreError);

  const byJail = (map: Map<string, number> | Record<string, number>): Sample[] =>
    (map instanceof Map ? [...map] : Object.entries(map)).map(([jail, value]) => ({
      labels: { jail },
      value,
    }));
  const families: Family[] = [
    {
      name: 'failures_total',
      help: 'Failures counted by this process, per jail.',
      type: 'counter',
      labelNames: ['jail'],
      samples: () => byJail(failures),
    },
    {
      name: 'bans_total',
      help: 'Bans made by this process (automatic and manual), per jail.',
      type: 'counter',
      labelNames: ['jail'],
      samples: () => byJail(bans),
    },
    {
      name: 'unbans_total',
      help: 'Bans lifted or expired, per jail, cause and origin (local: here; remote: the CLI or another instance).',
      type: 'counter',
      labelNames: ['jail', 'cause', 'origin'],
      samples: () =>
        [...unbans].map(([key, value]) => {
          const [jail = '', cause = '', origin = ''] = key.split('\u0000');
          return { labels: { jail, cause, origin }, value };
        }),
    },
    {
      name: 'blocked_requests_total',
      help: 'Requests and connections refused by this process, per jail of the ban.',
      type: 'counter',
      labelNames: ['jail'],
      samples: () => byJail(keeper.counters().blocked),
    },
    {
      name: 'active_bans',
      help: 'Bans this process enforces now, per jail.',
      type: 'gauge',
      labelNames: ['jail'],
      // Counted by the keeper's index, without building a million bans at each scrape.
      samples: () => byJail(keeper.banCounts()),
    },
    {
      name: 'broken_links',
      help: "404 paths that many networks get (a jail's sharedPaths): the site's broken links, counted for nobody; the list is keeper.brokenLinks().",
      type: 'gauge',
      labelNames: ['jail'],
      samples: () => {
        const links = new Map<string, number>();
        for (const link of keeper.brokenLinks()) bump(links, link.jail);
        return byJail(links);
      },
    },
    {
      name: 'store_errors_total',
      help: 'Store operations that failed (the request went on).',
      type: 'counter',
      labelNames: [],
      samples: () => [{ labels: {}, value: storeErrors }],
    },
    {
      name: 'store_degraded',
      help: '1 while the shared store is unreachable and this process works on its own.',
      type: 'gauge',
      labelNames: [],
      samples: () => [{ labels: {}, value: keeper.store.degraded === true ? 1 : 0 }],
    },
  ];

  return {
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
    text() {
      const lines: string[] = [];
      for (const family of families) {
        const name = prefix + family.name;
        lines.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} ${family.type}`);
        for (const sample of family.samples()) {
          const labels = Object.entries(sample.labels)
            .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
            .join(',');
          lines.push(`${name}${labels === '' ? '' : `{${labels}}`} ${sample.value}`);
        }
      }
      return `${lines.join('\n')}\n`;
    },
    register(promClient, registry) {
      const registers = [registry ?? promClient.register];
      for (const family of families) {
        const Metric = family.type === 'counter' ? promClient.Counter : promClient.Gauge;
        new Metric({
          name: prefix + family.name,
          help: family.help,
          labelNames: family.labelNames,
          registers,
          collect(this: PromMetric) {
            this.reset();
            for (const s of family.samples()) {
              if (family.type === 'counter') this.inc(s.labels, s.value);
              else this.set(s.labels, s.value);
            }
          },
        });
      }
    },
    close() {
      keeper.off('failure', onFailure);
      keeper.off('ban', onBan);
      keeper.off('unban', onUnban);
      keeper.off('storeError', onStoreError);
    },
  };
}
