// DialogSubmit: busy while the action runs (a second submit meanwhile is ignored), the error shown when it
// fails and cleared on the next attempt, and the dialog closed only after a success.
import { expect, it } from 'vitest';
import { DialogSubmit } from '../../../src/ui/state/dialog-submit.svelte.js';

it('runs the action once at a time, shows its failure, closes on success', async () => {
  let attempts = 0;
  let closed = 0;
  let finish!: () => void;
  const form = new DialogSubmit(async () => {
    attempts++;
    if (attempts === 1) throw new Error('M_FORBIDDEN: not allowed');
    await new Promise<void>((resolve) => (finish = resolve));
  }, () => closed++);

  await form.submit();
  expect(form.error).toBe('M_FORBIDDEN: not allowed');
  expect(form.busy).toBe(false);
  expect(closed).toBe(0);

  const second = form.submit();
  expect(form.busy).toBe(true);
  expect(form.error).toBe('');
  await form.submit();
  expect(attempts).toBe(2);
  finish();
  await second;
  expect(form.busy).toBe(false);
  expect(closed).toBe(1);
});
