/**
 * Routes of the content repository (spec: "Content repository"): upload
 * (also the two-step create + PUT of async uploads), download and thumbnail
 * under both the legacy /_matrix/media/v3 (and r0) paths and the authenticated
 * /_matrix/client/v1/media paths, and the upload size limit. No image library
 * runs here, so a thumbnail of an image is the image itself (the spec lets a
 * server return a larger thumbnail than asked for). Media of other servers is
 * fetched over federation on first use (federation/media.ts: from the origin
 * or any server holding a copy) and served from the local cache after that;
 * `allow_remote=false` on the legacy paths keeps a request local.
 *
 * Uploads and reservations are rate-limited per user (rc_media_create and
 * mediaUpload in limits/rate-limits.ts), and a user holds at most
 * `maxPendingMediaUploads` reservations without content, as in Synapse: past
 * it POST /create answers 429 M_LIMIT_EXCEEDED until the oldest expires or is
 * filled. Each user's reservations are listed under one meta key, so counting
 * them needs no scan, and expired ones are swept whenever the user reserves.
 */
import { MatrixError, invalidParam, missingParam, notFound, forbidden, limitExceeded } from '../../http/errors.js';
import { CORS_HEADERS } from '../../http/response.js';
import { clientRoute, type AuthedContext, type RouteDefinition } from '../../http/router.js';
import type { RouteModule } from '../../services.js';
import type { HomeserverContext } from '../../context.js';
import { isValidServerName } from '../../../core/index.js';
import type { RemoteMedia } from '../../federation/media.js';
import type { MediaRecord, ReadTxn } from '../../../storage/types.js';
import {
  cleanFilename,
  findMedia,
  isThumbnailable,
  isValidMediaId,
  mediaContent,
  mediaHeaders,
  newMediaId,
  normaliseContentType,
  storeUpload,
} from '../../media/index.js';

const LEGACY = ['/_matrix/media/v3', '/_matrix/media/r0'];
const AUTHENTICATED = ['/_matrix/client/v1/media'];
/** How long a media ID from POST /create waits for its bytes (Synapse: 24 hours). */
const PENDING_LIFETIME_MS = 24 * 60 * 60 * 1000;

interface PendingUpload {
  uploader: string;
  expiresAt: number;
}

const pendingKey = (mediaId: string) => `media.pending:${mediaId}`;

/** One user's outstanding reservations, oldest first. */
type PendingList = { mediaId: string; expiresAt: number }[];
const pendingListKey = (userId: string) => `media.pending.user:${userId}`;

function positiveInt(value: string | null, name: string): number {
  if (value === null) throw missingParam(`Missing "${name}"`);
  if (!/^[0-9]{1,6}$/.test(value) || Number(value) < 1) throw invalidParam(`"${name}" must be a positive integer`);
  return Number(value);
}

/** A 200 whose body streams the item's content from storage. */
function contentResponse(ctx: HomeserverContext, record: MediaRecord, headers: Record<string, string>): Response {
  return new Response(mediaContent(ctx, record), {
    status: 200,
    headers: { 'content-type': record.contentType, 'content-length': String(record.size), ...CORS_HEADERS, ...headers },
  });
}

/** A stored item, ours or cached; another server's is fetched first unless the client said `allow_remote=false`. */
async function localOrRemote(ctx: HomeserverContext, remoteMedia: RemoteMedia, req: AuthedContext): Promise<MediaRecord> {
  const { serverName, mediaId } = req.params;
  const record = await findMedia(ctx, serverName!, mediaId!);
  if (record) return record;
  const allowRemote = req.query.get('allow_remote');
  if (allowRemote !== null && allowRemote !== 'true' && allowRemote !== 'false') throw invalidParam('"allow_remote" must be true or false');
  if (serverName === ctx.serverName || allowRemote === 'false' || !isValidServerName(serverName!)) throw notFound('Not found');
  return remoteMedia.fetch(serverName!, mediaId!);
}

async function download(ctx: HomeserverContext, remoteMedia: RemoteMedia, req: AuthedContext): Promise<Response> {
  const record = await localOrRemote(ctx, remoteMedia, req);
  return contentResponse(ctx, record, mediaHeaders(record, cleanFilename(req.params.fileName)));
}

async function thumbnail(ctx: HomeserverContext, remoteMedia: RemoteMedia, req: AuthedContext): Promise<Response> {
  positiveInt(req.query.get('width'), 'width');
  positiveInt(req.query.get('height'), 'height');
  const method = req.query.get('method') ?? 'scale';
  if (method !== 'crop' && method !== 'scale') throw invalidParam('"method" must be "crop" or "scale"');
  const record = await localOrRemote(ctx, remoteMedia, req);
  if (!isThumbnailable(record.contentType)) throw new MatrixError(400, 'M_UNKNOWN', 'Cannot generate a thumbnail of this content');
  return contentResponse(ctx, record, mediaHeaders(record));
}

export const mediaRoutes: RouteModule = ({ ctx, limits, federation }) => {
  // Upload bodies are read by storeUpload as they stream in, never through req.bytes(); it enforces the limit.
  const upload = { prefixes: LEGACY, maxBodyBytes: ctx.config.maxUploadBytes };
  const limit = ctx.config.maxUploadBytes;
  const config = async () => ({ 'm.upload.size': ctx.config.maxUploadBytes });
  const routes: RouteDefinition[] = [
    // POST /_matrix/media/v3/upload?filename= (raw body; Content-Type names its type)
    clientRoute(
      'POST',
      '/upload',
      'required',
      async (req) => {
        limits.take('mediaUpload', req.requester.userId);
        const contentType = normaliseContentType(req.request.headers.get('content-type'));
        const filename = cleanFilename(req.query.get('filename'));
        const mediaId = newMediaId(ctx);
        await storeUpload(ctx, req.request, limit, (txn, { blobId, size }) =>
          txn.media.finishUpload({ mediaId, contentType, filename, uploader: req.requester.userId, createdAt: ctx.clock.now(), blobId, size }),
        );
        return { content_uri: `mxc://${ctx.serverName}/${mediaId}` };
      },
      upload,
    ),

    // POST /_matrix/media/v1/create: reserves a media ID for a later PUT /upload/{serverName}/{mediaId}
    clientRoute(
      'POST',
      '/create',
      'required',
      async (req) => {
        const userId = req.requester.userId;
        limits.take('mediaCreate', userId);
        const mediaId = newMediaId(ctx);
        const now = ctx.clock.now();
        const expiresAt = now + PENDING_LIFETIME_MS;
        await ctx.storage.write(async (txn) => {
          const listed = (await txn.meta.get<PendingList>(pendingListKey(userId))) ?? [];
          const live = listed.filter((p) => p.expiresAt >= now);
          for (const p of listed) if (p.expiresAt < now) await txn.meta.delete(pendingKey(p.mediaId));
          if (live.length >= ctx.config.maxPendingMediaUploads) {
            // As Synapse: come back when the oldest reservation has expired (or fill one meanwhile).
            throw limitExceeded(Math.max(1, live[0]!.expiresAt - now + 1), 'Too many pending media uploads');
          }
          await txn.meta.put(pendingListKey(userId), [...live, { mediaId, expiresAt }]);
          await txn.meta.put(pendingKey(mediaId), { uploader: userId, expiresAt } satisfies PendingUpload);
        });
        return { content_uri: `mxc://${ctx.serverName}/${mediaId}`, unused_expires_at: expiresAt };
      },
      { prefixes: ['/_matrix/media/v1'] },
    ),

    // PUT /_matrix/media/v3/upload/{serverName}/{mediaId}: the bytes of a reserved media ID
    clientRoute(
      'PUT',
      '/upload/{serverName}/{mediaId}',
      'required',
      async (req) => {
        const { serverName, mediaId } = req.params;
        if (serverName !== ctx.serverName || !isValidMediaId(mediaId!)) throw notFound('Not found');
        limits.take('mediaUpload', req.requester.userId);
        const contentType = normaliseContentType(req.request.headers.get('content-type'));
        const filename = cleanFilename(req.query.get('filename'));
        const uploader = req.requester.userId;
        const checkReservation = async (txn: ReadTxn) => {
          if (await txn.media.get(mediaId!)) throw new MatrixError(409, 'M_CANNOT_OVERWRITE_MEDIA', 'Media ID already has content');
          const pending = await txn.meta.get<PendingUpload>(pendingKey(mediaId!));
          if (!pending || pending.expiresAt < ctx.clock.now()) throw notFound('Not found');
          if (pending.uploader !== uploader) throw forbidden('Another user reserved this media ID');
        };
        // Checked before the body is stored, so a refused PUT costs no writes, and again when committing:
        // a concurrent PUT of the same ID may have won meanwhile.
        await ctx.storage.read(checkReservation);
        await storeUpload(ctx, req.request, limit, async (txn, { blobId, size }) => {
          await checkReservation(txn);
          await txn.meta.delete(pendingKey(mediaId!));
          const listed = (await txn.meta.get<PendingList>(pendingListKey(uploader))) ?? [];
          await txn.meta.put(pendingListKey(uploader), listed.filter((p) => p.mediaId !== mediaId));
          await txn.media.finishUpload({ mediaId: mediaId!, contentType, filename, uploader, createdAt: ctx.clock.now(), blobId, size });
        });
        return {};
      },
      upload,
    ),
  ];

  // GET .../download/{serverName}/{mediaId}[/{fileName}] and GET .../thumbnail/{serverName}/{mediaId}:
  // the legacy paths need no token (older clients put mxc URLs in <img>), the v1 client paths do.
  for (const [prefixes, auth] of [[LEGACY, 'none'], [AUTHENTICATED, 'required']] as const) {
    const options = { prefixes: [...prefixes] };
    routes.push(
      clientRoute('GET', '/download/{serverName}/{mediaId}', auth, (req) => download(ctx, federation.media, req), options),
      clientRoute('GET', '/download/{serverName}/{mediaId}/{fileName}', auth, (req) => download(ctx, federation.media, req), options),
      clientRoute('GET', '/thumbnail/{serverName}/{mediaId}', auth, (req) => thumbnail(ctx, federation.media, req), options),
      // GET .../config: the upload size limit
      clientRoute('GET', '/config', 'required', config, options),
    );
  }
  return routes;
};
