/**
 * Outbound requests to other servers, through the FederationClient the
 * replication layer injects (ReplicationPort.setClient). Without one the
 * server is offline: remote work fails with a clear Matrix error while local
 * work goes on. Every answer is untrusted JSON and passes the JSON ingress
 * before anyone reads it.
 */
import type { HomeserverContext } from '../context.js';
import { checkJsonValue, type JsonLimits } from '../http/json-ingress.js';
import { MatrixError } from '../http/errors.js';
import type { FederationClient } from './types.js';

export const offline = (what: string) =>
  new MatrixError(502, 'M_UNKNOWN', `Cannot ${what}: this server is not connected to other servers right now`);

export class RemoteServers {
  private client: FederationClient | undefined;

  constructor(private readonly ctx: HomeserverContext) {}

  setClient(client: FederationClient | undefined): void {
    this.client = client;
  }

  get online(): boolean {
    return this.client !== undefined;
  }

  /** Servers connected now, or undefined when the client cannot say (then any server may be tried). */
  connected(): Set<string> | undefined {
    const peers = this.client?.peers?.();
    return peers ? new Set(peers.map((p) => p.server)) : undefined;
  }

  /**
   * One request; the body of a 200 answer, checked by the ingress. Other statuses become a MatrixError
   * carrying the remote errcode (the caller may try another server).
   */
  async call(
    server: string,
    what: string,
    request: { method: 'GET' | 'PUT' | 'POST'; path: string; body?: unknown },
    timeoutMs = 30_000,
    jsonLimits: Partial<JsonLimits> = {},
  ): Promise<Record<string, unknown>> {
    if (!this.client) throw offline(what);
    if (server === this.ctx.serverName) throw new MatrixError(400, 'M_INVALID_PARAM', `Cannot ${what} over federation with this server itself`);
    let answer: { status: number; body: unknown };
    try {
      answer = await this.client.request(server, request, { timeoutMs });
    } catch (error) {
      throw new MatrixError(502, 'M_UNKNOWN', `Cannot ${what}: ${server} is unreachable (${error instanceof Error ? error.message : String(error)})`);
    }
    const body = answer.body;
    try {
      checkJsonValue(body, jsonLimits);
    } catch {
      throw new MatrixError(502, 'M_UNKNOWN', `Cannot ${what}: ${server} answered with unusable JSON`);
    }
    if (answer.status !== 200 || body === null || typeof body !== 'object' || Array.isArray(body)) {
      const remote = body !== null && typeof body === 'object' ? (body as { errcode?: unknown; error?: unknown }) : {};
      const errcode = typeof remote.errcode === 'string' ? remote.errcode : 'M_UNKNOWN';
      const status = answer.status >= 400 && answer.status < 500 ? answer.status : 502;
      throw new MatrixError(status, errcode, `${server} refused to ${what}: ${typeof remote.error === 'string' ? remote.error : answer.status}`);
    }
    return body as Record<string, unknown>;
  }
}
