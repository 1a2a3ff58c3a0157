/**
 * A dialog form's submit: runs the dialog's action (create a room, start a direct chat…) one at a time,
 * keeps the form busy meanwhile, shows why it failed, and closes the dialog once it succeeded.
 */
export class DialogSubmit {
  busy = $state(false);
  /** Why the last attempt failed; empty while none has. */
  error = $state('');
  readonly #action: () => Promise<unknown>;
  readonly #done: () => void;

  constructor(action: () => Promise<unknown>, done: () => void) {
    this.#action = action;
    this.#done = done;
  }

  /** The form's `onsubmit` handler. */
  readonly submit = async (event?: SubmitEvent): Promise<void> => {
    event?.preventDefault();
    if (this.busy) return;
    this.busy = true;
    this.error = '';
    try {
      await this.#action();
      this.#done();
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    } finally {
      this.busy = false;
    }
  };
}
