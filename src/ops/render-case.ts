import type { ChargeCheck } from '../dunning/planner.ts';
import type { AttemptRow } from '../dunning/store.ts';
import { csrfOf, type Access } from './access.ts';
import type { AuditEntry, OpsAction } from './audit.ts';
import type { CaseView } from './case-view.ts';
import { h, money, opsPage, when } from './page.ts';

interface Item {
  at: Date;
  order: number;
  cls: 'stripe' | 'attempt' | 'email' | 'ops';
  html: string;
}

function declineText(a: AttemptRow): string {
  const codes = [
    a.declineCode,
    a.failureCode !== a.declineCode ? a.failureCode : null,
    a.adviceCode && `advice ${a.adviceCode}`,
    a.networkAdviceCode && `network advice ${a.networkAdviceCode}`,
  ].filter(Boolean);
  if (codes.length === 0) return a.failureMessage ?? '';
  return `${codes.join(', ')}${a.declineCategory ? ` [${a.declineCategory}]` : ''}`;
}

const ACTION_LABELS: Record<OpsAction, string> = { 'retry-now': 'Retry now', pause: 'Pause', resume: 'Resume' };

/** The actions the case's state allows; the action functions still decide (and may refuse). */
/** When the card rules next allow a charge of this card: what retry-now would be told. */
function nextCharge(next: ChargeCheck): string {
  if (next.allowed) return 'the card rules allow a charge now';
  if (next.until === null) return `no charge of this card, ever: ${next.reason}; a new card is needed`;
  return `next charge allowed from ${when(next.until)} (${next.reason})`;
}

function offeredActions(v: CaseView): OpsAction[] {
  const c = v.detail.caseRow;
  if (c.status !== 'open') return [];
  return c.paused ? ['retry-now', 'resume'] : ['retry-now', 'pause'];
}

function auditLine(e: AuditEntry): string {
  return `<b>${h(ACTION_LABELS[e.action])}</b> by ${h(e.actor)}: <span class="outcome ${h(e.outcome)}">${h(e.outcome)}</span> – ${h(e.detail)}`;
}

/** One case: the facts, the actions, then one timeline of everything that happened to it. */
export function renderCase(access: Access, v: CaseView, banner: AuditEntry | null): string {
  const c = v.detail.caseRow;
  const items: Item[] = [];
  for (const e of v.events) {
    items.push({
      at: e.created,
      order: 0,
      cls: 'stripe',
      html: `Stripe event <b>${h(e.type)}</b> <span class="muted">${h(e.id)} (${h(e.status)})</span>`,
    });
  }
  for (const a of v.detail.attempts) {
    // A cancelled or skipped attempt never ran: its finish is when it was called off.
    const charged = !['cancelled', 'skipped', 'planned'].includes(a.status);
    const ran = charged ? (a.startedAt ?? a.finishedAt) : null;
    const ended = !charged && a.finishedAt ? `, ${a.status} ${when(a.finishedAt)}` : '';
    items.push({
      at: a.plannedAt ?? ran ?? a.finishedAt ?? a.createdAt,
      order: 1,
      cls: 'attempt',
      html: `Attempt #${a.attemptNo} (${h(a.source)}): <b>${h(a.status)}</b>${a.requestTries > 0 ? ` (${a.requestTries} resent)` : ''}
<div>planned ${h(when(a.plannedAt))}${ran ? `, ran ${h(when(ran))}` : h(ended)}${a.planReason ? ` – ${h(a.planReason)}` : ''}</div>
${declineText(a) ? `<div class="muted">${h(declineText(a))}</div>` : ''}`,
    });
  }
  for (const m of v.emails) {
    items.push({
      at: m.sentAt ?? m.sendAt,
      order: 2,
      cls: 'email',
      html: `Email <b>${h(m.kind)}</b> (step ${m.step}): ${h(m.status)}${m.sentAt ? ` ${h(when(m.sentAt))}` : `, due ${h(when(m.sendAt))}`}${m.tries > 1 ? `, ${m.tries} tries` : ''}${m.note ? ` <span class="muted">– ${h(m.note)}</span>` : ''}
${m.preview ? `<details><summary>${h(m.preview.subject)}</summary><pre>${h(m.preview.text)}</pre></details>` : ''}`,
    });
  }
  for (const e of v.audit) items.push({ at: e.at, order: 3, cls: 'ops', html: auditLine(e) });
  items.sort((a, b) => a.at.getTime() - b.at.getTime() || a.order - b.order);

  const actions = offeredActions(v);
  const actionHtml =
    actions.length === 0
      ? '<p class="muted">No actions: the case is closed.</p>'
      : access.role !== 'ops'
        ? '<p class="muted">Read-only access: acting on cases needs a token from OPS_TOKENS.</p>'
        : `<div class="actions">${actions
            .map(
              (a) =>
                `<form method="get" action="/ops/confirm"><input type="hidden" name="invoice" value="${h(c.invoiceId)}"><input type="hidden" name="action" value="${a}"><button name="go" value="1" data-action="${a}">${h(ACTION_LABELS[a])}…</button></form>`,
            )
            .join('')}</div>`;
  const limits = v.card.limits;
  const facts = `<dl class="facts">
<dt>Amount</dt><dd id="amount">${h(money(c.amount, c.currency))}</dd>
<dt>Customer</dt><dd>${h(v.customerName ?? '')} ${h(v.email ?? '')} <span class="muted">${h(c.customerId)}</span> <a href="/ops?q=${encodeURIComponent(c.customerId)}&amp;status=open">their open cases</a></dd>
<dt>Status</dt><dd id="status">${h(c.status)}${c.paused ? ' <span class="tag paused">paused</span>' : ''}${c.closedAt ? ` ${h(when(c.closedAt))}: ${h(c.closeReason ?? '')}` : ''}</dd>
<dt>Opened</dt><dd>${h(when(c.openedAt))}</dd>
<dt>Next attempt</dt><dd id="next">${h(when(c.nextAttemptAt))} ${h(c.nextAttemptReason ?? '')}</dd>
<dt>Policy</dt><dd>${h(c.policyName)} ${h(c.policyVersion)} (${h(c.cohort)})${c.recoveryPath ? `; recovered via ${h(c.recoveryPath)}` : ''}${c.finalAction ? `; final action ${h(c.finalAction)} ${h(when(c.finalActionAt))}` : ''}</dd>
<dt>Card</dt><dd id="card">${h(v.card.brand ?? 'unknown brand')} ${h(v.card.paymentMethod ?? '')}; network budget across the customer's invoices: ${v.card.charges30d} of ${limits.maxAttempts30d} charges in 30 days${v.card.otherInvoices30d > 0 ? ` (${v.card.otherInvoices30d} for other invoices)` : ''}${limits.maxDeclines24h !== null ? `, ${v.card.declines24h} of ${limits.maxDeclines24h} declines in 24 hours` : ''} (${h(limits.label)} rules); <span id="card-next">${h(nextCharge(v.card.next))}</span></dd>
${c.reminderProblem ? `<dt>Email problem</dt><dd class="banner refused">${h(c.reminderProblem)}</dd>` : ''}
</dl>`;
  const bannerHtml = banner ? `<p class="banner ${h(banner.outcome)}" id="result">${auditLine(banner)}</p>` : '';
  const audit =
    v.audit.length === 0
      ? '<p class="muted">No operator actions yet.</p>'
      : `<table id="audit"><thead><tr><th>When</th><th>Who</th><th>Action</th><th>Result</th><th>Detail</th></tr></thead><tbody>${v.audit
          .map(
            (e) =>
              `<tr><td class="when">${h(when(e.at))}</td><td>${h(e.actor)}</td><td>${h(e.action)}</td><td>${h(e.outcome)}</td><td>${h(e.detail)}</td></tr>`,
          )
          .join('')}</tbody></table>`;
  return opsPage(
    c.invoiceId,
    access,
    `<h1>Case ${h(c.invoiceId)}</h1>${bannerHtml}${facts}
<h2>Actions</h2>${actionHtml}
<h2>Timeline</h2><ol class="timeline" id="timeline">${items
      .map((i) => `<li class="${i.cls}"><div class="t">${h(when(i.at))}</div>${i.html}</li>`)
      .join('')}</ol>
<h2>Audit log</h2>${audit}<p><a href="/ops/audit.csv?invoice=${encodeURIComponent(c.invoiceId)}">Export as CSV</a></p>`,
  );
}

const CONFIRM_TEXT: Record<OpsAction, string> = {
  'retry-now':
    'A manual attempt is planned now and the workers charge the card. A planned attempt is replaced; a paused case is resumed.',
  pause: 'Planned attempts are cancelled and pending emails held until the case is resumed.',
  resume: 'The planner plans the next attempt, and the emails the customer still needs are planned again.',
};

/** The confirmation step: the only page with a form that changes anything. */
export function renderConfirm(access: Extract<Access, { role: 'ops' }>, v: CaseView, action: OpsAction): string {
  const c = v.detail.caseRow;
  return opsPage(
    `${ACTION_LABELS[action]} ${c.invoiceId}`,
    access,
    `<h1>${h(ACTION_LABELS[action])}: ${h(c.invoiceId)}?</h1>
<p>${h(money(c.amount, c.currency))} owed by ${h(v.email ?? c.customerId)}. ${h(CONFIRM_TEXT[action])}</p>
<form method="post" action="/ops/action">
<input type="hidden" name="csrf" value="${h(csrfOf(access))}">
<input type="hidden" name="invoice" value="${h(c.invoiceId)}">
<input type="hidden" name="action" value="${action}">
<button class="primary" id="confirm">Yes, ${h(ACTION_LABELS[action].toLowerCase())}</button> <a href="/ops/case?invoice=${encodeURIComponent(c.invoiceId)}">Cancel</a>
</form>`,
  );
}
