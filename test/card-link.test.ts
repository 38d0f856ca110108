import { describe, expect, it } from 'vitest';
import { cardLinkUrl, createCardLinkSigner, deriveCardLinkKey } from '../src/card-link.ts';

const signer = createCardLinkSigner('sk_test_card_link_key_0123456789');
const now = new Date('2026-03-02T12:00:00Z');
const in30Days = new Date('2026-04-01T12:00:00Z');

describe('update-card link tokens', () => {
  it('a signed token verifies before its expiry and names the customer', () => {
    const token = signer.sign('cus_Abc123', in30Days);
    expect(token).toMatch(/^cus_Abc123\.\d+\.[A-Za-z0-9_-]{22}$/);
    expect(signer.verify(token, now)).toEqual({ ok: true, customerId: 'cus_Abc123', expiresAt: in30Days });
    expect(signer.verify(token, new Date(in30Days.getTime() - 1))).toMatchObject({ ok: true });
  });

  it('expires at its time, and says so only because the signature is good', () => {
    const token = signer.sign('cus_1', in30Days);
    expect(signer.verify(token, in30Days)).toEqual({
      ok: false,
      reason: 'expired',
      customerId: 'cus_1',
      expiresAt: in30Days,
    });
    expect(signer.verify(token, new Date('2027-01-01T00:00:00Z'))).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('rounds the expiry up to the second: never earlier than promised', () => {
    const token = signer.sign('cus_1', new Date('2026-04-01T12:00:00.200Z'));
    expect(signer.verify(token, new Date('2026-04-01T12:00:00.900Z'))).toMatchObject({ ok: true });
  });

  it('refuses a token whose customer, expiry or MAC was changed', () => {
    const token = signer.sign('cus_victim', in30Days);
    const [cus, exp, mac] = token.split('.') as [string, string, string];
    // Another customer with the victim's MAC: the classic tampering.
    expect(signer.verify(`cus_attacker.${exp}.${mac}`, now)).toEqual({ ok: false, reason: 'bad_signature' });
    // A later expiry to revive an old link.
    expect(signer.verify(`${cus}.${Number(exp) + 86_400}.${mac}`, now)).toEqual({ ok: false, reason: 'bad_signature' });
    // One flipped character of the MAC, wherever it is.
    for (let i = 0; i < mac.length; i += 1) {
      const c = mac[i] === 'A' ? 'B' : 'A';
      expect(signer.verify(`${cus}.${exp}.${mac.slice(0, i)}${c}${mac.slice(i + 1)}`, now)).toMatchObject({
        ok: false,
      });
    }
    // A tampered link that is also past its expiry is bad, not "expired".
    expect(signer.verify(`cus_attacker.${exp}.${mac}`, new Date('2030-01-01T00:00:00Z'))).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
  });

  it('refuses a token signed with another key (a rotated Stripe key)', () => {
    const token = createCardLinkSigner('sk_test_the_old_key_000000000000').sign('cus_1', in30Days);
    expect(signer.verify(token, now)).toEqual({ ok: false, reason: 'bad_signature' });
    // Test and live keys of one account never vouch for each other's links.
    expect(deriveCardLinkKey('sk_test_x')).not.toEqual(deriveCardLinkKey('sk_live_x'));
  });

  it.each([
    ['empty', ''],
    ['cut off', signer.sign('cus_1', in30Days).slice(0, -3)],
    ['two parts', 'cus_1.1775044800'],
    ['four parts', `${signer.sign('cus_1', in30Days)}.x`],
    ['a non-numeric expiry', 'cus_1.soon.AAAAAAAAAAAAAAAAAAAAAA'],
    ['a customer id with odd characters', 'cus_1%27.1775044800.AAAAAAAAAAAAAAAAAAAAAA'],
  ])('calls %s token malformed', (_name, token) => {
    expect(signer.verify(token, now)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('signs only Stripe-shaped customer ids', () => {
    expect(() => signer.sign('cus.1', in30Days)).toThrow(/not a Stripe customer id/);
  });

  it('builds the link under the public URL', () => {
    expect(cardLinkUrl('https://billing.example.com/dunning', 'tok')).toBe(
      'https://billing.example.com/dunning/update-card?t=tok',
    );
  });
});
