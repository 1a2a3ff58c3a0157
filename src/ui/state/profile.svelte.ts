/**
 * The local user's own profile picture: what it is (the mxc:// URI of `avatar_url`, kept current from the
 * server's profile and from changes made here) and "Change avatar": an image file is uploaded through the
 * media API and set with PUT /_matrix/client/v3/profile/{userId}/avatar_url, which the server carries into
 * the user's member event in every joined room, so the other members see it beside each message.
 */
import type { MatrixClient } from 'matrix-js-sdk';
import { uploadFile } from './uploads.svelte.js';
import { afterFirstSync, USER_AVATAR } from './events.js';

/** Picture types an avatar may be: what MediaState previews, SVG excluded (it can carry script). */
export const AVATAR_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'] as const;
/** Larger files are refused before upload: an avatar is shown at 2 rem. */
export const MAX_AVATAR_BYTES = 5 * 1024 * 1024;

export class ProfileState {
  /** The mxc:// URI of the user's avatar, undefined when there is none. */
  avatarUrl = $state<string | undefined>(undefined);
  busy = $state(false);
  error = $state('');
  readonly #client: MatrixClient;
  readonly #userId: string;
  readonly #onAvatar = () => (this.avatarUrl = this.#client.getUser(this.#userId)?.avatarUrl || undefined);

  constructor(client: MatrixClient) {
    this.#client = client;
    this.#userId = client.getUserId() ?? '';
    this.#onAvatar();
    client.getUser(this.#userId)?.on(USER_AVATAR, this.#onAvatar);
    afterFirstSync(client, () =>
      void client.getProfileInfo(this.#userId, 'avatar_url').then(
        (info) => (this.avatarUrl = typeof info.avatar_url === 'string' && info.avatar_url ? info.avatar_url : this.avatarUrl),
        () => {},
      ),
    );
  }

  /** Uploads `file` and makes it the avatar; a file that is not a small picture is refused with a reason. */
  async setAvatar(file: File): Promise<void> {
    this.error = '';
    if (!(AVATAR_TYPES as readonly string[]).includes(file.type)) {
      this.error = 'Choose a PNG, JPEG, GIF or WebP picture.';
      return;
    }
    if (file.size > MAX_AVATAR_BYTES) {
      this.error = `That picture is too large (at most ${MAX_AVATAR_BYTES / 1024 / 1024} MB).`;
      return;
    }
    this.busy = true;
    try {
      const uri = await uploadFile(this.#client, file, file.type);
      await this.#client.setAvatarUrl(uri);
      this.avatarUrl = uri;
    } catch (error) {
      this.error = `The avatar was not changed: ${error instanceof Error ? error.message : String(error)}`;
    } finally {
      this.busy = false;
    }
  }

  dispose(): void {
    this.#client.getUser(this.#userId)?.off(USER_AVATAR, this.#onAvatar);
  }
}
