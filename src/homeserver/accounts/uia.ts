/**
 * User-interactive authentication (spec "User-Interactive Authentication
 * API") for the endpoints that need it: registration (m.login.dummy), and
 * device deletion, password change and deactivation (m.login.password, the
 * user proving again that they know their password). Every flow here has one
 * stage. Sessions live in memory for ten minutes and are bound to the
 * operation that started them, so a session completed for one request cannot
 * authorise another. Password checks happen before the caller's storage write.
 */
import { randomId, type HomeserverContext } from '../context.js';
import { MatrixError, badJson } from '../http/errors.js';
import { loginUserId } from './users.js';
import { verifyPassword } from './passwords.js';

export interface AuthFlow {
  stages: string[];
}

interface UiaSession {
  operation: string;
  expiresAt: number;
  completed: string[];
}

const SESSION_TTL_MS = 10 * 60 * 1000;
/** Open registration lets anyone start sessions; past this many the oldest are dropped. */
const MAX_SESSIONS = 10_000;

/**
 * The spec's 401: flows, params and session, plus the completed stages, and
 * `errcode`/`error` only when an attempt at a stage failed.
 */
export class UiaRequired extends MatrixError {
  readonly failed: boolean;
  constructor(
    readonly body: Record<string, unknown>,
    failure?: { errcode: string; message: string },
  ) {
    super(401, failure?.errcode ?? 'M_FORBIDDEN', failure?.message ?? 'Additional authentication is required', body);
    this.failed = failure !== undefined;
  }
  override toJSON(): Record<string, unknown> {
    return this.failed ? { errcode: this.errcode, error: this.message, ...this.body } : { ...this.body };
  }
}

export interface UiaCheck {
  /** The `auth` object of the request body, as received. */
  auth: unknown;
  flows: AuthFlow[];
  /** What the request does, e.g. "DELETE /devices/ABC"; a session is only good for one operation. */
  operation: string;
  /** For m.login.password: the user who must prove their password (the requester). */
  userId?: string;
  /** For m.login.password: the requester's stored password hash. */
  passwordHash?: string;
  serverName: string;
}

export class InteractiveAuth {
  private readonly sessions = new Map<string, UiaSession>();

  constructor(private readonly ctx: Pick<HomeserverContext, 'clock' | 'randomBytes'>) {}

  /**
   * Resolves when a flow is complete; otherwise throws the spec's 401 (with
   * `errcode` when an attempt failed), or 400/403 for malformed or misused auth.
   */
  async check(check: UiaCheck): Promise<void> {
    const now = this.ctx.clock.now();
    this.prune(now);
    const { auth } = check;
    if (auth === undefined || auth === null) throw this.required(check, this.newSession(check, now));
    if (typeof auth !== 'object' || Array.isArray(auth)) throw badJson('auth must be an object');
    const dict = auth as Record<string, unknown>;
    if (dict.session !== undefined && typeof dict.session !== 'string') throw badJson('auth.session must be a string');
    if (dict.type !== undefined && typeof dict.type !== 'string') throw badJson('auth.type must be a string');

    let sessionId = dict.session as string | undefined;
    let session: UiaSession;
    if (sessionId === undefined) {
      sessionId = this.newSession(check, now);
      session = this.sessions.get(sessionId)!;
    } else {
      const found = this.sessions.get(sessionId);
      if (!found) throw new MatrixError(400, 'M_UNKNOWN', `Unknown session ID: ${sessionId}`);
      if (found.operation !== check.operation) {
        throw new MatrixError(403, 'M_FORBIDDEN', 'Requested operation has changed during the UI authentication session');
      }
      session = found;
    }

    const type = dict.type as string | undefined;
    if (type !== undefined && !session.completed.includes(type)) {
      if (!check.flows.some((flow) => flow.stages.includes(type))) {
        throw this.required(check, sessionId, 'M_UNRECOGNIZED', `Authentication type ${type} is not offered here`);
      }
      const failure = await this.attempt(type, dict, check);
      if (failure) throw this.required(check, sessionId, failure.errcode, failure.message, failure.status);
      session.completed.push(type);
    }
    if (check.flows.some((flow) => flow.stages.every((stage) => session.completed.includes(stage)))) {
      this.sessions.delete(sessionId);
      return;
    }
    throw this.required(check, sessionId);
  }

  /** Checks one stage; returns why it failed, if it did. */
  private async attempt(
    type: string,
    dict: Record<string, unknown>,
    check: UiaCheck,
  ): Promise<{ errcode: string; message: string; status?: number } | undefined> {
    if (type === 'm.login.dummy') return undefined;
    if (type === 'm.login.password') {
      const user = passwordLoginUser(dict);
      if (user === undefined) return { errcode: 'M_BAD_JSON', message: 'auth needs an m.id.user identifier' };
      if (typeof dict.password !== 'string') return { errcode: 'M_BAD_JSON', message: 'auth.password must be a string' };
      const userId = loginUserId(user, check.serverName);
      if (userId !== check.userId) {
        // Authenticating as someone else is not a wrong password: it is refused outright.
        return { errcode: 'M_FORBIDDEN', message: 'Requester does not match authenticated user', status: 403 };
      }
      if (!(await verifyPassword(check.passwordHash, dict.password))) {
        return { errcode: 'M_FORBIDDEN', message: 'Invalid password' };
      }
      return undefined;
    }
    return { errcode: 'M_UNRECOGNIZED', message: `Unsupported authentication type ${type}` };
  }

  private newSession(check: UiaCheck, now: number): string {
    const id = randomId(this.ctx, 24);
    this.sessions.set(id, { operation: check.operation, expiresAt: now + SESSION_TTL_MS, completed: [] });
    if (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    return id;
  }

  private required(check: UiaCheck, sessionId: string, errcode?: string, message?: string, status = 401): MatrixError {
    if (status !== 401 && errcode && message) return new MatrixError(status, errcode, message);
    const completed = this.sessions.get(sessionId)?.completed ?? [];
    const body: Record<string, unknown> = { flows: check.flows, params: {}, session: sessionId };
    if (completed.length > 0) body.completed = [...completed];
    return new UiaRequired(body, errcode && message ? { errcode, message } : undefined);
  }

  private prune(now: number): void {
    for (const [id, session] of this.sessions) if (session.expiresAt <= now) this.sessions.delete(id);
  }
}

/** The `user` of an m.login.password auth dict: identifier m.id.user, or the legacy top-level `user`. */
export function passwordLoginUser(dict: Record<string, unknown>): string | undefined {
  const identifier = dict.identifier;
  if (identifier !== undefined) {
    if (identifier === null || typeof identifier !== 'object' || Array.isArray(identifier)) return undefined;
    const id = identifier as Record<string, unknown>;
    if (id.type !== 'm.id.user' || typeof id.user !== 'string') return undefined;
    return id.user;
  }
  return typeof dict.user === 'string' ? dict.user : undefined;
}
