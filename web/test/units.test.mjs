// Worked examples for the page's helpers that hold rules (decimal formatting without
// floats, CSV quoting, local midnight in a zone across DST): src/format.ts and
// src/window.ts, bundled by esbuild in memory and imported as a module.
//
//   node --test test/units.test.mjs
import assert from "node:assert/strict";
import { test } from "node:test";
import { build } from "esbuild";

const bundle = await build({
  stdin: {
    contents: 'export * from "./src/format.ts"; export * from "./src/window.ts"; export { Unit } from "./src/gen/kpi/v1/metrics_pb.js";',
    resolveDir: new URL("..", import.meta.url).pathname,
    loader: "ts",
  },
  bundle: true,
  format: "esm",
  write: false,
  platform: "neutral",
});
const page = await import(`data:text/javascript;base64,${Buffer.from(bundle.outputFiles[0].text).toString("base64")}`);
const { Unit } = page;

test("decimals are formatted from their digits, never through a float", () => {
  assert.equal(page.formatDecimal("1234.5678"), "1,234.57");
  assert.equal(page.formatDecimal("0.125"), "0.13");
  assert.equal(page.formatDecimal("-0.5"), "-0.5");
  // 2^53 + 1 and twenty digits: a float would round both.
  assert.equal(page.formatDecimal("9007199254740993"), "9,007,199,254,740,993");
  assert.equal(page.formatDecimal("12345678901234567890.125"), "12,345,678,901,234,567,890.13");
});

test("units, tiles and changes", () => {
  assert.equal(page.withUnit("33.3333", Unit.PERCENT), "33.33 %");
  assert.equal(page.withUnit("29.2", Unit.DAYS), "29.2 days");
  assert.equal(page.tileValue("979878.61", Unit.CURRENCY), "979,878.61");
  assert.equal(page.tileValue("15883049.42", Unit.CURRENCY), "15.88M");
  assert.equal(page.formatChange("-2.5", Unit.PERCENT), "−2.5 pt");
  assert.equal(page.formatChange("130", Unit.CURRENCY), "+130");
  assert.equal(page.formatChange("33890000.5", Unit.CURRENCY), "+33.89M");
  assert.equal(page.unitName(Unit.CURRENCY), "currency");
});

test("CSV fields with commas, quotes or newlines are quoted", () => {
  assert.equal(
    page.toCsv(["metric_id", "undefined_reason"], [["a.b", 'no "x", none'], ["c.d", "line\nbreak"], ["e.f", ""]]),
    'metric_id,undefined_reason\r\na.b,"no ""x"", none"\r\nc.d,"line\nbreak"\r\ne.f,\r\n',
  );
});

test("a date is local midnight in the zone, across DST changes", () => {
  const midnight = (date, zone) => page.zonedMidnight(date, zone).toISOString();
  assert.equal(midnight("2024-01-01", "UTC"), "2024-01-01T00:00:00.000Z");
  // Paris: UTC+1 in winter, UTC+2 from 31 March 2024 02:00.
  assert.equal(midnight("2024-03-31", "Europe/Paris"), "2024-03-30T23:00:00.000Z");
  assert.equal(midnight("2024-04-01", "Europe/Paris"), "2024-03-31T22:00:00.000Z");
  assert.equal(midnight("2024-07-01", "America/New_York"), "2024-07-01T04:00:00.000Z");
  assert.equal(midnight("2024-12-01", "Asia/Kolkata"), "2024-11-30T18:30:00.000Z");
  assert.equal(page.isTimeZone("Europe/Paris"), true);
  assert.equal(page.isTimeZone("Mars/Olympus"), false);
});

test("the default window is the twelve whole months before the current one", () => {
  assert.deepEqual(page.lastTwelveMonths(new Date("2026-12-02T09:00:00Z")), { start: "2025-12-01", end: "2026-12-01" });
  assert.deepEqual(page.lastTwelveMonths(new Date("2026-01-31T23:00:00Z")), { start: "2025-01-01", end: "2026-01-01" });
});
