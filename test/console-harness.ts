/// <reference lib="dom" />
/**
 * What the console's browser tests share: a real headless Chromium (Debian's package, driven by
 * playwright-core; skipped with a note when it is not installed), probe apps on Express and
 * Fastify with the admin API and its console mounted, and small helpers to act by keyboard and to
 * time an action in the browser.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Jailkeeper } from '@jailkeeper/core';
import { jailkeeper } from '@jailkeeper/express';
import { jailkeeperPlugin } from '@jailkeeper/fastify';
import { jailkeeperAdmin as expressAdmin } from '@jailkeeper/ops/express';
import { jailkeeperAdmin as fastifyAdmin } from '@jailkeeper/ops/fastify';
import express from 'express';
import Fastify from 'fastify';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { CHROMIUM, NO_CHROMIUM } from './needs.js';

/** The skip reason when there is no browser: the suite must pass on a machine with Node and npm only. */
export const NO_BROWSER = NO_CHROMIUM;

const TOKEN = 'console-browser-test-token';

/** A fresh headless Chromium profile; close it with `close()`. */
export async function launch(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'jk-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Watches a page for what must never happen: a script error, a Content-Security-Policy or Trusted
 * Types violation, and a script that ran from data (`window.__pwned`).
 */
export async function watch(page: Page): Promise<{ problems: () => Promise<string[]> }> {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !/401|429|Unauthorized|Too Many/.test(message.text()))
      errors.push(`console error: ${message.text()}`);
  });
  await page.addInitScript(() => {
    const w = window as unknown as { __violations: string[] };
    w.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      w.__violations.push(`${e.violatedDirective}: ${e.blockedURI} ${e.sample}`),
    );
  });
  return {
    async problems() {
      const found = await page.evaluate(() => {
        const w = window as unknown as { __violations: string[]; __pwned?: unknown };
        return [...w.__violations, ...(w.__pwned === undefined ? [] : [`a script ran: ${w.__pwned}`])];
      });
      return [...errors, ...found];
    },
  };
}

/** A probe app: a jail on 401 at /login, a probe route that counts its runs, the console at /_jk/console/. */
export interface ProbeApp {
  readonly base: string;
  readonly console: string;
  /** How many times the probe handler really ran. */
  runs(): number;
  close(): Promise<void>;
}

export async function expressApp(keeper: Jailkeeper): Promise<ProbeApp> {
  let runs = 0;
  const app = express();
  app.use(jailkeeper(keeper));
  app.use('/_jk', expressAdmin(keeper, { token: TOKEN, console: true }));
  app.post('/login', (_req, res) => res.status(401).json({ error: 'wrong password' }));
  app.get('/probe', (_req, res) => {
    runs++;
    res.send('ok');
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    console: `${base}/_jk/console/`,
    runs: () => runs,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export async function fastifyApp(keeper: Jailkeeper): Promise<ProbeApp> {
  let runs = 0;
  const app = Fastify({ forceCloseConnections: true });
  await app.register(jailkeeperPlugin, { keeper });
  await app.register(fastifyAdmin, { prefix: '/_jk', keeper, token: TOKEN, console: true });
  app.post('/login', async (_req, reply) => reply.code(401).send({ error: 'wrong password' }));
  app.get('/probe', async () => {
    runs++;
    return 'ok';
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  return {
    base,
    console: `${base}/_jk/console/`,
    runs: () => runs,
    close: () => app.close(),
  };
}

/** One HTTP request from a loopback address of the test's choice; resolves to the status. */
export function hit(url: string, method: string, from: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const r = request(url, { method, localAddress: from, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    r.on('error', reject);
    r.end();
  });
}

/** Presses Tab until the focused element matches `selector` (at most 80 presses); fails otherwise. */
export async function tabTo(page: Page, selector: string): Promise<void> {
  for (let i = 0; i < 80; i++) {
    if (await page.evaluate((s) => document.activeElement?.matches(s) === true, selector)) return;
    await page.keyboard.press('Tab');
  }
  throw new Error(`Tab never reached ${selector}`);
}

/** Signs in by keyboard only: type the name and token, press Enter. */
export async function signIn(page: Page, url: string, token = TOKEN, name = 'alice'): Promise<void> {
  await page.goto(url);
  await page.locator('#name').waitFor();
  await tabTo(page, '#name');
  await page.keyboard.type(name);
  await page.keyboard.press('Tab');
  await page.keyboard.type(token);
  await page.keyboard.press('Enter');
}

/** What a timed action does: click an element, or search the bans table for a text. */
export type TableAction = { click: string } | { search: string };

/**
 * Times one action on the bans table in the browser: from just before the action until the table
 * shows the answer (its data-version changed) and the next frame is painted.
 */
export async function timeTableAction(page: Page, action: TableAction): Promise<number> {
  // Written as text: the test's TypeScript transform would wrap named functions in a helper the page lacks.
  return page.evaluate(`(async (a) => {
    const before = document.querySelector('table.bans').dataset.version;
    const started = performance.now();
    if ('click' in a) document.querySelector(a.click).click();
    else {
      document.querySelector('#ban-search').value = a.search;
      document.querySelector('form.search').requestSubmit();
    }
    await new Promise((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error('the table did not change within 10 s')), 10000);
      (function check() {
        if (document.querySelector('table.bans').dataset.version !== before) {
          clearTimeout(deadline);
          requestAnimationFrame(() => resolve());
        } else requestAnimationFrame(check);
      })();
    });
    return performance.now() - started;
  })(${JSON.stringify(action)})`);
}
