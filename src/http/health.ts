import type { Sql } from '../db.ts';
import { sendJson, type Routes } from './server.ts';

export interface HealthDeps {
  sql: Sql;
  /** True while the job queue is started (pg-boss running in this process). */
  queueRunning(): boolean;
  timeoutMs?: number;
}

export interface Health {
  ok: boolean;
  /** `degraded` while the database or the queue is away: the process lives on and recovers by itself. */
  status: 'ok' | 'degraded';
  db: 'ok' | 'down';
  queue: 'ok' | 'down';
}

export async function checkHealth(deps: HealthDeps): Promise<Health> {
  let timer: NodeJS.Timeout | undefined;
  const db = await Promise.race([
    deps.sql`select 1`.then(
      () => 'ok' as const,
      () => 'down' as const,
    ),
    new Promise<'down'>((resolve) => {
      timer = setTimeout(() => resolve('down'), deps.timeoutMs ?? 2_000);
    }),
  ]);
  clearTimeout(timer);
  const queue = deps.queueRunning() ? 'ok' : 'down';
  const ok = db === 'ok' && queue === 'ok';
  return { ok, status: ok ? 'ok' : 'degraded', db, queue };
}

export function healthRoutes(deps: HealthDeps): Routes {
  return {
    '/healthz': async (req, res) => {
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET' });
      const h = await checkHealth(deps);
      sendJson(res, h.ok ? 200 : 503, h, { 'cache-control': 'no-store' });
    },
  };
}
