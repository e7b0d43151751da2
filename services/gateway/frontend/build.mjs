// Copies the front-end packages' dist files into the gateway's static folder (git-ignored there):
// no bundler, the browser loads these few files as they are published.
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
// `npm run build -- <folder>` builds elsewhere (the devstack passes the folder it checks).
const target = process.argv[2] ?? join(here, "..", "src", "gateway", "entrypoints", "web", "static", "vendor");

// node_modules path → name under /static/vendor/
const FILES = {
  "htmx.org/dist/htmx.min.js": "htmx.min.js",
  "htmx-ext-sse/dist/sse.min.js": "htmx-sse.min.js",
  "trix/dist/trix.umd.min.js": "trix.umd.min.js",
  "trix/dist/trix.css": "trix.css",
  "@picocss/pico/css/pico.min.css": "pico.min.css",
};

rmSync(target, { recursive: true, force: true });
mkdirSync(target, { recursive: true });
for (const [source, name] of Object.entries(FILES)) {
  copyFileSync(join(here, "node_modules", source), join(target, name));
}
console.log(`front end built: ${Object.keys(FILES).length} files in ${target}`);
