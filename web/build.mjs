// Bundles the page into an output folder: index.html, app.js (the page's code with marked and
// DOMPurify, minified, their licence notices kept at the end) and app.css. CMake embeds them in the
// dsv3 binary (web/CMakeLists.txt).
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] ?? join(here, "out");
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(here, "src/app.js")],
  bundle: true,
  minify: true,
  format: "iife",
  target: ["chrome110", "firefox115", "safari16"],
  legalComments: "eof",
  outfile: join(out, "app.js"),
  logLevel: "warning",
});
await build({ entryPoints: [join(here, "style.css")], bundle: true, minify: true, outfile: join(out, "app.css"), logLevel: "warning" });
copyFileSync(join(here, "index.html"), join(out, "index.html"));
