// A bar chart of one metric by bucket, drawn as SVG (no chart library). Bar heights use
// floats for drawing only; the values shown are the decimal strings themselves.
import type { Row } from "./gen/kpi/v1/metrics_pb";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 640;
const HEIGHT = 220;
const PAD = { top: 12, right: 8, bottom: 28, left: 8 };

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attributes: Record<string, string | number>) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

/** Draws `rows` (one per bucket) into a new SVG; `onPick` gets the row of a clicked bar. */
export function barChart(rows: Row[], label: (row: Row) => string, onPick: (row: Row) => void): SVGSVGElement {
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", role: "group" });
  const values = rows.map((row) => (row.value === "" ? 0 : Number(row.value)));
  const max = Math.max(0, ...values);
  const min = Math.min(0, ...values);
  const span = max - min || 1;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const zeroY = PAD.top + (max / span) * plotHeight;
  const slot = (WIDTH - PAD.left - PAD.right) / Math.max(rows.length, 1);
  chart.append(svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: zeroY, y2: zeroY, class: "axis" }));
  rows.forEach((row, index) => {
    const x = PAD.left + index * slot + slot * 0.15;
    const width = Math.max(slot * 0.7, 1);
    const title = svg("title", {});
    title.textContent = `${label(row)}: ${row.value === "" ? `undefined (${row.undefinedReason})` : row.value}`;
    if (row.value === "") {
      const mark = svg("rect", { x, y: zeroY - 2, width, height: 4, class: "bar undefined" });
      mark.append(title);
      chart.append(mark);
    } else {
      const height = (Math.abs(values[index]) / span) * plotHeight;
      const y = values[index] >= 0 ? zeroY - height : zeroY;
      const bar = svg("rect", { x, y, width, height: Math.max(height, 1), class: "bar", tabindex: 0, role: "button" });
      bar.append(title);
      bar.addEventListener("click", () => onPick(row));
      bar.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          onPick(row);
        }
      });
      chart.append(bar);
    }
  });
  const every = Math.ceil(rows.length / 8);
  rows.forEach((row, index) => {
    if (index % every !== 0) return;
    const text = svg("text", { x: PAD.left + (index + 0.5) * slot, y: HEIGHT - 8, class: "tick" });
    text.textContent = label(row);
    chart.append(text);
  });
  return chart;
}
