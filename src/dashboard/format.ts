/** `#abc` or `#aabbcc` as [r, g, b]. */
function rgbOf(hex: string): [number, number, number] {
  const digits = hex.replace('#', '');
  const full = digits.length === 3 ? [...digits].map((d) => d + d).join('') : digits;
  const n = Number.parseInt(full, 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** WCAG relative luminance. */
function luminance(hex: string): number {
  const [r, g, b] = rgbOf(hex).map((c) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

const DARK_TEXT = '#111111';
const LIGHT_TEXT = '#ffffff';

/** Near-black or white text on `hex`: whichever has the higher WCAG contrast ratio. */
export function textColorOn(hex: string): string {
  const background = luminance(hex);
  const contrast = (text: string) => {
    const [a, b] = [luminance(text), background].sort((x, y) => y - x) as [number, number];
    return (a + 0.05) / (b + 0.05);
  };
  return contrast(DARK_TEXT) >= contrast(LIGHT_TEXT) ? DARK_TEXT : LIGHT_TEXT;
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** "3 minutes ago". */
export function ago(iso: string, now = Date.now()): string {
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 60) return relative.format(seconds, 'second');
  if (abs < 3600) return relative.format(Math.round(seconds / 60), 'minute');
  if (abs < 86400) return relative.format(Math.round(seconds / 3600), 'hour');
  return relative.format(Math.round(seconds / 86400), 'day');
}

export function shortId(id: string): string {
  return id.slice(0, 8);
}
