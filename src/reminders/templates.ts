/**
 * The set of email templates: the defaults shipped in `templates/<locale>/<kind>.tpl`, each
 * replaceable by a file of the same name in the merchant's TEMPLATES_DIR. Everything is read and
 * checked once, at start: a broken template stops the worker with a message naming the file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../paths.ts';
import { REMINDER_KINDS, type ReminderKind } from './kinds.ts';
import { LOCALES, type Locale } from './localize.ts';
import {
  compileTemplate,
  escapeHtml,
  renderTemplate,
  type CompiledTemplate,
  type RenderedEmail,
  type Values,
} from './template-engine.ts';

export const defaultTemplatesDir = path.join(projectRoot, 'templates');

export interface TemplateSet {
  render(kind: ReminderKind, locale: Locale, values: Values): RenderedEmail;
  /** Which file each template came from, for the start-up log. */
  sources: Record<string, string>;
}

export class TemplateError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid email templates:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'TemplateError';
    this.problems = problems;
  }
}

export function loadTemplates(overrideDir: string | null, defaultsDir: string = defaultTemplatesDir): TemplateSet {
  const problems: string[] = [];
  if (overrideDir !== null && !fs.existsSync(overrideDir)) {
    throw new TemplateError([`TEMPLATES_DIR ${overrideDir} does not exist`]);
  }
  if (overrideDir !== null) problems.push(...strayFiles(overrideDir));
  const compiled = new Map<string, CompiledTemplate>();
  const sources: Record<string, string> = {};
  for (const locale of LOCALES) {
    for (const kind of REMINDER_KINDS) {
      const name = path.join(locale, `${kind}.tpl`);
      const override = overrideDir === null ? null : path.join(overrideDir, name);
      const file = override !== null && fs.existsSync(override) ? override : path.join(defaultsDir, name);
      let source: string;
      try {
        source = fs.readFileSync(file, 'utf8');
      } catch (err) {
        problems.push(`${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
        continue;
      }
      const result = compileTemplate(source);
      for (const p of result.problems) problems.push(`${file}: ${p}`);
      if (result.template) compiled.set(`${locale}/${kind}`, result.template);
      sources[`${locale}/${kind}`] = file;
    }
  }
  if (problems.length > 0) throw new TemplateError(problems);
  return {
    sources,
    render(kind, locale, values) {
      const template = compiled.get(`${locale}/${kind}`);
      if (!template) throw new Error(`no template for ${locale}/${kind}`);
      const email = renderTemplate(template, values);
      return { ...email, html: emailFrame(email.html, values) };
    },
  };
}

/**
 * The frame around every email's html: the merchant's logo (or name) on top, the body on a white
 * card, with inline styles only (mail clients drop style sheets). Templates hold the words; the
 * frame is the same for all of them.
 */
export function emailFrame(body: string, values: Values): string {
  const name = escapeHtml(values.merchantName);
  const brand = values.hasLogo
    ? `<img src="${escapeHtml(values.logoUrl)}" alt="${name}" height="40" style="display:block;max-height:48px;max-width:240px;height:40px;border:0">`
    : name;
  return `<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${name}</title></head>
<body style="margin:0;padding:0;background:#f2f3f5">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f2f3f5"><tr><td align="center" style="padding:24px 12px">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:560px;background:#ffffff;border-radius:8px;font:15px/1.5 -apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#1a1a1a">
<tr><td class="brand" style="padding:20px 28px;border-bottom:1px solid #e8e8e8;font-size:18px;font-weight:600">${brand}</td></tr>
<tr><td style="padding:8px 28px 24px">
${body}
</td></tr></table>
</td></tr></table>
</body></html>
`;
}

/** A misspelt override file would otherwise be ignored in silence while the default goes out. */
function strayFiles(dir: string): string[] {
  const problems: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    if (!(LOCALES as readonly string[]).includes(entry.name)) {
      problems.push(`${path.join(dir, entry.name)}: unknown locale folder (known: ${LOCALES.join(', ')})`);
      continue;
    }
    for (const file of fs.readdirSync(path.join(dir, entry.name))) {
      const kind = file.replace(/\.tpl$/, '');
      if (!file.endsWith('.tpl') || !(REMINDER_KINDS as readonly string[]).includes(kind)) {
        problems.push(
          `${path.join(dir, entry.name, file)}: not a known template (expected one of ${REMINDER_KINDS.map((k) => `${k}.tpl`).join(', ')})`,
        );
      }
    }
  }
  return problems;
}
