import type { Jailkeeper } from '@jailkeeper/core';
import type { ClientIdentity } from '@jailkeeper/core/adapter';
import type { JailkeeperBinding } from './binding.js';

/**
 * Injectable: the keeper, and the request-level calls. `req` is what Nest hands a handler, a
 * guard or an exception filter (`@Req()`, `host.switchToHttp().getRequest()`), on Express or
 * Fastify.
 */
export class JailkeeperService {
  readonly keeper: Jailkeeper;
  readonly #binding: JailkeeperBinding;

  constructor(binding: JailkeeperBinding) {
    this.keeper = binding.keeper;
    this.#binding = binding;
  }

  /** The client jailkeeper resolved for this request; undefined when it was not admitted (skipped). */
  client(req: unknown): ClientIdentity | undefined {
    return this.#binding.client(req);
  }

  /**
   * Names the account this request tries (a login's user name, or better the app's user id once
   * it has looked the user up), after the body is parsed: the jails keyed by account judge it now.
   * Resolves true to go on; false when jailkeeper refused the request (it has answered: return
   * without answering). See docs/accounts.md.
   * @example
   * @Post('login')
   * async login(@Req() req: Request, @Res({ passthrough: true }) res: Response, @Body() body: LoginDto) {
   *   if (!(await this.jailkeeper.account(req, body.username))) return;
   *   // check the password...
   * }
   */
  account(req: unknown, name: unknown): Promise<boolean> {
    return this.#binding.account(req, name);
  }

  /**
   * Marks this request failed, whatever its status (a GraphQL error answered with 200, a failure
   * only the app knows): counted when the response closes, in every jail that applies, or only in
   * `jails`. From a handler or an exception filter. Returns false when the request was not
   * admitted. Throws JK_ERR_UNKNOWN_JAIL for a jail that is not configured.
   */
  fail(req: unknown, options?: { jails?: string[] }): boolean {
    return this.#binding.fail(req, options);
  }
}
