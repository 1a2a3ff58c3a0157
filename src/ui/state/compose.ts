/**
 * What the composer's text becomes on the wire: markdown rendered with marked into
 * `format: org.matrix.custom.html` + `formatted_body` beside the plain `body` (the text as typed), or a
 * plain message when the markdown formats nothing. Two commands as in Element: `/plain` sends the text
 * as is, `/html` sends it as HTML without markdown. Replies and edits are built here too.
 */
import { marked, type Token } from 'marked';

export interface MessageContent {
  msgtype: 'm.text';
  body: string;
  format?: 'org.matrix.custom.html';
  formatted_body?: string;
  [key: string]: unknown;
}

const PLAIN_TOKENS = new Set(['paragraph', 'text', 'space', 'br', 'escape']);

/** True when the markdown has nothing but paragraphs of text (so the plain body says it all). */
function isPlain(tokens: readonly Token[]): boolean {
  return tokens.every((token) => {
    if (!PLAIN_TOKENS.has(token.type)) return false;
    const children = (token as { tokens?: Token[] }).tokens;
    return !children || isPlain(children);
  });
}

/** Text of HTML for the plain `body` of a /html message; never rendered as HTML. */
function textOfHtml(html: string): string {
  return html.replace(/<[^>]*>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
}

export function contentOf(input: string): MessageContent | undefined {
  const text = input.replace(/\s+$/, '');
  if (!text.trim()) return undefined;
  if (text.startsWith('/plain ')) return { msgtype: 'm.text', body: text.slice(7) };
  if (text.startsWith('/html ')) {
    const html = text.slice(6);
    return { msgtype: 'm.text', body: textOfHtml(html) || html, format: 'org.matrix.custom.html', formatted_body: html };
  }
  const tokens = marked.lexer(text, { gfm: true, breaks: true });
  if (isPlain(tokens)) return { msgtype: 'm.text', body: text };
  const html = (marked.parser(tokens, { gfm: true, breaks: true }) as string).trim();
  return { msgtype: 'm.text', body: text, format: 'org.matrix.custom.html', formatted_body: html };
}

/** `content` as a reply to `eventId` (no fallback quote: spec v1.13 dropped reply fallbacks). */
export function asReply(content: MessageContent, eventId: string): MessageContent {
  return { ...content, 'm.relates_to': { 'm.in_reply_to': { event_id: eventId } } };
}

/** An edit of `eventId` whose new content is `content` (m.replace with m.new_content; "* " body for old clients). */
export function asEdit(content: MessageContent, eventId: string): MessageContent {
  const fallback: MessageContent = { msgtype: 'm.text', body: `* ${content.body}` };
  if (content.formatted_body !== undefined) {
    fallback.format = 'org.matrix.custom.html';
    fallback.formatted_body = `* ${content.formatted_body}`;
  }
  return { ...fallback, 'm.new_content': content, 'm.relates_to': { rel_type: 'm.replace', event_id: eventId } };
}
