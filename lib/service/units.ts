/**
 * Durations and sizes as a config file writes them. A duration is a number
 * of seconds (`20`, `0.5`) or a string with a unit (`"500ms"`, `"20s"`,
 * `"5m"`, `"1h"`); a size is a whole number of bytes (`65536`) or a string
 * with a binary unit (`"64KiB"`, `"1MiB"`, `"1GiB"`, `"512B"`). Both give
 * null for anything else, so the caller can say what it got.
 */

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_UNITS: Readonly<Record<string, number>> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

const WITH_UNIT = /^(\d+(?:\.\d+)?) ?([A-Za-z]+)$/;

/** Milliseconds, rounded to a whole number; null when `value` is not a duration. */
export function durationMs(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : null;
  if (typeof value !== 'string') return null;
  const match = WITH_UNIT.exec(value.trim());
  const unit = match === null ? undefined : DURATION_UNITS[match[2]!];
  if (unit === undefined) return null;
  return Math.round(Number(match![1]) * unit);
}

/** Bytes; null when `value` is not a size or not a whole number of bytes. */
export function sizeBytes(value: unknown): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : null;
  if (typeof value !== 'string') return null;
  const match = WITH_UNIT.exec(value.trim());
  const unit = match === null ? undefined : SIZE_UNITS[match[2]!];
  if (unit === undefined) return null;
  const bytes = Number(match![1]) * unit;
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** How a duration may be written, for error messages. */
export const DURATION_FORMS = 'seconds as a number, or a string such as "500ms", "20s", "5m", "1h"';
/** How a size may be written, for error messages. */
export const SIZE_FORMS = 'bytes as a whole number, or a string such as "512B", "64KiB", "1MiB", "1GiB"';
