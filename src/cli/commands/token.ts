/** `understudy token create|list|revoke`: the API's operators and their bearer tokens. */
import type { Command } from 'commander';
import { UnderstudyError } from '../../core/index.ts';
import { ensureSchemas } from '../../store/index.ts';
import {
  apiSchema,
  createApiToken,
  listApiTokens,
  revokeApiToken,
  tokenScopes,
  type TokenInfo,
  type TokenScope,
} from '../../api/index.ts';
import { type App } from '../../app/index.ts';
import { table, type CliContext } from '../context.ts';

function withStore<T>(ctx: CliContext, fn: (manager: App) => T): T {
  const manager = ctx.openApp();
  try {
    ensureSchemas(manager.db, [apiSchema]);
    return fn(manager);
  } finally {
    manager.close();
  }
}

export function registerTokenCommands(program: Command, ctx: CliContext): void {
  const token = program.command('token').description('API tokens: one per operator, read or admin scope');

  token
    .command('create <operator>')
    .description('make a token (printed once; only its hash is stored)')
    .option('--scope <scope>', `${tokenScopes.join(' | ')}`, 'read')
    .action(async (operator: string, o: { scope: string }) => {
      if (!tokenScopes.includes(o.scope as TokenScope))
        throw new UnderstudyError(
          'INVALID_ARGUMENT',
          `--scope: "${o.scope}" is not one of ${tokenScopes.join(', ')}`,
        );
      const api = ctx.api();
      const request = { operator, scope: o.scope as TokenScope };
      const created = api
        ? await api
            .request<TokenInfo & { token: string }>('POST', '/v1/tokens', request)
            .then(({ token, ...info }) => ({ token, info }))
        : withStore(ctx, (m) => createApiToken(m.db, request));
      ctx.print(
        { token: created.token, ...created.info },
        () =>
          `${created.token}\n(token ${created.info.id} for ${operator}, scope ${o.scope}; it is not shown again)`,
      );
    });

  token
    .command('list')
    .description('tokens with their operator, scope and last use (never the tokens themselves)')
    .action(async () => {
      const api = ctx.api();
      const tokens = api
        ? (await api.request<{ tokens: TokenInfo[] }>('GET', '/v1/tokens')).tokens
        : withStore(ctx, (m) => listApiTokens(m.db));
      ctx.print(tokens, () =>
        tokens.length === 0
          ? 'no API tokens; `understudy serve` makes the first, `understudy token create` more'
          : table(
              ['ID', 'OPERATOR', 'SCOPE', 'CREATED', 'LAST USED', 'REVOKED'],
              tokens.map((t) => [
                t.id,
                t.operator,
                t.scope,
                t.createdAt.slice(0, 19),
                t.lastUsedAt?.slice(0, 19) ?? '-',
                t.revokedAt?.slice(0, 19) ?? '-',
              ]),
            ),
      );
    });

  token
    .command('revoke <id>')
    .description('revoke a token at once')
    .action(async (id: string) => {
      const api = ctx.api();
      const info = api
        ? (await api.request<{ token: TokenInfo }>('DELETE', `/v1/tokens/${encodeURIComponent(id)}`)).token
        : withStore(ctx, (m) => revokeApiToken(m.db, id));
      ctx.print(info, () => `token ${id} of ${info.operator} revoked`);
    });
}
