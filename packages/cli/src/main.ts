import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { JailkeeperError } from '@jailkeeper/core';
import { formatDuration, toBanTimeMs } from '@jailkeeper/core/operator';
import { EXPORT_FORMATS } from '@jailkeeper/ops';
import { type Io, OPTIONS, openBackend, printJson, usage } from './commands/shared.js';
import { checkConfig, loadConfig, parseRoutes } from './config.js';
import { CliError, EXIT } from './errors.js';
import { bansTable, sortBans, statusText } from './format.js';
import modulePath from './module-path.cjs';

/** The CLI's usage text, printed by `jailkeeper --help` and after a wrong argument. */
export const USAGE = `Usage: jailkeeper <command> [options]

Commands (against --redis URL / REDIS_URL, or --url of an app's admin API with --token):
  status [jail]                          jails, failing and banned clients
  bans [--jail J]                        active bans with time left, the newest ban first
  ban <ip> [--jail J] [--for 1h] [--reason text]
  unban <ip> [--jail J] | unban --all [--jail J]
  ignore add|remove <ip|cidr> | ignore list
  export --format F [--name N] [--jail J] [--out FILE] [--watch] [--interval 10s] [--exec CMD]
         formats: ${EXPORT_FORMATS.join(', ')}

The console for a whole fleet (a web page on loopback; sign in with the token):
  console [--port 9181] [--host 127.0.0.1] [--allow-remote CIDR,...|any] [--token T] [--config FILE]

Commands on files:
  check-config <file> [--routes FILE]    every problem of a config, with its code; with the app's
                                         routes, the rules that miss the routes below them
  replay <access.log> --config <file> [--format combined|json] [--all] [--explain <ip>] [--no-progress]
  import-fail2ban <dir|jail.local> [--filters DIR] [--out FILE]

Common options:
  --redis URL   --prefix jk:   --url URL   --token T (or JAILKEEPER_TOKEN)
  --config FILE (jail names and ignoreIp for status and ban)   --json   --help   --version

Exit codes: 0 ok, 1 problems found, 2 wrong arguments, 3 Redis or the app unreachable,
4 token or caller refused, 5 operation refused (invalid address, unknown jail, ignored client).`;

/** A text file's contents, or standard input for `-`; a missing file is a usage error. */
async function readText(file: string): Promise<string> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new CliError(EXIT.usage, `Cannot read ${file}: ${(error as Error).message}`);
  }
}

/** The CLI's version, from its package.json (a folder above both src/ and dist/). */
function version(): string {
  return (createRequire(modulePath)('../package.json') as { version: string }).version;
}

async function run(argv: string[], io: Io, signal: AbortSignal): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    usage((error as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, ...args] = positionals;
  if (values.version) {
    if (command !== undefined) usage('--version takes no command: jailkeeper --version.');
    io.out(`${version()}\n`);
    return EXIT.ok;
  }
  if (values.help || command === undefined || command === 'help') {
    io.out(`${USAGE}\n`);
    return command === undefined && !values.help ? EXIT.usage : EXIT.ok;
  }
  const arity = (min: number, max: number, shape: string) => {
    if (args.length < min || args.length > max) usage(`Usage: jailkeeper ${command} ${shape}`);
  };

  switch (command) {
    case 'check-config': {
      arity(1, 1, '<file>');
      const file = args[0] as string;
      let problems: Array<{ code: string; option: string; message: string }>;
      const routes =
        values.routes === undefined ? undefined : parseRoutes(await readText(values.routes), values.routes);
      try {
        problems = checkConfig(await loadConfig(file), routes === undefined ? {} : { routes });
      } catch (error) {
        if (error instanceof CliError && error.exitCode === EXIT.problems) {
          problems = [
            {
              code: error.code ?? 'JK_ERR_INVALID_OPTION',
              option: error.option ?? '',
              message: error.message,
            },
          ];
        } else throw error;
      }
      if (values.json) printJson(io, { ok: problems.length === 0, problems });
      else if (problems.length === 0) io.out(`OK: ${file} is a valid jailkeeper configuration.\n`);
      else
        io.out(
          `${problems.map((p) => `${p.code} ${p.option || '(file)'}: ${p.message}`).join('\n')}\n${problems.length} problem(s) in ${file}.\n`,
        );
      return problems.length === 0 ? EXIT.ok : EXIT.problems;
    }
    case 'replay':
      arity(1, 1, '<access.log> --config <file>');
      await (await import('./commands/replay-command.js')).replayCommand(args[0] as string, values, io);
      return EXIT.ok;
    case 'import-fail2ban':
      arity(1, 1, '<dir|jail.local> [--filters DIR] [--out FILE]');
      return (await import('./commands/import-fail2ban.js')).importCommand(args[0] as string, values, io);
    case 'console':
      arity(0, 0, '[--port 9181] [--host 127.0.0.1] [--allow-remote CIDR,...|any] [--token T]');
      await (await import('./commands/console.js')).consoleCommand(values, io, signal);
      return EXIT.ok;
    case 'status':
    case 'bans':
    case 'ban':
    case 'unban':
    case 'ignore':
    case 'export':
      break;
    default:
      usage(`Unknown command ${JSON.stringify(command)}.`);
  }

  // Check the arguments before connecting: a typo should not wait for a network timeout.
  if (command === 'status') arity(0, 1, '[jail]');
  if (command === 'bans' || command === 'export') arity(0, 0, '');
  if (command === 'ban') {
    arity(1, 1, '<ip> [--jail J] [--for 1h] [--reason text]');
    if (values.for !== undefined) {
      try {
        toBanTimeMs('--for', values.for);
      } catch {
        usage(
          `--for must be a duration such as 90s, 1h, 1d12h or permanent; received ${JSON.stringify(values.for)}.`,
        );
      }
    }
  }
  if (command === 'unban') {
    if (values.all) arity(0, 0, '--all [--jail J]');
    else arity(1, 1, '<ip> [--jail J]  (or --all)');
  }
  if (command === 'ignore') {
    const [sub] = args;
    if (sub === 'list') arity(1, 1, 'list');
    else if (sub === 'add' || sub === 'remove') arity(2, 2, `${sub} <ip|cidr>`);
    else usage('Usage: jailkeeper ignore add|remove <ip|cidr> | ignore list');
  }

  const backend = await openBackend(values, io);
  try {
    switch (command) {
      case 'status': {
        const status = await backend.status();
        const jail = args[0];
        if (jail !== undefined && status.jails[jail] === undefined) {
          throw new CliError(
            EXIT.rejected,
            `There is no jail ${JSON.stringify(jail)}; the jails are ${Object.keys(status.jails).join(', ')}.`,
            'JK_ERR_UNKNOWN_JAIL',
          );
        }
        if (values.json) printJson(io, jail === undefined ? status : { jail, ...status.jails[jail] });
        else io.out(`${statusText(status, jail)}\n`);
        return EXIT.ok;
      }
      case 'bans': {
        const bans = sortBans(await backend.bans(values.jail));
        if (values.json) printJson(io, bans);
        else io.out(`${bansTable(bans)}\n`);
        return EXIT.ok;
      }
      case 'ban': {
        const ban = await backend.ban(args[0] as string, {
          jail: values.jail,
          duration: values.for,
          reason: values.reason,
        });
        if (values.json) printJson(io, ban);
        else
          io.out(
            `Banned ${ban.client} in ${ban.jail} ${ban.timeLeftMs === null ? 'permanently' : `for ${formatDuration(ban.timeLeftMs)}`}.\n`,
          );
        return EXIT.ok;
      }
      case 'unban': {
        const lifted = values.all
          ? await backend.unbanAll(values.jail)
          : await backend.unban(args[0] as string, values.jail);
        if (values.json) printJson(io, lifted);
        else if (lifted.length === 0)
          io.out(
            values.all
              ? 'There were no bans to lift.\n'
              : `${args[0]} was not banned${values.jail ? ` in ${values.jail}` : ''}.\n`,
          );
        else
          io.out(
            `Lifted ${lifted.length} ban(s): ${lifted.map((b) => `${b.client} (${b.jail})`).join(', ')}.\n`,
          );
        return EXIT.ok;
      }
      case 'ignore': {
        const [sub, entry] = args as [string, string | undefined];
        if (sub === 'list') {
          const entries = await backend.ignoreList();
          if (values.json) printJson(io, entries);
          else
            io.out(entries.length === 0 ? 'The runtime ignore list is empty.\n' : `${entries.join('\n')}\n`);
          return EXIT.ok;
        }
        const changed =
          sub === 'add'
            ? await backend.ignoreAdd(entry as string)
            : await backend.ignoreRemove(entry as string);
        if (values.json) printJson(io, changed);
        else
          io.out(
            changed.length === 0
              ? `Nothing changed: ${entry} was ${sub === 'add' ? 'already' : 'not'} in the list.\n`
              : `${sub === 'add' ? 'Added' : 'Removed'} ${changed.join(', ')}.\n`,
          );
        return EXIT.ok;
      }
      case 'export':
        await (await import('./commands/export.js')).exportCommand(backend, values, io, signal);
        return EXIT.ok;
      default:
        return EXIT.usage;
    }
  } finally {
    await backend.close();
  }
}

/**
 * Runs one command line and returns its exit code; errors become a message on stderr and a code.
 * `signal` ends `export --watch`.
 */
export async function main(
  argv: string[],
  io: Io,
  signal: AbortSignal = new AbortController().signal,
): Promise<number> {
  try {
    return await run(argv, io, signal);
  } catch (error) {
    if (error instanceof CliError) {
      io.err(`jailkeeper: ${error.message}\n`);
      return error.exitCode;
    }
    if (error instanceof JailkeeperError) {
      io.err(`jailkeeper: ${(error as JailkeeperError).code}: ${(error as Error).message}\n`);
      return EXIT.rejected;
    }
    io.err(`jailkeeper: unexpected error: ${(error as Error)?.stack ?? error}\n`);
    return 70;
  }
}
