// The dashboard: the catalogue by family, one tile per chosen metric (all from one
// BatchCompute), and for the selected metric its chart by bucket, a breakdown by any of its
// dimensions and the inputs behind any value. State that a link should keep (window,
// granularity, zone, comparison, chosen metrics) lives in the URL's hash.
import { timestampFromDate, timestampDate } from "@bufbuild/protobuf/wkt";
import { isUnauthenticated, metrics, rpcFailure, storeApiKey, storedApiKey, codeName, type RpcFailure } from "./api";
import { barChart } from "./chart";
import { download, formatChange, tileValue, toCsv, unitName, withUnit } from "./format";
import {
  Comparison,
  Granularity,
  Trend,
  Unit,
  type BatchComputeResult,
  type MetricDescriptor,
  type Row,
} from "./gen/kpi/v1/metrics_pb";
import { isTimeZone, isoDate, lastTwelveMonths, zonedMidnight } from "./window";

/** What the controls ask for. */
interface Query {
  start: string;
  end: string;
  granularity: Granularity;
  timeZone: string;
  compare: boolean;
}

/** One tile's answer: its row for the whole window, or why there is none. */
interface TileAnswer {
  row?: Row;
  error?: RpcFailure;
}

/** The group_by that asks for one row per metric (and bucket) whatever its default grouping. */
const NO_GROUPS = "none";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

const controls = {
  form: $<HTMLFormElement>("controls"),
  keyField: $("key-field"),
  key: $<HTMLInputElement>("api-key"),
  start: $<HTMLInputElement>("start"),
  end: $<HTMLInputElement>("end"),
  granularity: $<HTMLSelectElement>("granularity"),
  timeZone: $<HTMLInputElement>("time-zone"),
  compare: $<HTMLInputElement>("compare"),
};

let descriptors: MetricDescriptor[] = [];
let chosen = new Set<string>();
const answers = new Map<string, TileAnswer>();
let selected: string | undefined;
let seriesRows: Row[] = [];
let breakdownRows: Row[] = [];
let breakdownDimension = "";
let showTable = false;
/** Bumped by every refresh, so that a slow answer to an older one is dropped. */
let generation = 0;

function descriptor(id: string): MetricDescriptor | undefined {
  return descriptors.find((metric) => metric.id === id);
}

function families(): Map<string, MetricDescriptor[]> {
  const byFamily = new Map<string, MetricDescriptor[]>();
  for (const metric of descriptors) {
    byFamily.set(metric.family, [...(byFamily.get(metric.family) ?? []), metric]);
  }
  return byFamily;
}

// ---------------------------------------------------------------- status

function setStatus(failure?: RpcFailure, context = ""): void {
  const status = $("status");
  status.textContent = failure ? `${context}${failure.code}: ${failure.message}` : "";
  status.dataset.code = failure?.code ?? "";
}

function setState(state: "loading" | "ready" | "error" | "key"): void {
  document.body.dataset.state = state;
  $("tiles").setAttribute("aria-busy", String(state === "loading"));
}

// ---------------------------------------------------------------- query and URL

function readQuery(): Query | undefined {
  // Checked here only what the request could not carry; kpid checks the rest (end before start…).
  const timeZone = controls.timeZone.value.trim() || "UTC";
  if (!isTimeZone(timeZone)) {
    setStatus({ code: "INVALID_ARGUMENT", message: `unknown time zone ${timeZone}` });
    return undefined;
  }
  if (!controls.start.value || !controls.end.value) {
    setStatus({ code: "INVALID_ARGUMENT", message: "the window needs a start and an end date" });
    return undefined;
  }
  return {
    start: controls.start.value,
    end: controls.end.value,
    granularity: Number(controls.granularity.value) as Granularity,
    timeZone,
    compare: controls.compare.checked,
  };
}

function windowOf(query: Query) {
  return {
    start: timestampFromDate(zonedMidnight(query.start, query.timeZone)),
    end: timestampFromDate(zonedMidnight(query.end, query.timeZone)),
    timeZone: query.timeZone,
  };
}

function comparison(query: Query): Comparison {
  return query.compare ? Comparison.PREVIOUS_PERIOD : Comparison.UNSPECIFIED;
}

function writeHash(query: Query): void {
  const params = new URLSearchParams({
    start: query.start,
    end: query.end,
    by: Granularity[query.granularity].toLowerCase(),
    tz: query.timeZone,
    compare: query.compare ? "1" : "0",
  });
  if (chosen.size !== descriptors.length) params.set("metrics", [...chosen].join(","));
  if (selected) params.set("metric", selected);
  history.replaceState(null, "", `#${params}`);
}

/** The controls from the URL's hash, else the window the server suggests, else the last 12 months. */
function readHash(): { metrics?: string[]; metric?: string } {
  const params = new URLSearchParams(location.hash.slice(1));
  const suggested = document.querySelector<HTMLMetaElement>('meta[name="kpid-window"]')?.content ?? "";
  const [suggestedStart, suggestedEnd] = suggested.split("/");
  const fallback = suggestedStart && suggestedEnd
    ? { start: isoDate(new Date(suggestedStart)), end: isoDate(new Date(suggestedEnd)) }
    : lastTwelveMonths();
  controls.start.value = params.get("start") ?? fallback.start;
  controls.end.value = params.get("end") ?? fallback.end;
  const by = params.get("by")?.toUpperCase();
  if (by && by in Granularity) controls.granularity.value = String(Granularity[by as keyof typeof Granularity]);
  controls.timeZone.value = params.get("tz") ?? "UTC";
  controls.compare.checked = params.get("compare") !== "0";
  return { metrics: params.get("metrics")?.split(",").filter(Boolean), metric: params.get("metric") ?? undefined };
}

// ---------------------------------------------------------------- catalogue

async function loadCatalogue(initial: { metrics?: string[]; metric?: string }): Promise<void> {
  setState("loading");
  try {
    const response = await metrics.listMetrics({});
    // A cohort table (grouped by cohort by default) has no single value for a tile:
    // `kpid cohorts` prints it.
    descriptors = response.metrics.filter((d) => !d.defaultGroupBy.includes("cohort"));
  } catch (error) {
    if (isUnauthenticated(error)) {
      controls.keyField.hidden = false;
      controls.key.focus();
      setState("key");
    } else {
      setState("error");
    }
    setStatus(rpcFailure(error), "ListMetrics: ");
    return;
  }
  setStatus();
  const known = new Set(descriptors.map((metric) => metric.id));
  chosen = new Set(initial.metrics?.filter((id) => known.has(id)) ?? descriptors.map((metric) => metric.id));
  selected = initial.metric && known.has(initial.metric) ? initial.metric : undefined;
  const tiles = refresh();
  renderCatalogue();
  await tiles;
}

function renderCatalogue(): void {
  const container = $("families");
  container.replaceChildren();
  for (const [family, members] of families()) {
    const fieldset = document.createElement("fieldset");
    const legend = document.createElement("legend");
    legend.textContent = family;
    fieldset.append(legend);
    for (const metric of members) {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = metric.id;
      box.checked = chosen.has(metric.id);
      box.addEventListener("change", () => {
        if (box.checked) chosen.add(metric.id);
        else chosen.delete(metric.id);
        void refresh();
      });
      label.append(box, ` ${metric.name}`);
      label.title = metric.description;
      fieldset.append(label);
    }
    container.append(fieldset);
  }
}

// ---------------------------------------------------------------- tiles

/** Every tile: from one BatchCompute over the window, compared with the previous period. */
async function refresh(): Promise<void> {
  const query = readQuery();
  if (!query || descriptors.length === 0) return;
  writeHash(query);
  const mine = ++generation;
  $("chosen-count").textContent = `(${chosen.size} of ${descriptors.length})`;
  answers.clear();
  if (chosen.size === 0) {
    renderTiles();
    $("detail").hidden = true;
    setState("ready");
    return;
  }
  // The call first, then the skeletons while it runs.
  const call = metrics.batchCompute({
    ...windowOf(query),
    // `none`: one row per metric, even where a metric groups by default (campaign ROI).
    groupBy: [NO_GROUPS],
    compare: comparison(query),
    metrics: [...chosen].map((metricId) => ({ metricId })),
  });
  renderTiles();
  setState("loading");
  try {
    const response = await call;
    if (mine !== generation) return;
    for (const result of response.results) answers.set(result.metricId, answer(result));
    setStatus();
    renderTiles();
    performance.mark("kpid:tiles");
    // The frame after the next one starts once the tiles have been painted.
    requestAnimationFrame(() => requestAnimationFrame(() => performance.mark("kpid:tiles-painted")));
    setState("ready");
  } catch (error) {
    if (mine !== generation) return;
    const failure = rpcFailure(error);
    for (const id of chosen) answers.set(id, { error: failure });
    renderTiles();
    setStatus(failure, "BatchCompute: ");
    if (isUnauthenticated(error)) controls.keyField.hidden = false;
    setState("error");
    return;
  }
  const focus = selected && chosen.has(selected) ? selected : [...chosen][0];
  if (focus) await selectMetric(focus, undefined, true);
}

function answer(result: BatchComputeResult): TileAnswer {
  if (result.error) {
    return { error: { code: codeName(result.error.code), message: result.error.message } };
  }
  return { row: result.rows[0] };
}

function renderTiles(): void {
  const container = $("tiles");
  if (showTable) {
    container.replaceChildren(tilesTable());
    return;
  }
  const sections: HTMLElement[] = [];
  for (const [family, members] of families()) {
    const shown = members.filter((metric) => chosen.has(metric.id));
    if (shown.length === 0) continue;
    const title = document.createElement("h2");
    title.className = "family-title";
    title.textContent = family;
    const grid = document.createElement("div");
    grid.className = "tile-grid";
    grid.append(...shown.map(tile));
    sections.push(title, grid);
  }
  container.replaceChildren(...sections);
}

function tile(metric: MetricDescriptor): HTMLElement {
  const article = document.createElement("article");
  article.className = "tile";
  article.dataset.metric = metric.id;
  if (metric.id === selected) article.classList.add("selected");
  const name = document.createElement("button");
  name.type = "button";
  name.className = "tile-name";
  name.textContent = metric.name;
  name.title = `${metric.id}: ${metric.description}`;
  name.addEventListener("click", () => void selectMetric(metric.id));
  const value = document.createElement("button");
  value.type = "button";
  value.className = "tile-value";
  const change = document.createElement("div");
  change.className = "tile-change";
  const note = document.createElement("div");
  note.className = "tile-note";
  article.append(name, value, change, note);

  const result = answers.get(metric.id);
  if (!result) {
    const skeleton = document.createElement("span");
    skeleton.className = "skeleton";
    value.append(skeleton);
    value.disabled = true;
    return article;
  }
  if (result.error || !result.row) {
    value.textContent = "error";
    value.disabled = true;
    note.className = "tile-note error";
    note.textContent = result.error ? `${result.error.code}: ${result.error.message}` : "no row";
    return article;
  }
  const row = result.row;
  value.dataset.value = row.value;
  value.title = "Show the inputs of this value";
  value.addEventListener("click", () => void selectMetric(metric.id, row));
  if (row.value === "") {
    value.textContent = "undefined";
    value.classList.add("undefined");
    note.textContent = row.undefinedReason;
    note.title = row.undefinedReason;
    note.classList.add("reason");
  } else {
    value.textContent = tileValue(row.value, metric.unit);
    value.title = `${row.value} (${unitName(metric.unit)}): show the inputs of this value`;
  }
  renderChange(change, note, row, metric);
  return article;
}

/** The change vs the previous period, coloured by its trend; the previous value under it. */
function renderChange(change: HTMLElement, note: HTMLElement, row: Row, metric: MetricDescriptor): void {
  // An undefined value's reason takes the room; its previous value is in the CSV and the inputs.
  if (row.value === "") return;
  if (row.change === "" && row.previousValue === "" && row.previousUndefinedReason === "") return;
  change.classList.toggle("improved", row.trend === Trend.IMPROVED);
  change.classList.toggle("worsened", row.trend === Trend.WORSENED);
  note.textContent = row.previousValue === "" ? "" : `previous period: ${tileValue(row.previousValue, metric.unit)}`;
  if (row.change === "") {
    change.textContent = row.previousValue === "" ? "no previous value" : "";
    change.title = row.previousUndefinedReason;
    return;
  }
  const pct = row.changePct === "" ? "" : ` (${formatChange(row.changePct, Unit.UNSPECIFIED)} %)`;
  change.textContent = `${formatChange(row.change, metric.unit)}${pct}`;
  change.title = row.changePctUndefinedReason || `previous period: ${row.previousValue}`;
}

const TILE_COLUMNS = ["metric_id", "name", "family", "unit", "value", "undefined_reason", "previous_value", "change", "change_pct", "trend", "error"];

function tileCells(metric: MetricDescriptor): string[] {
  const result = answers.get(metric.id);
  const row = result?.row;
  return [
    metric.id,
    metric.name,
    metric.family,
    unitName(metric.unit),
    row?.value ?? "",
    row?.undefinedReason ?? "",
    row?.previousValue ?? "",
    row?.change ?? "",
    row?.changePct ?? "",
    row && row.trend !== Trend.UNSPECIFIED ? Trend[row.trend].toLowerCase() : "",
    result?.error ? `${result.error.code}: ${result.error.message}` : "",
  ];
}

function tilesTable(): HTMLTableElement {
  const shown = descriptors.filter((metric) => chosen.has(metric.id));
  return table(TILE_COLUMNS, shown.map(tileCells));
}

function table(header: string[], rows: (string | Node)[][]): HTMLTableElement {
  const element = document.createElement("table");
  const head = element.createTHead().insertRow();
  for (const name of header) {
    const th = document.createElement("th");
    th.textContent = name;
    head.append(th);
  }
  const body = element.createTBody();
  for (const cells of rows) {
    const tr = body.insertRow();
    for (const cell of cells) tr.insertCell().append(cell);
  }
  return element;
}

// ---------------------------------------------------------------- the selected metric

/**
 * Shows metric `id` in the detail panel (and `inputsOf` in its inputs view); loads its chart
 * when it was not shown already, or when `reload` (the window changed).
 */
async function selectMetric(id: string, inputsOf?: Row, reload = false): Promise<void> {
  const metric = descriptor(id);
  const query = readQuery();
  if (!metric || !query) return;
  const changed = reload || selected !== id || $("detail").hidden;
  selected = id;
  writeHash(query);
  for (const element of document.querySelectorAll<HTMLElement>(".tile")) {
    element.classList.toggle("selected", element.dataset.metric === id);
  }
  $("detail").hidden = false;
  $("detail-title").textContent = `${metric.name} (${metric.id})`;
  $("detail-formula").textContent = metric.formula;
  if (inputsOf) showInputs(metric, inputsOf, `${metric.name}, ${query.start} to ${query.end}`);
  if (!changed) return;
  if (!inputsOf) $("inputs").replaceChildren(hint("Click a value to see the inputs it was computed from."));
  renderDimensions(metric);
  breakdownRows = [];
  $("breakdown").replaceChildren();
  await loadSeries(metric, query);
}

function hint(text: string): HTMLElement {
  const paragraph = document.createElement("p");
  paragraph.className = "hint";
  paragraph.textContent = text;
  return paragraph;
}

function bucketLabel(row: Row): string {
  if (row.bucketLabel) return row.bucketLabel;
  return row.bucketStart ? isoDate(timestampDate(row.bucketStart)) : "";
}

async function loadSeries(metric: MetricDescriptor, query: Query): Promise<void> {
  const mine = generation;
  $("chart").replaceChildren(hint("Loading…"));
  $("series").replaceChildren();
  try {
    const response = await metrics.compute({
      metricId: metric.id,
      ...windowOf(query),
      granularity: query.granularity,
      groupBy: [NO_GROUPS],
      compare: comparison(query),
    });
    if (mine !== generation || selected !== metric.id) return;
    seriesRows = response.rows;
  } catch (error) {
    seriesRows = [];
    $("chart").replaceChildren(hint(""));
    setStatus(rpcFailure(error), "Compute: ");
    return;
  }
  const pick = (row: Row) => showInputs(metric, row, `${metric.name}, ${bucketLabel(row)}`);
  $("chart").replaceChildren(barChart(seriesRows, bucketLabel, pick));
  $("series").replaceChildren(...table(["bucket", "value", "change"], seriesRows.map((row) => [
    bucketLabel(row),
    valueCell(metric, row, () => pick(row)),
    changeCell(metric, row),
  ])).childNodes);
}

function valueCell(metric: MetricDescriptor, row: Row, onClick: () => void): Node {
  if (row.value === "") {
    const span = document.createElement("span");
    span.className = "reason";
    span.textContent = `undefined: ${row.undefinedReason}`;
    return span;
  }
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = withUnit(row.value, metric.unit);
  button.dataset.value = row.value;
  button.title = "Show the inputs of this value";
  button.addEventListener("click", onClick);
  return button;
}

function changeCell(metric: MetricDescriptor, row: Row): Node {
  const span = document.createElement("span");
  if (row.change !== "") {
    span.textContent = formatChange(row.change, metric.unit);
    span.className = row.trend === Trend.IMPROVED ? "improved" : row.trend === Trend.WORSENED ? "worsened" : "";
  }
  return span;
}

/** The dimension choices: the descriptor's, with a wildcard (`attr.*`) as a free name. */
function renderDimensions(metric: MetricDescriptor): void {
  const select = $<HTMLSelectElement>("dimension");
  select.replaceChildren(
    ...metric.dimensions.map((dimension) => {
      const option = document.createElement("option");
      option.value = dimension;
      option.textContent = dimension.endsWith(".*") ? `${dimension.slice(0, -1)}…` : dimension;
      return option;
    }),
  );
  select.disabled = metric.dimensions.length === 0;
  updateAttributeField();
}

function updateAttributeField(): void {
  const dimension = $<HTMLSelectElement>("dimension").value;
  $("attribute-field").hidden = !dimension.endsWith(".*");
}

async function loadBreakdown(): Promise<void> {
  const metric = selected ? descriptor(selected) : undefined;
  const query = readQuery();
  let dimension = $<HTMLSelectElement>("dimension").value;
  if (!metric || !query || !dimension) return;
  if (dimension.endsWith(".*")) {
    const name = $<HTMLInputElement>("attribute").value.trim();
    if (!name) {
      $("attribute").focus();
      return;
    }
    dimension = dimension.slice(0, -1) + name;
  }
  breakdownDimension = dimension;
  $("breakdown").replaceChildren();
  try {
    const response = await metrics.compute({
      metricId: metric.id,
      ...windowOf(query),
      groupBy: [dimension],
      compare: comparison(query),
    });
    breakdownRows = response.rows;
    setStatus();
  } catch (error) {
    breakdownRows = [];
    setStatus(rpcFailure(error), "Compute: ");
    return;
  }
  $("breakdown").replaceChildren(...table([dimension, "value", "change"], breakdownRows.map((row) => [
    row.group[dimension] ?? "",
    valueCell(metric, row, () => showInputs(metric, row, `${metric.name}, ${dimension} = ${row.group[dimension] ?? ""}`)),
    changeCell(metric, row),
  ])).childNodes);
}

function showInputs(metric: MetricDescriptor, row: Row, title: string): void {
  const container = $("inputs");
  const heading = document.createElement("p");
  heading.className = "inputs-title";
  const value = row.value === "" ? `undefined (${row.undefinedReason})` : withUnit(row.value, metric.unit);
  heading.textContent = `${title}: ${value}`;
  const parts: Node[] = [heading, definitionList(row.inputs, "inputs-current")];
  if (Object.keys(row.previousInputs).length > 0) {
    const previous = document.createElement("p");
    previous.className = "hint";
    previous.textContent = `Previous period: ${row.previousValue === "" ? `undefined (${row.previousUndefinedReason})` : withUnit(row.previousValue, metric.unit)}`;
    parts.push(previous, definitionList(row.previousInputs, "inputs-previous"));
  }
  container.replaceChildren(...parts);
}

function definitionList(inputs: { [name: string]: string }, id: string): HTMLElement {
  const list = document.createElement("dl");
  list.className = id;
  for (const name of Object.keys(inputs).sort()) {
    const term = document.createElement("dt");
    term.textContent = name;
    const value = document.createElement("dd");
    value.textContent = inputs[name];
    value.dataset.input = name;
    list.append(term, value);
  }
  return list;
}

function rowCells(row: Row): string[] {
  return [row.value, row.undefinedReason, row.previousValue, row.change, row.changePct, row.trend === Trend.UNSPECIFIED ? "" : Trend[row.trend].toLowerCase()];
}

const ROW_COLUMNS = ["value", "undefined_reason", "previous_value", "change", "change_pct", "trend"];

// ---------------------------------------------------------------- wiring

controls.form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!controls.keyField.hidden) storeApiKey(controls.key.value.trim());
  if (descriptors.length === 0) void loadCatalogue(readHash());
  else void refresh();
});
$("dimension").addEventListener("change", updateAttributeField);
$("breakdown-form").addEventListener("submit", (event) => {
  event.preventDefault();
  void loadBreakdown();
});
$("tiles-csv").addEventListener("click", () => {
  const shown = descriptors.filter((metric) => chosen.has(metric.id));
  download("kpid-tiles.csv", toCsv(TILE_COLUMNS, shown.map(tileCells)));
});
$("tiles-table-toggle").addEventListener("click", (event) => {
  showTable = !showTable;
  const button = event.currentTarget as HTMLButtonElement;
  button.setAttribute("aria-pressed", String(showTable));
  button.textContent = showTable ? "Show as tiles" : "Show as table";
  renderTiles();
});
$("series-csv").addEventListener("click", () => {
  download(`${selected ?? "series"}-by-bucket.csv`, toCsv(["bucket", ...ROW_COLUMNS], seriesRows.map((row) => [bucketLabel(row), ...rowCells(row)])));
});
$("breakdown-csv").addEventListener("click", () => {
  download(`${selected ?? "breakdown"}-by-${breakdownDimension}.csv`, toCsv([breakdownDimension, ...ROW_COLUMNS], breakdownRows.map((row) => [row.group[breakdownDimension] ?? "", ...rowCells(row)])));
});

const initial = readHash();
if (storedApiKey()) {
  controls.keyField.hidden = false;
  controls.key.value = storedApiKey();
}
void loadCatalogue(initial);
// The zones the browser knows, as suggestions for the time zone field (after the first call is on its way).
$("time-zones").replaceChildren(...Intl.supportedValuesOf("timeZone").map((zone) => new Option(zone)));
