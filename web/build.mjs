// Builds the dashboard into one self-contained file, crates/kpi-server/dashboard/index.html
// (committed; kpi-server embeds it with include_str!): src/main.ts bundled and minified by
// esbuild, src/style.css and the bundle inlined into src/index.html. No timestamps, no
// absolute paths: the same sources and locked packages give the same bytes.
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { build } from "esbuild";

const here = new URL(".", import.meta.url);
const out = new URL("../crates/kpi-server/dashboard/index.html", here);

const bundle = await build({
  entryPoints: [new URL("src/main.ts", here).pathname],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  write: false,
  legalComments: "none",
  charset: "utf8",
});
const script = bundle.outputFiles[0].text.replaceAll("</script", "<\\/script");
const css = await build({
  entryPoints: [new URL("src/style.css", here).pathname],
  bundle: true,
  minify: true,
  write: false,
});
const style = css.outputFiles[0].text.trim();
const template = await readFile(new URL("src/index.html", here), "utf8");
for (const marker of ["/*STYLE*/", "/*SCRIPT*/"]) {
  if (template.split(marker).length !== 2) throw new Error(`src/index.html must hold ${marker} once`);
}
// Functions as replacements: `$&` and friends in the bundle stay literal.
const page = template.replace("/*STYLE*/", () => style).replace("/*SCRIPT*/", () => script);
await mkdir(new URL(".", out), { recursive: true });
await writeFile(out, page);
console.log(`wrote ${out.pathname.replace(/.*\/crates\//, "crates/")} (${page.length} bytes)`);
