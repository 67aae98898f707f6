import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseIp } from '@jailkeeper/core/operator';
import { createConsoleServer } from '@jailkeeper/ops';
import { fleetBackend, fleetEvents } from '../console-backend.js';
import { CliError, EXIT } from '../errors.js';
import { RedisBackend } from '../redis-backend.js';
import { configFacts, type Io, usage, type Values } from './shared.js';

/**
 * `jailkeeper console`: the operators' console for a whole fleet, from the shared Redis store, on
 * loopback unless told otherwise. Runs until SIGINT or SIGTERM.
 */
export async function consoleCommand(values: Values, io: Io, signal: AbortSignal): Promise<void> {
  if (values.url !== undefined) {
    usage(
      "console serves a whole fleet from its Redis (--redis). One app's own console is at its admin API's /console/ (the console option).",
    );
  }
  const url = values.redis ?? io.env.REDIS_URL;
  if (url === undefined) usage('console needs the shared store: --redis URL (or REDIS_URL).');
  const port = values.port === undefined ? 9181 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    usage('--port must be a port number (0 to 65535).');
  const host = values.host ?? '127.0.0.1';
  const hostIp = parseIp(host);
  const loopback =
    host === 'localhost' ||
    (hostIp !== undefined && (hostIp.family === 4 ? hostIp.value >>> 24 === 127 : host === '::1'));
  const remoteText = values['allow-remote'];
  const allowRemote =
    remoteText === undefined
      ? false
      : remoteText === 'any'
        ? true
        : remoteText
            .split(',')
            .map((c) => c.trim())
            .filter(Boolean);
  if (!loopback && allowRemote === false) {
    usage(
      `--host ${host} listens beyond loopback: say who may connect with --allow-remote CIDR[,CIDR...] (or any).`,
    );
  }
  let token = values.token ?? io.env.JAILKEEPER_TOKEN;
  const generated = token === undefined || token === '';
  if (generated) token = randomBytes(24).toString('base64url');
  if ((token as string).length < 16) usage('--token (or JAILKEEPER_TOKEN) must be at least 16 characters.');
  const facts = await configFacts(values);
  const events = fleetEvents();
  const redis = await RedisBackend.open(url, values.prefix ?? 'jk:', {
    jails: facts.jails,
    ignoreIp: facts.ignoreIp,
    ipv6Subnet: facts.ipv6Subnet,
    onBan: events.onBan,
    onUnban: events.onUnban,
  });
  const line = (_obj: object, message?: string) => io.err(`${message ?? ''}\n`);
  let server: ReturnType<typeof createConsoleServer>;
  try {
    server = createConsoleServer(fleetBackend(redis, events, facts.resolved), {
      token: token as string,
      allowRemote,
      logger: { info: line, warn: line, error: line },
    });
  } catch (error) {
    await redis.close();
    throw error;
  }
  const http = createServer(server.node);
  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(port, host, () => resolve());
    });
  } catch (error) {
    server.close();
    await redis.close();
    throw new CliError(
      EXIT.usage,
      `Cannot listen on ${host}:${port} (${(error as NodeJS.ErrnoException).code}); choose another --port or --host.`,
    );
  }
  const shown = host.includes(':') ? `[${host}]` : host;
  io.err(
    `jailkeeper console for ${redis.where}: http://${shown}:${(http.address() as AddressInfo).port}/console/\n`,
  );
  if (generated) {
    io.err(
      `Sign in with this token, made for this run (set JAILKEEPER_TOKEN or --token to choose one): ${token}\n`,
    );
  }
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
  server.close();
  http.closeAllConnections();
  await new Promise((resolve) => http.close(resolve));
  await redis.close();
}
