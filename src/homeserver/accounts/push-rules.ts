/**
 * Push rules (spec "Push Rules"). A user's whole ruleset lives in their global
 * account data as `m.push_rules`, the form /sync delivers it in, so clients
 * (matrix-js-sdk reads it from /sync) and the /pushrules API see one copy.
 * New accounts get the spec's server-default rules (default-push-rules.json,
 * with the user's ID and localpart filled in). Edits are pure functions from
 * one ruleset to the next, applied inside one storage write.
 */
import type { JsonObject } from '../../core/index.js';
import { MatrixError, badJson, invalidParam, missingParam, notFound } from '../http/errors.js';
import defaults from './default-push-rules.json' with { type: 'json' };
import { localpartOf } from './users.js';
import { BOUNDS, checkListLength } from '../limits/bounds.js';

export const PUSH_RULES_TYPE = 'm.push_rules';
export const RULE_KINDS = ['override', 'content', 'room', 'sender', 'underride'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

export interface PushRule {
  rule_id: string;
  default: boolean;
  enabled: boolean;
  actions: unknown[];
  conditions?: unknown[];
  pattern?: string;
}

export type Ruleset = Record<RuleKind, PushRule[]>;

/** The server-default rules for one user. */
export function defaultPushRules(userId: string): { global: Ruleset } {
  const fill = (value: unknown): unknown => {
    if (value === '[user_id]') return userId;
    if (value === '[localpart]') return localpartOf(userId);
    if (Array.isArray(value)) return value.map(fill);
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fill(v)]));
    }
    return value;
  };
  return fill(defaults) as { global: Ruleset };
}

/** The ruleset in stored account data, or the defaults if none is stored; every kind present. */
export function rulesetFrom(content: JsonObject | undefined, userId: string): Ruleset {
  const global = (content?.global ?? undefined) as Partial<Ruleset> | undefined;
  if (!global || typeof global !== 'object') return defaultPushRules(userId).global;
  const out = {} as Ruleset;
  for (const kind of RULE_KINDS) out[kind] = Array.isArray(global[kind]) ? [...global[kind]!] : [];
  return out;
}

export function isRuleKind(kind: string): kind is RuleKind {
  return (RULE_KINDS as readonly string[]).includes(kind);
}

/** Scope and kind from the path; anything but `global` and the five kinds is not an API this server has. */
export function checkRulePath(scope: string, kind?: string): void {
  if (scope !== 'global') throw new MatrixError(400, 'M_UNRECOGNIZED', `Unknown push rule scope ${scope}`);
  if (kind !== undefined && !isRuleKind(kind)) throw new MatrixError(400, 'M_UNRECOGNIZED', `Unknown push rule kind ${kind}`);
}

export function findRule(ruleset: Ruleset, kind: RuleKind, ruleId: string): PushRule {
  const rule = ruleset[kind].find((r) => r.rule_id === ruleId);
  if (!rule) throw notFound('Push rule not found');
  return rule;
}

/** Checks an `actions` array: strings, or objects (tweaks); each at most as deep as JSON allows. */
export function checkActions(actions: unknown): unknown[] {
  if (actions === undefined) throw missingParam('Missing parameter: actions');
  if (!Array.isArray(actions)) throw badJson('actions must be an array');
  checkListLength('actions', actions, BOUNDS.pushRuleItems);
  for (const action of actions) {
    if (typeof action === 'string') continue;
    if (action !== null && typeof action === 'object' && !Array.isArray(action)) {
      const tweak = (action as Record<string, unknown>).set_tweak;
      if (typeof tweak !== 'string') throw badJson('action objects must have a string set_tweak');
      continue;
    }
    throw badJson('actions must be strings or objects');
  }
  return actions;
}

function checkConditions(conditions: unknown): unknown[] {
  if (conditions === undefined) return [];
  if (!Array.isArray(conditions)) throw badJson('conditions must be an array');
  checkListLength('conditions', conditions, BOUNDS.pushRuleItems);
  for (const condition of conditions) {
    if (condition === null || typeof condition !== 'object' || Array.isArray(condition)) {
      throw badJson('conditions must be objects');
    }
    if (typeof (condition as Record<string, unknown>).kind !== 'string') throw badJson('each condition needs a string kind');
  }
  return conditions;
}

/** The most important position a user-defined rule of `kind` can take (the master rule stays first). */
function firstUserPosition(rules: PushRule[], kind: RuleKind): number {
  return kind === 'override' && rules[0]?.rule_id === '.m.rule.master' ? 1 : 0;
}

/**
 * PUT /pushrules/global/{kind}/{ruleId}: adds or updates a user-defined rule.
 * A new rule goes before every other user-defined rule of its kind, or next to
 * `before`/`after`; an updated one keeps its place (and enabled flag) unless
 * one of those is given.
 */
export function putRule(
  ruleset: Ruleset,
  kind: RuleKind,
  ruleId: string,
  body: Record<string, unknown>,
  position: { before?: string; after?: string },
): Ruleset {
  if (ruleId.length === 0 || ruleId.startsWith('.')) {
    throw invalidParam('Rule IDs starting with "." are reserved for server-default rules');
  }
  if (ruleId.includes('/') || ruleId.includes('\\')) throw invalidParam('Rule IDs cannot contain slashes');
  const actions = checkActions(body.actions);
  const rule: PushRule = { rule_id: ruleId, default: false, enabled: true, actions };
  if (kind === 'override' || kind === 'underride') rule.conditions = checkConditions(body.conditions);
  if (kind === 'content') {
    if (body.pattern === undefined) throw missingParam('Content rules need a pattern');
    if (typeof body.pattern !== 'string') throw badJson('pattern must be a string');
    rule.pattern = body.pattern;
  }
  if (kind === 'room' && !ruleId.startsWith('!')) throw invalidParam('Room rule IDs must be room IDs');
  if (kind === 'sender' && !ruleId.startsWith('@')) throw invalidParam('Sender rule IDs must be user IDs');

  const rules = [...ruleset[kind]];
  const existingAt = rules.findIndex((r) => r.rule_id === ruleId);
  if (existingAt >= 0) rule.enabled = rules[existingAt]!.enabled;
  const anchorId = position.before ?? position.after;
  if (anchorId === undefined && existingAt >= 0) {
    rules[existingAt] = rule;
    return { ...ruleset, [kind]: rules };
  }
  if (existingAt >= 0) rules.splice(existingAt, 1);
  let at = firstUserPosition(rules, kind);
  if (anchorId !== undefined) {
    if (anchorId.startsWith('.')) throw new MatrixError(400, 'M_UNKNOWN', 'Rules cannot be placed relative to server-default rules');
    const anchor = rules.findIndex((r) => r.rule_id === anchorId);
    if (anchor < 0) throw new MatrixError(400, 'M_UNKNOWN', `before/after rule not found: ${anchorId}`);
    // `before` wins when both are given: the rule becomes the next most important relative to it.
    at = position.before !== undefined ? anchor : anchor + 1;
  }
  rules.splice(at, 0, rule);
  return { ...ruleset, [kind]: rules };
}

/** DELETE /pushrules/global/{kind}/{ruleId}: server-default rules can be disabled, not deleted. */
export function deleteRule(ruleset: Ruleset, kind: RuleKind, ruleId: string): Ruleset {
  const rule = findRule(ruleset, kind, ruleId);
  if (rule.default) throw invalidParam('Server-default rules cannot be deleted; disable them instead');
  return { ...ruleset, [kind]: ruleset[kind].filter((r) => r.rule_id !== ruleId) };
}

/** PUT .../enabled and .../actions: change one attribute of any rule, defaults included. */
export function patchRule(ruleset: Ruleset, kind: RuleKind, ruleId: string, patch: Partial<Pick<PushRule, 'enabled' | 'actions'>>): Ruleset {
  findRule(ruleset, kind, ruleId);
  return { ...ruleset, [kind]: ruleset[kind].map((r) => (r.rule_id === ruleId ? { ...r, ...patch } : r)) };
}

/** The account data content for a ruleset. */
export function pushRulesContent(ruleset: Ruleset): JsonObject {
  return { global: ruleset } as unknown as JsonObject;
}
