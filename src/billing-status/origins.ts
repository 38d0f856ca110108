/**
 * BANNER_ORIGINS: the merchant's web origins allowed to read `/embed/billing-status` from a browser
 * (CORS). Exact origins only (`https://app.example.com`, a port when not the default): a wildcard
 * would let any site that obtains a token read a customer's billing status.
 */
export function parseOrigins(raw: string | null, problems: string[]): string[] {
  if (raw === null) return [];
  const out: string[] = [];
  raw
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)
    .forEach((entry, i) => {
      const at = `BANNER_ORIGINS: entry ${i + 1} ("${entry}")`;
      let u: URL;
      try {
        // WHATWG URLs accept `*` in a host; a wildcard is exactly what this list must not hold.
        if (entry.includes('*')) throw new Error('wildcard');
        u = new URL(entry);
      } catch {
        problems.push(`${at} is not an origin such as https://app.example.com`);
        return;
      }
      if (u.protocol !== 'https:' && u.protocol !== 'http:') problems.push(`${at}: expected an http(s) origin`);
      else if (u.origin !== entry.replace(/\/$/, ''))
        problems.push(`${at}: expected only scheme, host and port, such as ${u.origin} (no path, query or wildcard)`);
      else if (!out.includes(u.origin)) out.push(u.origin);
    });
  return out;
}
