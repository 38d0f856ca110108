import { describe, expect, it } from 'vitest';
import { applyMetadata, decodeForm, parsePairs, strings } from '../../src/sandbox/form.ts';

describe('Stripe form decoding', () => {
  it('nests brackets and builds arrays from indexed or empty brackets', () => {
    const form = decodeForm(
      parsePairs(
        'invoice_settings%5Bdefault_payment_method%5D=pm_1&expand%5B0%5D=payments&expand%5B1%5D=customer&items%5B%5D=a&items%5B%5D=b&metadata%5Bk%5D=v',
      ),
    );
    expect(form).toEqual({
      invoice_settings: { default_payment_method: 'pm_1' },
      expand: ['payments', 'customer'],
      items: ['a', 'b'],
      metadata: { k: 'v' },
    });
    expect(strings(form, 'expand')).toEqual(['payments', 'customer']);
  });

  it('deletes metadata keys set to the empty string', () => {
    const target: Record<string, string> = { keep: '1', drop: '2' };
    applyMetadata(target, { drop: '', add: '3' });
    expect(target).toEqual({ keep: '1', add: '3' });
  });
});
