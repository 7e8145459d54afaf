// How values read on the page: decimal strings formatted without going through a float
// (Intl.NumberFormat formats decimal strings exactly), units, and CSV.
import { Unit } from "./gen/kpi/v1/metrics_pb";

const numberFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const compactFormat = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 2 });

/** `"1234.5678"` → `"1,234.57"`: the string's own digits, rounded half away from zero. */
export function formatDecimal(value: string): string {
  // Intl.NumberFormat reads a string as an exact decimal (ECMA-402 NumberFormat v3).
  return numberFormat.format(value as unknown as number);
}

const UNIT_SUFFIX: Record<number, string> = {
  [Unit.PERCENT]: " %",
  [Unit.DAYS]: " days",
  [Unit.HOURS]: " h",
  [Unit.MONTHS]: " months",
  [Unit.RATIO]: "×",
};

export function withUnit(value: string, unit: Unit): string {
  return formatDecimal(value) + (UNIT_SUFFIX[unit] ?? "");
}

/** For a tile: as [`withUnit`], but a million or more in compact notation (`15.88M`). */
export function tileValue(value: string, unit: Unit): string {
  const digits = value.replace(/^-/, "").split(".")[0];
  if (digits.length < 7) return withUnit(value, unit);
  return compactFormat.format(value as unknown as number) + (UNIT_SUFFIX[unit] ?? "");
}

/** A change: signed, in points for a percent, a million or more in compact notation. */
export function formatChange(change: string, unit: Unit): string {
  const sign = change.startsWith("-") ? "−" : "+";
  const magnitude = change.replace(/^[-+]/, "");
  const digits = magnitude.split(".")[0].length < 7 ? formatDecimal(magnitude) : compactFormat.format(magnitude as unknown as number);
  const suffix = unit === Unit.PERCENT ? " pt" : (UNIT_SUFFIX[unit] ?? "");
  return `${sign}${digits}${suffix}`;
}

export function unitName(unit: Unit): string {
  return (Unit[unit] ?? "").toLowerCase();
}

function csvField(field: string): string {
  return /[",\n\r]/.test(field) ? `"${field.replace(/"/g, '""')}"` : field;
}

export function toCsv(header: string[], rows: string[][]): string {
  return [header, ...rows].map((row) => row.map(csvField).join(",")).join("\r\n") + "\r\n";
}

export function download(filename: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: "text/csv;charset=utf-8" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}
