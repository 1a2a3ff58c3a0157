/**
 * The push rules API (spec "Push Rules: API"): read the whole ruleset, one
 * scope, one kind or one rule; add, replace and delete user-defined rules; and
 * enable, disable or re-action any rule. Rules are stored as the user's
 * m.push_rules account data (accounts/push-rules.ts), so each edit is one
 * read-modify-write transaction and reaches /sync like any account data.
 */
import { badJson, missingParam } from '../../http/errors.js';
import { clientRoute, type RouteDefinition } from '../../http/router.js';
import {
  PUSH_RULES_TYPE,
  checkActions,
  checkRulePath,
  deleteRule,
  findRule,
  patchRule,
  pushRulesContent,
  putRule,
  rulesetFrom,
  type RuleKind,
  type Ruleset,
} from '../../accounts/push-rules.js';
import type { AccountsDeps } from './common.js';

export function pushRuleRoutes({ services }: AccountsDeps): RouteDefinition[] {
  const { ctx } = services;

  async function load(userId: string): Promise<Ruleset> {
    const record = await ctx.storage.read((txn) => txn.accountData.get(userId, PUSH_RULES_TYPE));
    return rulesetFrom(record?.content, userId);
  }

  /** Applies `edit` (which throws on bad requests, leaving storage untouched) in one write. */
  async function edit(userId: string, change: (ruleset: Ruleset) => Ruleset): Promise<void> {
    await ctx.storage.write(async (txn) => {
      const record = await txn.accountData.get(userId, PUSH_RULES_TYPE);
      await txn.accountData.put(userId, PUSH_RULES_TYPE, pushRulesContent(change(rulesetFrom(record?.content, userId))));
    });
  }

  const routes: RouteDefinition[] = [
    // GET /_matrix/client/v3/pushers (spec: "Push notifications"): a server in a tab has no push
    // gateway to call, so no pusher is ever registered; the list is truthfully empty.
    clientRoute('GET', '/pushers', 'required', async () => ({ pushers: [] })),
  ];
  for (const path of ['/pushrules', '/pushrules/']) {
    // GET /_matrix/client/v3/pushrules/ (spec: "Push Rules: API")
    routes.push(clientRoute('GET', path, 'required', async ({ requester }) => ({ global: await load(requester.userId) })));
  }
  routes.push(
    // GET /_matrix/client/v3/pushrules/{scope}/ (Synapse serves the scope's ruleset, as the spec's "drill-down" suggests)
    clientRoute('GET', '/pushrules/{scope}/', 'required', async ({ requester, params }) => {
      checkRulePath(params.scope!);
      return load(requester.userId);
    }),
    clientRoute('GET', '/pushrules/{scope}', 'required', async ({ requester, params }) => {
      checkRulePath(params.scope!);
      return load(requester.userId);
    }),

    // GET /_matrix/client/v3/pushrules/{scope}/{kind}/{ruleId} (spec: "Push Rules: API"); an empty ruleId lists the kind.
    clientRoute('GET', '/pushrules/{scope}/{kind}/{ruleId}', 'required', async ({ requester, params }) => {
      checkRulePath(params.scope!, params.kind);
      const ruleset = await load(requester.userId);
      const kind = params.kind as RuleKind;
      if (params.ruleId === '') return ruleset[kind];
      return findRule(ruleset, kind, params.ruleId!);
    }),

    // PUT /_matrix/client/v3/pushrules/{scope}/{kind}/{ruleId} (spec: "Push Rules: API")
    clientRoute('PUT', '/pushrules/{scope}/{kind}/{ruleId}', 'required', async ({ requester, params, query, json }) => {
      checkRulePath(params.scope!, params.kind);
      const body = await json();
      const position = { before: query.get('before') ?? undefined, after: query.get('after') ?? undefined };
      await edit(requester.userId, (ruleset) => putRule(ruleset, params.kind as RuleKind, params.ruleId!, body, position));
      return {};
    }),

    // DELETE /_matrix/client/v3/pushrules/{scope}/{kind}/{ruleId} (spec: "Push Rules: API")
    clientRoute('DELETE', '/pushrules/{scope}/{kind}/{ruleId}', 'required', async ({ requester, params }) => {
      checkRulePath(params.scope!, params.kind);
      await edit(requester.userId, (ruleset) => deleteRule(ruleset, params.kind as RuleKind, params.ruleId!));
      return {};
    }),

    // GET /_matrix/client/v3/pushrules/{scope}/{kind}/{ruleId}/enabled (spec: "Push Rules: API")
    clientRoute('GET', '/pushrules/{scope}/{kind}/{ruleId}/enabled', 'required', async ({ requester, params }) => {
      checkRulePath(params.scope!, params.kind);
      return { enabled: findRule(await load(requester.userId), params.kind as RuleKind, params.ruleId!).enabled };
    }),

    // PUT /_matrix/client/v3/pushrules/{scope}/{kind}/{ruleId}/enabled (spec: "Push Rules: API")
    clientRoute('PUT', '/pushrules/{scope}/{kind}/{ruleId}/enabled', 'required', async ({ requester, params, json }) => {
      checkRulePath(params.scope!, params.kind);
      const body = await json();
      if (body.enabled === undefined) throw missingParam('Missing parameter: enabled');
      if (typeof body.enabled !== 'boolean') throw badJson('enabled must be a boolean');
      const enabled = body.enabled;
      await edit(requester.userId, (ruleset) => patchRule(ruleset, params.kind as RuleKind, params.ruleId!, { enabled }));
      return {};
    }),

    // GET /_matrix/client/v3/pushrules/{scope}/{kind}/{ruleId}/actions (spec: "Push Rules: API")
    clientRoute('GET', '/pushrules/{scope}/{kind}/{ruleId}/actions', 'required', async ({ requester, params }) => {
      checkRulePath(params.scope!, params.kind);
      return { actions: findRule(await load(requester.userId), params.kind as RuleKind, params.ruleId!).actions };
    }),

    // PUT /_matrix/client/v3/pushrules/{scope}/{kind}/{ruleId}/actions (spec: "Push Rules: API")
    clientRoute('PUT', '/pushrules/{scope}/{kind}/{ruleId}/actions', 'required', async ({ requester, params, json }) => {
      checkRulePath(params.scope!, params.kind);
      const actions = checkActions((await json()).actions);
      await edit(requester.userId, (ruleset) => patchRule(ruleset, params.kind as RuleKind, params.ruleId!, { actions }));
      return {};
    }),
  );
  return routes;
}
