// One screenshot of the review client on a case directory (for the pictures in docs/ui.md):
// starts `isoline serve CASE`, opens it in headless Chromium (SwiftShader), waits until the
// case is drawn and writes the page as a PNG.
//
//   isoline phantom hn --size 128,128,48 --spacing 2,2,3 --out /tmp/ph
//   node tests/ui/screenshot_case.mjs --bin build/bin/isoline --source . --case /tmp/ph \
//        --out docs/images/ui_phantom_hn.png [--width 1380 --height 760]
import { cliArg } from './serve_util.mjs';
import { openCase, screenshotCase } from './screenshot_util.mjs';

async function shoot(browser, url, out) {
  const page = await browser.newPage({
    viewport: { width: Number(cliArg('width', 1380)), height: Number(cliArg('height', 760)) },
  });
  await openCase(page, url, 100, 120000);
  await page.waitForTimeout(500);
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
}

await screenshotCase('node screenshot_case.mjs --bin ISOLINE --case DIR --out FILE.png [--source SRC]', shoot);
