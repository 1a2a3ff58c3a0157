// TimelineState against a real homeserver in process, two users in one room: markdown arrives as HTML,
// a reply quotes its target, an edit replaces the text everywhere ("edited"), reactions aggregate and
// are taken back by redaction, a deletion shows as such (also in replies to it), typing notifications
// and read receipts reach the other side.
import { describe, expect, it } from 'vitest';
import { TimelineState } from '../../../src/ui/state/timeline.svelte.js';
import { annAndBenIn, eventually, serverPerTest } from './support.js';

const world = serverPerTest();
const { states } = world;

async function sharedRoom(): Promise<{ ann: TimelineState; ben: TimelineState; annId: string; benId: string }> {
  const { ann: a, ben: b, roomId } = await annAndBenIn(world, 'Rich');
  const ann = new TimelineState(a.client, roomId);
  const ben = new TimelineState(b.client, roomId);
  states.push(ann, ben);
  return { ann, ben, annId: a.client.getUserId()!, benId: b.client.getUserId()! };
}

const find = (timeline: TimelineState, body: string) => timeline.messages.find((m) => m.body === body);

describe('TimelineState: a rich timeline', () => {
  it('formats, replies, edits, reacts, unreacts and deletes, as both users see it', async () => {
    const { ann, ben, annId, benId } = await sharedRoom();

    await ann.send('**lunch** at noon?');
    await eventually('ben gets the formatted message', () => find(ben, '**lunch** at noon?') !== undefined);
    const question = find(ben, '**lunch** at noon?')!;
    expect(question.html).toBe('<p><strong>lunch</strong> at noon?</p>');

    // Ben replies.
    ben.startReply(question);
    expect(ben.replyingTo?.id).toBe(question.id);
    await ben.send('yes!');
    expect(ben.replyingTo).toBeUndefined();
    await eventually('ann sees the reply', () => find(ann, 'yes!')?.replyTo?.known === true);
    expect(find(ann, 'yes!')).toMatchObject({ senderName: 'Ben', replyTo: { id: question.id, sender: annId, body: '**lunch** at noon?' } });

    // Ann edits her last message (what Up in an empty composer picks).
    const last = ann.lastOwnMessage()!;
    expect(last.id).toBe(question.id);
    expect(ann.startEdit(last)).toBe(true);
    expect(ann.draft).toBe('**lunch** at noon?');
    expect(ben.startEdit(find(ben, 'yes!')!) && ben.startEdit(question)).toBe(false);
    ben.cancel();
    await ann.send('**lunch** at one?');
    await eventually('ben sees the edit', () => ben.messages.find((m) => m.id === question.id)?.body === '**lunch** at one?');
    const edited = ben.messages.find((m) => m.id === question.id)!;
    expect(edited).toMatchObject({ edited: true, html: '<p><strong>lunch</strong> at one?</p>' });
    // The edit is no row of its own, and the reply's quote follows it.
    expect(ben.messages.map((m) => m.body)).toEqual(['**lunch** at one?', 'yes!']);
    await eventually('the quote follows the edit', () => find(ann, 'yes!')?.replyTo?.body === '**lunch** at one?');

    // Reactions aggregate; toggling one's own takes it back.
    await ann.toggleReaction(question.id, '👍');
    await ben.toggleReaction(question.id, '👍');
    await ben.toggleReaction(question.id, '🎉');
    await eventually('both see two thumbs and a party', () =>
      [ann, ben].every((t) => t.messages.find((m) => m.id === question.id)?.reactions.map((r) => `${r.key}${r.count}`).join() === '👍2,🎉1'),
    );
    expect(ann.messages.find((m) => m.id === question.id)!.reactions).toEqual([
      { key: '👍', count: 2, senders: [annId, benId], mine: expect.stringMatching(/^\$/) },
      { key: '🎉', count: 1, senders: [benId] },
    ]);
    await eventually('ann’s reaction is acknowledged', () => ann.messages.find((m) => m.id === question.id)!.reactions[0]!.mine?.startsWith('$') === true);
    await ann.toggleReaction(question.id, '👍');
    await eventually('ben sees one thumb', () => ben.messages.find((m) => m.id === question.id)?.reactions.find((r) => r.key === '👍')?.count === 1);
    expect(ben.messages.find((m) => m.id === question.id)!.reactions.find((r) => r.key === '👍')!.senders).toEqual([benId]);

    // Ann deletes her message: both see "deleted", and the reply's quote says so.
    await ann.remove(question.id);
    await eventually('ben sees it deleted', () => ben.messages.find((m) => m.id === question.id)?.deleted === true);
    expect(ben.messages.find((m) => m.id === question.id)).toMatchObject({ body: '', reactions: [] });
    await eventually('the quote says deleted', () => find(ann, 'yes!')?.replyTo?.deleted === true);
    expect(ann.lastOwnMessage()).toBeUndefined();
  });

  it('carries typing notifications and read receipts to the other user', async () => {
    const { ann, ben, benId } = await sharedRoom();
    await ann.setTyping(true);
    await eventually('ben sees ann typing', () => ben.typing.join() === 'Ann');
    expect(ann.typing).toEqual([]);
    await ann.send('done typing');
    await eventually('ann stopped typing', () => ben.typing.length === 0);

    await eventually('ben has the message', () => find(ben, 'done typing') !== undefined);
    expect(find(ann, 'done typing')!.readBy).toEqual([]);
    await ben.markRead();
    await eventually('ann sees ben’s receipt', () => find(ann, 'done typing')?.readBy.join() === benId);
    expect(ann.nameOf(benId)).toBe('Ben');
  });
});
