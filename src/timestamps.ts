/**
 * Timestamps between PostgreSQL's text and the API's ISO strings, without V8's slow paths: a page
 * of 50 runs reads 100 timestamps and writes 50, and `new Date(text)` (V8's legacy parser, for
 * PostgreSQL's `2026-12-03 09:12:33.123+00`) and `toISOString()` (a call into C++) took a tenth
 * of the service's CPU for that page (issue 18). Both functions answer exactly what those two
 * answer: the common forms are read and written here, anything else is handed to them.
 */

/**
 * A `timestamptz` as PostgreSQL writes it under DateStyle ISO (`YYYY-MM-DD HH:MM:SS[.fff…]`
 * then an offset `±HH` or `±HH:MM`) in years 1000 to 9999, as a Date. Any other text (another
 * DateStyle, an earlier year, which V8 reads as 19xx or 20xx below 100, a later one, BC,
 * `infinity`, an offset with seconds) goes to `new Date(text)`, as drizzle reads it. Fractions
 * past milliseconds are cut, as `new Date` cuts them.
 */
export function dateFromPostgres(text: string): Date {
  const n = text.length;
  if (
    n < 22 ||
    text.charCodeAt(4) !== 45 || // -
    text.charCodeAt(7) !== 45 ||
    text.charCodeAt(10) !== 32 || // space
    text.charCodeAt(13) !== 58 || // :
    text.charCodeAt(16) !== 58
  ) {
    return new Date(text);
  }
  const year = twoDigits(text, 0) * 100 + twoDigits(text, 2);
  const month = twoDigits(text, 5);
  const day = twoDigits(text, 8);
  const hours = twoDigits(text, 11);
  const minutes = twoDigits(text, 14);
  const seconds = twoDigits(text, 17);
  let i = 19;
  let ms = 0;
  if (text.charCodeAt(i) === 46) {
    // .
    let digits = 0;
    for (i++; i < n; i++) {
      const digit = text.charCodeAt(i) - 48;
      if (digit < 0 || digit > 9) break;
      if (digits++ < 3) ms = ms * 10 + digit;
    }
    if (digits === 0) return new Date(text);
    for (; digits < 3; digits++) ms *= 10;
  }
  const sign = text.charCodeAt(i);
  if ((sign !== 43 && sign !== 45) || (n !== i + 3 && n !== i + 6)) return new Date(text);
  let offset = twoDigits(text, i + 1) * 60;
  if (n === i + 6) {
    if (text.charCodeAt(i + 3) !== 58) return new Date(text);
    offset += twoDigits(text, i + 4);
  }
  if (
    !(year >= 1000 && month >= 1 && month <= 12 && day >= 1) ||
    !(hours <= 23 && minutes <= 59 && seconds <= 59) ||
    day > daysInMonth(year, month) ||
    offset !== offset
  ) {
    return new Date(text);
  }
  const localMinutes = (daysSinceEpoch(year, month, day) * 24 + hours) * 60 + minutes;
  const utcMinutes = sign === 43 ? localMinutes - offset : localMinutes + offset;
  return new Date(utcMinutes * 60_000 + seconds * 1000 + ms);
}

/** A timestamp as a driver hands it over: PostgreSQL's text (postgres.js), or a Date (PGlite). */
export function readTimestamp(value: string | Date): Date {
  return typeof value === 'string' ? dateFromPostgres(value) : value;
}

const MS_PER_DAY = 86_400_000;

/**
 * `date.toISOString()`, written here for years 1000 to 9999 (any other, and an invalid date, go
 * to it). The fields come from the time value by arithmetic: each `getUTC…()` is a call into
 * V8's date cache, and six of them per timestamp were most of this function's cost.
 */
export function isoString(date: Date): string {
  const time = date.getTime();
  const days = Math.floor(time / MS_PER_DAY);
  const { year, month, day } = civilFromDays(days);
  if (!(year >= 1000 && year <= 9999)) return date.toISOString();
  let inDay = time - days * MS_PER_DAY;
  const ms = inDay % 1000;
  inDay = (inDay - ms) / 1000;
  const seconds = inDay % 60;
  inDay = (inDay - seconds) / 60;
  const minutes = inDay % 60;
  const hours = (inDay - minutes) / 60;
  return (
    `${year}-${TWO_DIGITS[month]}-${TWO_DIGITS[day]}T${TWO_DIGITS[hours]}:` +
    `${TWO_DIGITS[minutes]}:${TWO_DIGITS[seconds]}.${THREE_DIGITS[ms]}Z`
  );
}

const TWO_DIGITS = Array.from({ length: 100 }, (_, n) => String(n).padStart(2, '0'));
const THREE_DIGITS = Array.from({ length: 1000 }, (_, n) => String(n).padStart(3, '0'));

/** Two decimal digits at `at`, or NaN. */
function twoDigits(text: string, at: number): number {
  const tens = text.charCodeAt(at) - 48;
  const ones = text.charCodeAt(at + 1) - 48;
  return tens >= 0 && tens <= 9 && ones >= 0 && ones <= 9 ? tens * 10 + ones : NaN;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * The date of the proleptic Gregorian calendar `days` after 1970-01-01: daysSinceEpoch
 * inverted (H. Hinnant's algorithm, in 400-year eras of 146,097 days starting in March).
 */
function civilFromDays(days: number): { year: number; month: number; day: number } {
  const shifted = days + 719_468;
  const era = Math.floor(shifted / 146_097);
  const dayOfEra = shifted - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra -
      Math.floor(dayOfEra / 1460) +
      Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) /
      365,
  );
  const dayOfYear =
    dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthFromMarch = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthFromMarch + 2) / 5) + 1;
  const month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9;
  return { year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

/** Days from 1970-01-01 to a date of the proleptic Gregorian calendar (H. Hinnant's algorithm). */
function daysSinceEpoch(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra =
    yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}
