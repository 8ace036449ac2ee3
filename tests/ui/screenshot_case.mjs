// One screenshot of the review client on a case directory (for the pictures in docs/ui.md):
// starts `isoline serve CASE`, opens it in headless Chromium (SwiftShader), waits until the
// case is drawn and writes the page as a PNG.
//
//   isoline phantom hn --size 128,128,48 --spacing 2,2,3 --out /tmp/ph
//   node tests/ui/screenshot_case.mjs --bin build/bin/isoline --source . --case /tmp/ph \
//        --out docs/images/ui_phantom_hn.png [--width 1380 --height 760]
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { cliArg, launchChromium, startServer } from './serve_util.mjs';

const arg = cliArg;
const bin = arg('bin', process.env.ISOLINE_BIN);
const source = resolve(arg('source', '.'));
const caseDir = arg('case');
const out = arg('out');
if (!bin || !caseDir || !out) {
  console.error('usage: node screenshot_case.mjs --bin ISOLINE --case DIR --out FILE.png [--source SRC]');
  process.exit(2);
}
const require = createRequire(join(source, 'ui', 'package.json'));
const { chromium } = require('playwright-core');

const server = await startServer(bin, caseDir, 'docs');
const browser = await launchChromium(chromium);
let code = 0;
try {
  const page = await browser.newPage({
    viewport: { width: Number(arg('width', 1380)), height: Number(arg('height', 760)) },
  });
  await page.goto(server.url, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => window.__status && window.__status !== 'loading', null, { polling: 100, timeout: 120000 });
  const status = await page.evaluate(() => window.__status);
  if (status !== 'ready') throw new Error(`case not ready: ${status}`);
  await page.waitForTimeout(500);
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} catch (e) {
  console.error(e.message);
  code = 1;
} finally {
  await browser.close();
  server.proc.kill('SIGTERM');
}
process.exit(code);
