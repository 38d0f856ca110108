/**
 * A deliberately tiny template language, so merchants can edit emails without learning a library
 * and every mistake is found when the worker starts:
 *
 *   Subject: one line, may use {{variables}}
 *   --- text ---
 *   plain-text body
 *   --- html ---
 *   html body
 *
 * `{{name}}` inserts a value (HTML-escaped in the html part); `{{#flag}}...{{/flag}}` keeps its
 * content when the flag is true, `{{^flag}}...{{/flag}}` when it is false. `{{#invoices}}...{{/invoices}}`
 * repeats its content for each invoice the email lists, with `{{amount}}`, `{{invoiceDate}}` and
 * `{{invoiceFor}}` taken from that invoice.
 */

export const VARIABLES = [
  'customerName',
  'merchantName',
  'supportEmail',
  'amount',
  'link',
  'date',
  'cardExpiry',
  'logoUrl',
  'invoiceDate',
  'invoiceFor',
  'total',
] as const;
export type Variable = (typeof VARIABLES)[number];
export const FLAGS = [
  'hardDecline',
  'hasSupport',
  'hasDate',
  'hasName',
  'deadline',
  'hasLogo',
  'hasInvoice',
  'manyInvoices',
] as const;
export type Flag = (typeof FLAGS)[number];

/** Sections repeated per item; inside, the item's own values replace the email's. */
export const LISTS = ['invoices'] as const;
export type List = (typeof LISTS)[number];
export const LIST_ITEM_VARIABLES = ['amount', 'invoiceDate', 'invoiceFor'] as const;
export type ListItem = Record<(typeof LIST_ITEM_VARIABLES)[number], string>;

export type Values = Record<Variable, string> & Record<Flag, boolean> & { invoices?: ListItem[] };

type Node =
  | { type: 'text'; text: string }
  | { type: 'var'; name: Variable }
  | { type: 'block'; flag: Flag; negate: boolean; body: Node[] }
  | { type: 'each'; list: List; body: Node[] };

export interface CompiledTemplate {
  subject: Node[];
  text: Node[];
  html: Node[];
}

/** Words a customer must never read about their own card, in either language. */
const FORBIDDEN = /\b(stolen|lost|fraud\w*|gestohlen\w*|verloren\w*|betrug\w*|betrüg\w*)\b/i;

/** Parses one template file; returns the problems found (empty when the template is usable). */
export function compileTemplate(source: string): { template: CompiledTemplate | null; problems: string[] } {
  const problems: string[] = [];
  const lines = source.replace(/\r\n/g, '\n').split('\n');
  const subjectLine = lines.findIndex((l) => l.trim() !== '');
  const subjectMatch = subjectLine >= 0 ? /^Subject:\s*(.+)$/.exec(lines[subjectLine] ?? '') : null;
  if (!subjectMatch) problems.push('the first line must be "Subject: ..."');
  const textStart = lines.findIndex((l) => l.trim() === '--- text ---');
  const htmlStart = lines.findIndex((l) => l.trim() === '--- html ---');
  if (textStart < 0) problems.push('missing the "--- text ---" section');
  if (htmlStart < 0) problems.push('missing the "--- html ---" section');
  if (textStart >= 0 && htmlStart >= 0 && htmlStart < textStart)
    problems.push('"--- html ---" must come after "--- text ---"');
  if (problems.length > 0) return { template: null, problems };

  const parts = {
    subject: (subjectMatch?.[1] ?? '').trim(),
    text:
      lines
        .slice(textStart + 1, htmlStart)
        .join('\n')
        .trim() + '\n',
    html:
      lines
        .slice(htmlStart + 1)
        .join('\n')
        .trim() + '\n',
  };
  const forbidden = FORBIDDEN.exec(source);
  if (forbidden)
    problems.push(`uses the word "${forbidden[0]}": never tell a customer their card was lost, stolen or fraudulent`);
  const compiled: Partial<CompiledTemplate> = {};
  for (const key of ['subject', 'text', 'html'] as const) {
    try {
      compiled[key] = parse(parts[key]);
    } catch (err) {
      problems.push(`${key}: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) return { template: null, problems };
  return { template: compiled as CompiledTemplate, problems };
}

function parse(source: string): Node[] {
  const root: Node[] = [];
  const stack: Array<{ flag: Flag | List; body: Node[] }> = [];
  const current = () => stack.at(-1)?.body ?? root;
  const tag = /\{\{\s*([#^/]?)\s*([A-Za-z]+)\s*\}\}/g;
  let last = 0;
  for (let m = tag.exec(source); m; m = tag.exec(source)) {
    if (m.index > last) current().push({ type: 'text', text: source.slice(last, m.index) });
    last = m.index + m[0].length;
    const [, sigil, name = ''] = m;
    if (sigil === '') {
      if (!(VARIABLES as readonly string[]).includes(name))
        throw new Error(`unknown variable {{${name}}} (known: ${VARIABLES.join(', ')})`);
      current().push({ type: 'var', name: name as Variable });
    } else if (sigil === '/') {
      const open = stack.pop();
      if (!open || open.flag !== name) throw new Error(`{{/${name}}} does not close the open block`);
    } else if (sigil === '#' && (LISTS as readonly string[]).includes(name)) {
      if (stack.some((s) => (LISTS as readonly string[]).includes(s.flag)))
        throw new Error(`{{#${name}}} cannot be nested in another list`);
      const body: Node[] = [];
      current().push({ type: 'each', list: name as List, body });
      stack.push({ flag: name as List, body });
    } else {
      if (!(FLAGS as readonly string[]).includes(name))
        throw new Error(`unknown flag {{${sigil}${name}}} (known: ${FLAGS.join(', ')})`);
      const body: Node[] = [];
      current().push({ type: 'block', flag: name as Flag, negate: sigil === '^', body });
      stack.push({ flag: name as Flag, body });
    }
  }
  if (stack.length > 0) throw new Error(`block {{#${stack.at(-1)?.flag}}} is never closed`);
  if (/\{\{|\}\}/.test(source.slice(last))) throw new Error('malformed {{...}} tag');
  if (last < source.length) root.push({ type: 'text', text: source.slice(last) });
  return root;
}

export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

function renderNodes(nodes: Node[], values: Values, escape: (s: string) => string): string {
  let out = '';
  for (const node of nodes) {
    if (node.type === 'text') out += node.text;
    else if (node.type === 'var') out += escape(values[node.name]);
    else if (node.type === 'each') {
      for (const item of values[node.list] ?? []) out += renderNodes(node.body, { ...values, ...item }, escape);
    } else if (values[node.flag] !== node.negate) out += renderNodes(node.body, values, escape);
  }
  return out;
}

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

export function renderTemplate(template: CompiledTemplate, values: Values): RenderedEmail {
  return {
    // A value must never smuggle a header line into the subject.
    subject: renderNodes(template.subject, values, (s) => s.replace(/[\r\n]+/g, ' ')).trim(),
    text: renderNodes(template.text, values, (s) => s),
    html: renderNodes(template.html, values, escapeHtml),
  };
}
