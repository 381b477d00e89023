import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dateFromPostgres, isoString } from '../../src/timestamps.js';

/** A timestamptz as PostgreSQL writes it (DateStyle ISO): `fraction` digits, an offset in minutes. */
function postgresText(date: Date, fraction: string, offsetMinutes: number, withMinutes: boolean) {
  const local = new Date(date.getTime() + offsetMinutes * 60_000).toISOString();
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return (
    `${local.slice(0, 10)} ${local.slice(11, 19)}${fraction ? `.${fraction}` : ''}` +
    `${sign}${hh}${withMinutes || abs % 60 ? `:${mm}` : ''}`
  );
}

const same = (text: string) => {
  const fast = dateFromPostgres(text).getTime();
  const v8 = new Date(text).getTime();
  // NaN for both, or the same instant.
  expect(Number.isNaN(fast) ? 'invalid' : fast).toBe(Number.isNaN(v8) ? 'invalid' : v8);
};

describe('dateFromPostgres reads what new Date(text) reads', () => {
  it('for every instant of years 1 to 9999, any fraction and offset PostgreSQL writes', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('0001-01-02T00:00:00Z'), max: new Date('9999-12-30T00:00:00Z') }),
        fc.stringMatching(/^\d{0,6}$/),
        fc.integer({ min: -15 * 60, max: 15 * 60 }),
        fc.boolean(),
        (date, fraction, offset, withMinutes) => {
          if (Number.isNaN(date.getTime())) return;
          same(postgresText(date, fraction, offset, withMinutes));
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it('for what the service reads every day, and the edges of the calendar', () => {
    for (const text of [
      '2026-12-03 09:12:33.123+00',
      '2026-12-03 09:12:33.1+00',
      '2026-12-03 09:12:33+00',
      '2026-12-03 09:12:33.999999+00',
      '2026-12-31 23:59:59.999-05',
      '2024-02-29 12:00:00+05:30',
      '2000-02-29 00:00:00+00',
      '1900-03-01 00:00:00+00',
      '1970-01-01 00:00:00+00',
      '1969-12-31 23:59:59.999+00',
      '1000-01-01 00:00:00+00',
      '0999-12-31 23:59:59.999+00',
      '0050-06-01 12:00:00+00',
      '0001-01-01 00:00:00+00',
    ]) {
      same(text);
    }
  });

  it('hands every other text to new Date, as drizzle does', () => {
    for (const text of [
      'infinity',
      '-infinity',
      '0044-03-15 12:00:00+00 BC',
      '12026-12-03 09:12:33+00',
      '2026-12-03 09:12:33+05:30:15',
      '2026-12-03T09:12:33.123Z',
      '12/03/2026 09:12:33.123 UTC',
      '2026-12-03 09:12:33.+00',
      '2026-02-30 00:00:00+00',
      '2026-13-01 00:00:00+00',
      '2026-12-03 24:00:00+00',
      '2026-12-03 09:12:33.123+0x',
      '2026-12-03 09:12:33.123',
      '',
    ]) {
      same(text);
    }
  });
});

describe('isoString', () => {
  it('writes what toISOString writes, for any valid date', () => {
    fc.assert(
      fc.property(fc.date({ noInvalidDate: true }), (date) => {
        expect(isoString(date)).toBe(date.toISOString());
      }),
      { numRuns: 5_000 },
    );
    for (const iso of [
      '0999-12-31T23:59:59.999Z',
      '1000-01-01T00:00:00.000Z',
      '9999-12-31T23:59:59.999Z',
      '+010000-01-01T00:00:00.000Z',
      '-000001-01-01T00:00:00.000Z',
    ]) {
      expect(isoString(new Date(iso))).toBe(iso);
    }
  });
});
