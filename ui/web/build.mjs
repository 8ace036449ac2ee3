// Bundles the review web client: web/app.js (+ NiiVue) -> <outdir>/app.js, copies index.html
// and style.css. Usage: node web/build.mjs [outdir]   (default: ../dist beside package.json)
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const outdir = resolve(process.argv[2] || join(here, '..', 'dist'));
mkdirSync(outdir, { recursive: true });
await build({
  entryPoints: [join(here, 'app.js')],
  bundle: true,
  format: 'esm',
  minify: true,
  sourcemap: false,
  target: ['chrome110'],
  outfile: join(outdir, 'app.js'),
  logLevel: 'warning',
});
for (const f of ['index.html', 'style.css']) copyFileSync(join(here, f), join(outdir, f));
console.log(`ui: bundled the review client into ${outdir}`);
