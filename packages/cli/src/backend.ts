import type { Ban } from '@jailkeeper/core/store';
import { type BanJson, banJson, type ExportFormat } from '@jailkeeper/ops';

/** A ban as the CLI prints it: the admin API's JSON, with its time left. */
export interface BanRow extends BanJson {
  readonly timeLeftMs: number | null;
}

export interface JailRow {
  currentlyFailed: number;
  totalFailed: number | null;
  currentlyBanned: number;
  totalBanned: number | null;
  bannedClients: string[];
}

/** What `jailkeeper status` shows: the store, each jail's counts and banned clients, the ignore list. */
export interface StatusReport {
  store: string;
  jails: Record<string, JailRow>;
  ignoreIp: string[];
}

/** What every command needs from where the bans live: a Redis, or a running app's admin API. */
export interface Backend {
  readonly where: string;
  status(): Promise<StatusReport>;
  bans(jail?: string): Promise<BanRow[]>;
  ban(address: string, options: { jail?: string; duration?: string; reason?: string }): Promise<BanRow>;
  unban(address: string, jail?: string): Promise<BanRow[]>;
  unbanAll(jail?: string): Promise<BanRow[]>;
  ignoreList(): Promise<string[]>;
  ignoreAdd(entry: string): Promise<string[]>;
  ignoreRemove(entry: string): Promise<string[]>;
  exportText(format: ExportFormat, options: { name?: string; jail?: string }): Promise<string>;
  /** Calls back when bans may have changed (Redis pub/sub); returns a stop function. */
  watch?(onChange: () => void): Promise<() => void>;
  close(): Promise<void>;
}

/** A ban as the admin API writes it, so both backends print the same rows. */
export function row(ban: Ban, now: number): BanRow {
  const json = banJson({ ...ban, timeLeftMs: Math.max(0, ban.endMs - now) });
  return { ...json, timeLeftMs: json.timeLeftMs ?? null };
}
