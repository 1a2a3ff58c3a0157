/**
 * Received `formatted_body` HTML made safe to show: DOMPurify keeps only the tags and attributes the
 * Matrix spec allows in m.room.message (client-server API, "m.room.message msgtypes"), links only with
 * http(s)/ftp/mailto/magnet targets (opening in a new tab with rel=noopener), code classes only as
 * `language-*`, and no images from anywhere: an <img> becomes its alt text, so a message can never
 * make this tab fetch a URL. The result is a DOM fragment, never HTML text, so nothing is re-parsed
 * after sanitising (the mutation-XSS route).
 */
import DOMPurify from 'dompurify';

const ALLOWED_TAGS = [
  'font', 'del', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'blockquote', 'p', 'a', 'ul', 'ol', 'sup', 'sub', 'li', 'b', 'i', 'u',
  'strong', 'em', 's', 'code', 'hr', 'br', 'div', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'caption', 'pre', 'span',
  'img', 'details', 'summary',
];
const ALLOWED_ATTR = ['data-mx-bg-color', 'data-mx-color', 'color', 'data-mx-spoiler', 'data-mx-maths', 'href', 'width', 'height', 'alt', 'title', 'start', 'class'];
const ALLOWED_URI = /^(?:https?|ftp|mailto|magnet):/i;
const CODE_CLASS = /^language-[a-z0-9_+#-]{1,32}$/i;

/** Attributes this module may itself add after DOMPurify's filtering (tests check against this). */
export const ADDED_ATTRIBUTES = ['rel', 'target'];
export const ALLOWED_ATTRIBUTES: readonly string[] = ALLOWED_ATTR;
export const ALLOWED_ELEMENTS: readonly string[] = ALLOWED_TAGS.filter((t) => t !== 'img');

let purifier: ReturnType<typeof DOMPurify> | undefined;

function configured(): ReturnType<typeof DOMPurify> {
  if (purifier) return purifier;
  const instance = DOMPurify(window);
  instance.addHook('afterSanitizeAttributes', (node) => {
    if (!(node instanceof Element)) return;
    const className = node.getAttribute('class');
    if (className !== null && !(node.tagName === 'CODE' && CODE_CLASS.test(className))) node.removeAttribute('class');
    if (node.tagName === 'A') {
      if (node.hasAttribute('href')) {
        node.setAttribute('target', '_blank');
        node.setAttribute('rel', 'noopener noreferrer nofollow');
      }
    }
  });
  purifier = instance;
  return instance;
}

/** Sanitised nodes for `html`; images are replaced by their alt text. */
export function sanitizedFragment(html: string): DocumentFragment {
  // DOMPurify answers null when the parse has no <body> (e.g. a <frameset> document): nothing to show.
  const fragment = (configured().sanitize(html, {
    ALLOWED_TAGS,
    ALLOWED_ATTR,
    ALLOWED_URI_REGEXP: ALLOWED_URI,
    ALLOW_DATA_ATTR: false,
    ALLOW_ARIA_ATTR: false,
    ALLOW_UNKNOWN_PROTOCOLS: false,
    RETURN_DOM_FRAGMENT: true,
  }) as DocumentFragment | null) ?? document.createDocumentFragment();
  for (const image of fragment.querySelectorAll('img')) {
    const alt = image.getAttribute('alt')?.trim();
    const placeholder = document.createElement('span');
    placeholder.className = 'inline-image';
    placeholder.textContent = alt ? `[image: ${alt}]` : '[image]';
    image.replaceWith(placeholder);
  }
  return fragment;
}

/** Svelte action: shows `html` sanitised inside the element; if sanitising fails it shows nothing, and the timeline goes on. */
export function richText(node: HTMLElement, html: string): { update(next: string): void } {
  const show = (value: string) => {
    try {
      node.replaceChildren(sanitizedFragment(value));
    } catch {
      node.replaceChildren();
    }
  };
  show(html);
  return { update: show };
}
