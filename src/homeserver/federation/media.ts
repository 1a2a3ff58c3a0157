/**
 * Media between servers. The federation transports carry JSON only (one
 * length-prefixed JSON frame per answer), so a file travels as ranged,
 * bounded chunks of base64 inside ordinary JSON answers:
 *
 *   GET /_matrix/federation/unstable/org.hometab/media/{serverName}/{mediaId}?offset=&length=
 *   -> 200 { "content_type", "filename"?, "size", "offset", "data": "<standard base64>" }
 *
 * Any server answers for media it holds, its own or a copy it cached, so a
 * file stays reachable while its origin is offline. The fetching half
 * (RemoteMedia) asks the origin first, then the other servers sharing a room
 * with us (connected ones first), one source at a time; it checks every
 * answer (declared size within `maxRemoteMediaBytes`, the same size and type
 * in every chunk, each chunk exactly the bytes asked for, valid base64, a
 * content type that is safe to serve or else octet-stream), stores the chunks
 * as an unfinished upload and makes them a media item only when the whole
 * file has arrived. A refused source is logged with its reason and leaves
 * nothing behind. Bytes are not signed in Matrix: a source other than the
 * origin is trusted for content as the origin would be.
 *
 * Bounds, with their defaults:
 * - MEDIA_WIRE_CHUNK_BYTES (262,144): most bytes per answer, served and asked
 *   (base64 about 350 KB, well inside the protocol's 4 MiB answer frame);
 * - config.maxRemoteMediaBytes (52,428,800): largest remote file fetched;
 * - REMOTE_MEDIA_REQUEST_TIMEOUT_MS (10,000) per chunk request, and
 *   REMOTE_MEDIA_DEADLINE_MS (120,000) for a whole file from one source;
 * - REMOTE_MEDIA_MAX_SOURCES (8): servers asked for one file.
 */
import { decodeBase64, encodeBase64 } from '../../core/index.js';
import type { MediaRecord } from '../../storage/types.js';
import { MEDIA_CHUNK_BYTES } from '../../storage/types.js';
import { randomId, type HomeserverContext } from '../context.js';
import { MatrixError, invalidParam, notFound } from '../http/errors.js';
import type { RouteDefinition } from '../http/router.js';
import { cachedMediaKey, cleanFilename, findMedia, isValidMediaId, normaliseContentType, STALE_UPLOAD_MS } from '../media/index.js';
import type { RoomEngine } from '../rooms/types.js';
import type { FederationDeps } from './deps.js';
import type { RemoteServers } from './remote.js';
import { federationRoute } from './route.js';

export const MEDIA_WIRE_PATH = '/_matrix/federation/unstable/org.hometab/media';
/** Most bytes of content in one answer, served and asked for. @default 262144 (one storage chunk) */
export const MEDIA_WIRE_CHUNK_BYTES = MEDIA_CHUNK_BYTES;
/** Time for one chunk request to be answered. @default 10000 */
export const REMOTE_MEDIA_REQUEST_TIMEOUT_MS = 10_000;
/** Time for a whole file from one source. @default 120000 */
export const REMOTE_MEDIA_DEADLINE_MS = 120_000;
/** Servers asked for one file, the origin included. @default 8 */
export const REMOTE_MEDIA_MAX_SOURCES = 8;

/** Longest base64 text of a full chunk: what the JSON check must let through in `data`. */
const MAX_CHUNK_BASE64 = Math.ceil(MEDIA_WIRE_CHUNK_BYTES / 3) * 4;

function nonNegativeInt(value: string | null, name: string, fallback: number): number {
  if (value === null) return fallback;
  if (!/^[0-9]{1,15}$/.test(value)) throw invalidParam(`"${name}" must be a non-negative integer`);
  return Number(value);
}

/** Serving: the bytes [offset, offset + length) of an item this server holds. */
export function mediaServeRoutes({ ctx }: FederationDeps): RouteDefinition[] {
  return [
    // GET /_matrix/federation/unstable/org.hometab/media/{serverName}/{mediaId}?offset=&length=
    federationRoute('GET', '/unstable/org.hometab/media/{serverName}/{mediaId}', async ({ params, query }) => {
      const record = await findMedia(ctx, params.serverName!, params.mediaId!);
      if (!record) throw notFound('Not found');
      const offset = nonNegativeInt(query.get('offset'), 'offset', 0);
      const length = Math.min(nonNegativeInt(query.get('length'), 'length', MEDIA_WIRE_CHUNK_BYTES), MEDIA_WIRE_CHUNK_BYTES);
      if (offset > record.size) throw new MatrixError(416, 'M_INVALID_PARAM', `offset ${offset} is past the end (${record.size} bytes)`);
      const data = await readRange(ctx, record, offset, Math.min(length, record.size - offset));
      return {
        content_type: record.contentType,
        ...(record.filename !== undefined ? { filename: record.filename } : {}),
        size: record.size,
        offset,
        data: encodeBase64(data),
      };
    }),
  ];
}

/** Reads a byte range of a stored item; chunks are MEDIA_CHUNK_BYTES each but the last (both writers cut them so). */
async function readRange(ctx: HomeserverContext, record: MediaRecord, offset: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let filled = 0;
  await ctx.storage.read(async (txn) => {
    for (let index = Math.floor(offset / MEDIA_CHUNK_BYTES); filled < length; index++) {
      const chunk = await txn.media.chunk(record.mediaId, index);
      if (!chunk) throw new MatrixError(500, 'M_UNKNOWN', `media ${record.mediaId} lacks chunk ${index}`);
      const start = index * MEDIA_CHUNK_BYTES;
      const from = Math.max(0, offset + filled - start);
      const taken = Math.min(chunk.byteLength - from, length - filled);
      if (taken <= 0) throw new MatrixError(500, 'M_UNKNOWN', `media ${record.mediaId} has a short chunk ${index}`);
      out.set(chunk.subarray(from, from + taken), filled);
      filled += taken;
    }
  });
  return out;
}

/** Why a source's answer was refused; the fetch logs it and moves to the next source. */
class RefusedSource extends Error {
  constructor(
    message: string,
    /** The file is over our limit: the client hears 502 M_TOO_LARGE rather than a generic failure. */
    readonly overLimit = false,
  ) {
    super(message);
  }
}

interface Described {
  contentType: string;
  filename?: string;
  size: number;
}

/** Fetching: another server's item, from its origin or any server that holds it, cached here. */
export class RemoteMedia {
  private readonly inFlight = new Map<string, Promise<MediaRecord>>();

  constructor(
    private readonly ctx: HomeserverContext,
    private readonly remote: RemoteServers,
    private readonly rooms: Pick<RoomEngine, 'sharedRooms'>,
  ) {}

  /**
   * The cached item, fetched first if needed. Throws 404 M_NOT_FOUND when no source has it (or this server is
   * offline, so none can be asked), 502 M_TOO_LARGE
   * when it is over the limit, 502 M_UNKNOWN when no source could be reached or every answer was refused.
   */
  async fetch(serverName: string, mediaId: string): Promise<MediaRecord> {
    if (serverName === this.ctx.serverName || !isValidMediaId(mediaId)) throw notFound('Not found');
    const cached = await findMedia(this.ctx, serverName, mediaId);
    if (cached) return cached;
    const key = cachedMediaKey(serverName, mediaId);
    const running = this.inFlight.get(key);
    if (running) return running;
    const fetching = this.fetchFromSources(serverName, mediaId).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, fetching);
    return fetching;
  }

  /** The origin, then servers sharing a room with us: connected ones first, at most REMOTE_MEDIA_MAX_SOURCES. */
  private async sources(origin: string): Promise<string[]> {
    const connected = this.remote.connected();
    const others = new Set<string>();
    for (const room of await this.rooms.sharedRooms()) for (const server of room.servers) if (server !== origin && server !== this.ctx.serverName) others.add(server);
    const online = [...others].filter((s) => connected === undefined || connected.has(s));
    const offline = connected === undefined ? [] : [...others].filter((s) => !connected.has(s));
    return [origin, ...online, ...offline].slice(0, REMOTE_MEDIA_MAX_SOURCES);
  }

  private async fetchFromSources(origin: string, mediaId: string): Promise<MediaRecord> {
    // Not a server failure: the file is simply not here, and nobody can be asked (the message says so).
    if (!this.remote.online) throw notFound('Not held here, and this server is not connected to other servers to fetch it');
    let notFoundCount = 0;
    let tooLarge: string | undefined;
    const failures: string[] = [];
    const sources = await this.sources(origin);
    for (const source of sources) {
      try {
        return await this.fetchFrom(source, origin, mediaId);
      } catch (error) {
        if (error instanceof MatrixError && error.status === 404) {
          notFoundCount++;
          continue;
        }
        const reason = error instanceof Error ? error.message : String(error);
        if (error instanceof RefusedSource && error.overLimit) tooLarge = reason;
        if (error instanceof RefusedSource) this.ctx.log.warn(`remote media mxc://${origin}/${mediaId}: refused the answer of ${source}: ${reason}`);
        else this.ctx.log.debug(`remote media mxc://${origin}/${mediaId}: ${source} failed: ${reason}`);
        failures.push(`${source}: ${reason}`);
      }
    }
    if (tooLarge) throw new MatrixError(502, 'M_TOO_LARGE', tooLarge);
    if (notFoundCount === sources.length) throw notFound('Not found on any reachable server');
    throw new MatrixError(502, 'M_UNKNOWN', `Cannot fetch remote media mxc://${origin}/${mediaId}: ${failures.join('; ')}`);
  }

  /** The whole file from one source, stored as an upload and committed at the end; on any failure nothing stays. */
  private async fetchFrom(source: string, origin: string, mediaId: string): Promise<MediaRecord> {
    const deadline = this.ctx.clock.now() + REMOTE_MEDIA_DEADLINE_MS;
    const blobId = randomId(this.ctx, 32);
    const now = this.ctx.clock.now();
    let begun = false;
    try {
      let described: Described | undefined;
      let index = 0;
      for (let offset = 0; described === undefined || offset < described.size; index++) {
        if (this.ctx.clock.now() > deadline) throw new RefusedSource(`took longer than ${REMOTE_MEDIA_DEADLINE_MS} ms`);
        const { info, bytes } = await this.chunk(source, origin, mediaId, offset, described);
        described ??= info;
        if (!begun) {
          await this.ctx.storage.write(async (txn) => {
            for (const stale of await txn.media.staleUploads(now - STALE_UPLOAD_MS)) await txn.media.abortUpload(stale);
            await txn.media.beginUpload(blobId, now);
          });
          begun = true;
        }
        if (bytes.byteLength > 0) {
          const at = index;
          await this.ctx.storage.write((txn) => txn.media.putChunk(blobId, at, bytes));
        }
        offset += bytes.byteLength;
        if (described.size === 0) break;
      }
      const info = described!;
      const key = cachedMediaKey(origin, mediaId);
      const record = await this.ctx.storage.write(async (txn) => {
        const already = await txn.media.get(key);
        if (already) {
          await txn.media.abortUpload(blobId);
          return already;
        }
        return txn.media.finishUpload({
          mediaId: key,
          contentType: info.contentType,
          ...(info.filename !== undefined ? { filename: info.filename } : {}),
          // Nobody of ours uploaded it: the origin server stands in.
          uploader: origin,
          createdAt: this.ctx.clock.now(),
          blobId,
          size: info.size,
        });
      });
      begun = false;
      return record;
    } finally {
      if (begun) await this.ctx.storage.write((txn) => txn.media.abortUpload(blobId)).catch((e: unknown) => this.ctx.log.warn('could not remove a refused remote media download', e));
    }
  }

  /** One chunk answer, checked against the request and against what earlier chunks declared. */
  private async chunk(source: string, origin: string, mediaId: string, offset: number, expected: Described | undefined): Promise<{ info: Described; bytes: Uint8Array }> {
    const path = `${MEDIA_WIRE_PATH}/${encodeURIComponent(origin)}/${encodeURIComponent(mediaId)}?offset=${offset}&length=${MEDIA_WIRE_CHUNK_BYTES}`;
    const body = await this.remote.call(source, 'fetch remote media', { method: 'GET', path }, REMOTE_MEDIA_REQUEST_TIMEOUT_MS, { maxStringLength: MAX_CHUNK_BASE64 });
    const { size, content_type: type, data, filename } = body;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new RefusedSource('"size" is not a byte count');
    if (size > this.ctx.config.maxRemoteMediaBytes) {
      throw new RefusedSource(`the file is ${size} bytes, over this server's limit of ${this.ctx.config.maxRemoteMediaBytes}`, true);
    }
    if (typeof type !== 'string') throw new RefusedSource('"content_type" is missing');
    if (body.offset !== offset) throw new RefusedSource(`answered offset ${String(body.offset)} for ${offset}`);
    if (typeof data !== 'string') throw new RefusedSource('"data" is not a string');
    const info: Described = { contentType: normaliseContentType(type), size };
    const name = typeof filename === 'string' ? cleanFilename(filename) : undefined;
    if (name !== undefined) info.filename = name;
    if (expected && (expected.size !== info.size || expected.contentType !== info.contentType)) {
      throw new RefusedSource(`chunk at ${offset} describes ${info.size} bytes of ${info.contentType}, earlier ones ${expected.size} bytes of ${expected.contentType}`);
    }
    let bytes: Uint8Array;
    try {
      bytes = decodeBase64(data);
    } catch {
      throw new RefusedSource(`chunk at ${offset} is not base64`);
    }
    const wanted = Math.min(MEDIA_WIRE_CHUNK_BYTES, size - offset);
    if (wanted < 0 || bytes.byteLength !== wanted) throw new RefusedSource(`chunk at ${offset} holds ${bytes.byteLength} bytes, expected ${Math.max(0, wanted)}`);
    return { info, bytes };
  }
}
