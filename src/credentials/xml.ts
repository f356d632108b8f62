/**
 * A small, strict XML reader for STS's Query-API answers (AssumeRoleResponse, ErrorResponse).
 *
 * Why not a dependency: Workers have no DOMParser, and the answers are a few flat elements. This
 * reads elements, text and the five predefined entities plus numeric references; it skips the
 * XML declaration, comments and attributes, and refuses everything else (DOCTYPE and so entity
 * definitions, processing instructions, CDATA, mismatched or unclosed tags, text outside the root,
 * more than one root) rather than guessing. Input size is bounded by the caller.
 */

export interface XmlElement {
  name: string;
  children: XmlElement[];
  /** The concatenated text directly inside this element (entities decoded). */
  text: string;
}

export class XmlError extends Error {
  override name = "XmlError";
}

/** How deep elements may nest; STS answers are four levels deep. */
const MAX_DEPTH = 16;
const NAME = /^[A-Za-z_][\w.:-]*$/;

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decode(raw: string): string {
  if (!raw.includes("&")) return raw;
  return raw.replace(/&([^;]{0,10});?/g, (whole, ref: string) => {
    if (!whole.endsWith(";")) throw new XmlError("an '&' that does not start an entity reference");
    if (ref in ENTITIES) return ENTITIES[ref]!;
    const m = /^#(x[0-9a-fA-F]{1,6}|[0-9]{1,7})$/.exec(ref);
    if (!m) throw new XmlError(`unknown entity &${ref};`);
    const code = m[1]!.startsWith("x") ? Number.parseInt(m[1]!.slice(1), 16) : Number(m[1]);
    if (code > 0x10ffff || code === 0) throw new XmlError(`character reference &${ref}; is out of range`);
    return String.fromCodePoint(code);
  });
}

/** Parses a whole document into its root element; throws XmlError on anything it does not accept. */
export function parseXml(input: string): XmlElement {
  let i = 0;
  const s = input.startsWith("\uFEFF") ? input.slice(1) : input;
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;

  const skipSpace = () => {
    while (i < s.length && /\s/.test(s[i]!)) i++;
  };

  skipSpace();
  if (s.startsWith("<?xml", i)) {
    const end = s.indexOf("?>", i);
    if (end < 0) throw new XmlError("unterminated XML declaration");
    i = end + 2;
  }
  while (i < s.length) {
    const lt = s.indexOf("<", i);
    const textEnd = lt < 0 ? s.length : lt;
    const text = s.slice(i, textEnd);
    if (text.length > 0) {
      const top = stack[stack.length - 1];
      if (top) top.text += decode(text);
      else if (/\S/.test(text)) throw new XmlError("text outside the root element");
    }
    if (lt < 0) break;
    i = lt;
    if (s.startsWith("<!--", i)) {
      const end = s.indexOf("-->", i + 4);
      if (end < 0) throw new XmlError("unterminated comment");
      i = end + 3;
      continue;
    }
    if (s.startsWith("<!", i) || s.startsWith("<?", i)) {
      throw new XmlError("DOCTYPE, CDATA and processing instructions are not accepted");
    }
    const gt = s.indexOf(">", i);
    if (gt < 0) throw new XmlError("unterminated tag");
    const tag = s.slice(i + 1, gt);
    i = gt + 1;
    if (tag.startsWith("/")) {
      const name = tag.slice(1).trim();
      const open = stack.pop();
      if (!open || open.name !== name) throw new XmlError(`closing tag </${name}> does not match`);
      if (stack.length === 0) root = open;
      continue;
    }
    const selfClosing = tag.endsWith("/");
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const name = /^[^\s/>]+/.exec(body)?.[0] ?? "";
    if (!NAME.test(name)) throw new XmlError(`not an element name: <${name.slice(0, 40)}>`);
    // Attributes (xmlns=...) are read past, not kept: only their quoting is checked.
    const attrs = body.slice(name.length);
    if (!/^(\s+[\w.:-]+\s*=\s*("[^"<]*"|'[^'<]*'))*\s*$/.test(attrs)) {
      throw new XmlError(`malformed attributes on <${name}>`);
    }
    if (root !== null) throw new XmlError("more than one root element");
    const el: XmlElement = { name, children: [], text: "" };
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(el);
    if (selfClosing) {
      if (!parent) root = el;
      continue;
    }
    if (stack.length >= MAX_DEPTH) throw new XmlError("elements nest too deeply");
    stack.push(el);
  }
  if (stack.length > 0) throw new XmlError(`<${stack[stack.length - 1]!.name}> is not closed`);
  if (!root) throw new XmlError("no root element");
  return root;
}

/** The only child named `name`; throws when there is none or more than one. */
export function child(el: XmlElement, name: string): XmlElement {
  const found = el.children.filter((c) => c.name === name);
  if (found.length !== 1) {
    throw new XmlError(`<${el.name}> has ${found.length === 0 ? "no" : "more than one"} <${name}>`);
  }
  return found[0]!;
}

/** The child named `name`, or null when absent; throws when there is more than one. */
export function optionalChild(el: XmlElement, name: string): XmlElement | null {
  const found = el.children.filter((c) => c.name === name);
  if (found.length > 1) throw new XmlError(`<${el.name}> has more than one <${name}>`);
  return found[0] ?? null;
}

/** The trimmed text of a leaf element; throws when it has element children. */
export function leafText(el: XmlElement): string {
  if (el.children.length > 0) throw new XmlError(`<${el.name}> holds elements where text was expected`);
  return el.text.trim();
}
