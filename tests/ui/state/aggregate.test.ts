// The timeline's folding of raw events into rows (edits, reactions, redactions, replies, receipts, day
// separators), what the composer's text becomes on the wire (markdown, /html, /plain, replies, edits),
// and the virtual window's row ranges — pure functions, no client.
import { describe, expect, it } from 'vitest';
import { aggregate, withDaySeparators, type SourceEvent } from '../../../src/ui/state/aggregate.js';
import { asEdit, asReply, contentOf } from '../../../src/ui/state/compose.js';
import { RowHeights } from '../../../src/ui/state/virtual-window.js';

const ANN = '@ann:a';
const BEN = '@ben:b';
let clock = Date.UTC(2026, 0, 5, 12);

function event(id: string, sender: string, type: string, content: Record<string, unknown>, extra: Partial<SourceEvent> = {}): SourceEvent {
  clock += 1000;
  return { id, sender, type, content, ts: clock, redacted: false, pending: false, ...extra };
}
const text = (id: string, sender: string, body: string, more: Record<string, unknown> = {}) => event(id, sender, 'm.room.message', { msgtype: 'm.text', body, ...more });
const edit = (id: string, sender: string, target: string, body: string) =>
  event(id, sender, 'm.room.message', { msgtype: 'm.text', body: `* ${body}`, 'm.new_content': { msgtype: 'm.text', body }, 'm.relates_to': { rel_type: 'm.replace', event_id: target } });
const reaction = (id: string, sender: string, target: string, key: string) => event(id, sender, 'm.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: target, key } });
const names = (id: string) => (id === ANN ? 'Ann' : id === BEN ? 'Ben' : id);

describe('aggregate', () => {
  it('keeps a message waiting for its key as a row of its own, which neither a reply nor a reaction reads into', () => {
    const rows = aggregate({
      userId: ANN,
      nameOf: names,
      events: [
        text('$1', ANN, 'in the clear'),
        event('$2', BEN, 'm.room.message', {}, { awaitingKey: true }),
        reaction('$3', ANN, '$2', '👍'),
        text('$4', ANN, 'what did you say?', { 'm.relates_to': { 'm.in_reply_to': { event_id: '$2' } } }),
        event('$5', BEN, 'm.room.message', {}, { awaitingKey: true, redacted: true }),
      ],
    });
    expect(rows.map((r) => [r.id, r.awaitingKey, r.deleted])).toEqual([
      ['$1', false, false],
      ['$2', true, false],
      ['$4', false, false],
      ['$5', false, true],
    ]);
    expect(rows[1]).toMatchObject({ body: '', senderName: 'Ben', reactions: [{ key: '👍', count: 1 }] });
    expect(rows[2]!.replyTo).toEqual({ id: '$2', known: true, sender: BEN, body: '' });
  });

  it('applies the latest edit by the original sender only, and marks the message edited', () => {
    const rows = aggregate({
      userId: ANN,
      nameOf: names,
      events: [
        text('$1', ANN, 'helo'),
        edit('$2', ANN, '$1', 'hello'),
        edit('$3', BEN, '$1', 'hijacked'),
        edit('$4', ANN, '$1', 'hello!'),
        event('$5', ANN, 'm.room.message', { body: '* x', 'm.new_content': { body: 42 }, 'm.relates_to': { rel_type: 'm.replace', event_id: '$1' } }),
        edit('$6', ANN, '$missing', 'orphan'),
      ],
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ id: '$1', body: 'hello!', edited: true, senderName: 'Ann', deleted: false });
  });

  it('keeps formatted_body only for the custom HTML format, and takes an edit’s formatted content', () => {
    const rows = aggregate({
      userId: ANN,
      events: [
        text('$1', ANN, 'a', { format: 'org.matrix.custom.html', formatted_body: '<b>a</b>' }),
        text('$2', ANN, 'b', { format: 'text/markdown', formatted_body: '**b**' }),
        event('$3', ANN, 'm.room.message', { msgtype: 'm.text', body: '* c', 'm.new_content': { msgtype: 'm.text', body: 'c', format: 'org.matrix.custom.html', formatted_body: '<i>c</i>' }, 'm.relates_to': { rel_type: 'm.replace', event_id: '$2' } }),
      ],
    });
    expect(rows.map((r) => [r.body, r.html])).toEqual([['a', '<b>a</b>'], ['c', '<i>c</i>']]);
  });

  it('counts reactions once per sender and key, knows the viewer’s own, and drops redacted ones', () => {
    const events = [
      text('$1', BEN, 'pizza?'),
      reaction('$r1', ANN, '$1', '👍'),
      reaction('$r2', BEN, '$1', '👍'),
      reaction('$r3', BEN, '$1', '👍'),
      reaction('$r4', BEN, '$1', '🎉'),
      reaction('$r5', ANN, '$1', '🎉', ),
      event('$x', ANN, 'm.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: '$1' } }),
      event('$red', ANN, 'm.room.redaction', {}, { redacts: '$r5' }),
    ];
    const [row] = aggregate({ userId: ANN, events });
    expect(row!.reactions).toEqual([
      { key: '👍', count: 2, senders: [ANN, BEN], mine: '$r1' },
      { key: '🎉', count: 1, senders: [BEN] },
    ]);
    // The SDK's own redaction flag counts too.
    const [again] = aggregate({ userId: ANN, events: events.map((e) => (e.id === '$r1' ? { ...e, redacted: true, content: {} } : e)) });
    expect(again!.reactions[0]).toEqual({ key: '👍', count: 1, senders: [BEN] });
  });

  it('shows a redacted message as deleted, without body, reactions of no use, or edits', () => {
    const rows = aggregate({
      userId: ANN,
      events: [text('$1', ANN, 'oops'), edit('$2', ANN, '$1', 'oops!'), text('$3', BEN, 'kept'), event('$4', ANN, 'm.room.redaction', {}, { redacts: '$1' })],
    });
    expect(rows.map((r) => [r.id, r.deleted, r.body, r.edited])).toEqual([['$1', true, '', false], ['$3', false, 'kept', false]]);
  });

  it('previews the message replied to (edited, fallback stripped), a deleted one, and an unknown one', () => {
    const reply = (id: string, target: string, body: string) => text(id, BEN, body, { 'm.relates_to': { 'm.in_reply_to': { event_id: target } } });
    const rows = aggregate({
      userId: BEN,
      nameOf: names,
      events: [
        text('$1', ANN, 'first'),
        edit('$2', ANN, '$1', 'first, edited'),
        reply('$3', '$1', '> <@ann:a> first\n\nanswer'),
        text('$4', ANN, 'gone'),
        event('$5', ANN, 'm.room.redaction', {}, { redacts: '$4' }),
        reply('$6', '$4', 'to the gone one'),
        reply('$7', '$old', 'to an old one'),
        reply('$8', '$fetched', 'to a fetched one'),
      ],
      extra: new Map([['$fetched', text('$fetched', ANN, 'from long ago')]]),
    });
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect(byId.get('$3')).toMatchObject({ body: 'answer', replyTo: { id: '$1', known: true, sender: ANN, body: 'first, edited' } });
    expect(byId.get('$6')!.replyTo).toEqual({ id: '$4', known: true, sender: ANN, deleted: true });
    expect(byId.get('$7')!.replyTo).toEqual({ id: '$old', known: false });
    expect(byId.get('$8')!.replyTo).toMatchObject({ known: true, body: 'from long ago' });
  });

  it('puts each other user’s receipt on the message it reached, or the nearest message before a non-message', () => {
    const rows = aggregate({
      userId: ANN,
      events: [text('$1', ANN, 'one'), text('$2', BEN, 'two'), reaction('$3', BEN, '$2', '👍'), text('$4', ANN, 'four')],
      receipts: new Map([[BEN, '$3'], [ANN, '$4'], ['@cat:c', '$1'], ['@dan:d', '$unknown']]),
    });
    expect(rows.map((r) => r.readBy)).toEqual([['@cat:c'], [BEN], []]);
  });

  it('ignores content that is not what it claims (hostile input)', () => {
    const rows = aggregate({
      userId: ANN,
      events: [
        event('$1', ANN, 'm.room.message', { msgtype: 'm.text', body: { toString: 'x' } }),
        event('$2', ANN, 'm.room.message', { body: 'no msgtype' }),
        event('$3', ANN, 'm.room.message', { msgtype: 'm.text', body: 'ok', 'm.relates_to': 'nope' }),
        event('$4', BEN, 'm.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: '$3', key: 'x'.repeat(65) } }),
        event('$5', BEN, 'm.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: '$3', key: '__proto__' } }),
      ],
    });
    expect(rows.map((r) => r.id)).toEqual(['$3']);
    expect(rows[0]!.reactions).toEqual([{ key: '__proto__', count: 1, senders: [BEN] }]);
  });
});

describe('withDaySeparators', () => {
  it('puts a separator before the first message of each local day', () => {
    const at = (d: number, h: number) => new Date(2026, 0, d, h).getTime();
    const rows = aggregate({ userId: ANN, events: [text('$1', ANN, 'a'), text('$2', ANN, 'b'), text('$3', ANN, 'c')].map((e, i) => ({ ...e, ts: [at(5, 9), at(5, 22), at(6, 8)][i]! })) });
    expect(withDaySeparators(rows).map((item) => item.kind)).toEqual(['day', 'message', 'message', 'day', 'message']);
  });
});

describe('contentOf', () => {
  it('sends markdown as custom HTML with the typed text as body, and plain text as plain', () => {
    expect(contentOf('just words  \n')).toEqual({ msgtype: 'm.text', body: 'just words' });
    expect(contentOf('two\nlines')).toEqual({ msgtype: 'm.text', body: 'two\nlines' });
    expect(contentOf('   ')).toBeUndefined();
    const bold = contentOf('**bold** and `code`');
    expect(bold).toEqual({ msgtype: 'm.text', body: '**bold** and `code`', format: 'org.matrix.custom.html', formatted_body: '<p><strong>bold</strong> and <code>code</code></p>' });
    expect(contentOf('- a\n- b')!.formatted_body).toBe('<ul>\n<li>a</li>\n<li>b</li>\n</ul>');
  });

  it('has /html (HTML as typed) and /plain (no markdown)', () => {
    expect(contentOf('/html <b>x</b> &amp; y')).toEqual({ msgtype: 'm.text', body: 'x & y', format: 'org.matrix.custom.html', formatted_body: '<b>x</b> &amp; y' });
    expect(contentOf('/plain **not bold**')).toEqual({ msgtype: 'm.text', body: '**not bold**' });
  });

  it('builds replies and edits', () => {
    expect(asReply({ msgtype: 'm.text', body: 'hi' }, '$1')).toEqual({ msgtype: 'm.text', body: 'hi', 'm.relates_to': { 'm.in_reply_to': { event_id: '$1' } } });
    expect(asEdit(contentOf('*new*')!, '$1')).toEqual({
      msgtype: 'm.text',
      body: '* *new*',
      format: 'org.matrix.custom.html',
      formatted_body: '* <p><em>new</em></p>',
      'm.new_content': { msgtype: 'm.text', body: '*new*', format: 'org.matrix.custom.html', formatted_body: '<p><em>new</em></p>' },
      'm.relates_to': { rel_type: 'm.replace', event_id: '$1' },
    });
  });
});

describe('RowHeights', () => {
  const ids = Array.from({ length: 1000 }, (_, i) => `r${i}`);
  it('renders only the rows near the viewport, with spacers for the rest', () => {
    const heights = new RowHeights(50);
    const range = heights.range(ids, 10_000, 500, 100);
    expect(range).toEqual({ start: 198, end: 212, before: 9900, after: (1000 - 212) * 50 });
    expect(range.before + (range.end - range.start) * 50 + range.after).toBe(50_000);
  });
  it('uses measured heights and reports the change for scroll anchoring', () => {
    const heights = new RowHeights(50);
    expect(heights.measure('r0', 120)).toBe(70);
    expect(heights.measure('r0', 120)).toBe(0);
    expect(heights.offsetOf(ids, 'r2')).toBe(170);
    expect(heights.range(ids, 0, 100, 0)).toMatchObject({ start: 0, end: 1, before: 0 });
    expect(heights.offsetOf(ids, 'nope')).toBeUndefined();
  });
  it('forgets the heights of rows cut from the list, and keeps those still listed', () => {
    const heights = new RowHeights(50);
    for (const id of ids.slice(0, 10)) heights.measure(id, 80);
    heights.retain(ids.slice(5, 20));
    expect(heights.heightOf('r4')).toBe(50);
    expect(heights.heightOf('r5')).toBe(80);
    expect(heights.offsetOf(ids, 'r10')).toBe(5 * 50 + 5 * 80);
  });
});
