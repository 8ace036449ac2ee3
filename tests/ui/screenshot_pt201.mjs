// The two OpenKBP pt_201 pictures in docs/ui.md: the first view, and a brush stroke on
// PTV70 (not saved) in the default layout. CASE is an `isoline run` output served fresh
// (without an old review/ database).
//
//   node tests/ui/screenshot_pt201.mjs --bin build/bin/isoline --source . --case CASE --out docs/images
//   (then pngquant --quality 70-95 on the two PNGs keeps them small)
import { join } from 'node:path';
import { openCase, screenshotCase } from './screenshot_util.mjs';

async function shoot(browser, url, out) {
  const page = await browser.newPage({ viewport: { width: 1380, height: 760 } });
  page.on('dialog', (d) => d.dismiss());
  await openCase(page, url, 200, 240000);
  const tiles = () => page.evaluate(() => nv.screenSlices.filter((t) => t.axCorSag <= 2)
    .map((t) => [t.axCorSag, ...Array.from(t.leftTopWidthHeight).map(Math.round)]));
  console.log(`tiles [view, left, top, width, height]: Axial + C/S ${JSON.stringify(await tiles())}`);
  await page.evaluate(() => { window.app.centreOnTarget(); nv.createOnLocationChange(0); });
  await page.screenshot({ path: join(out, 'ui_pt201_first_view.png') });
  await page.locator('[data-view="multi"]').click();
  console.log(`tiles A+C+S ${JSON.stringify(await tiles())}`);
  await page.locator('[data-view="large"]').click();
  await page.locator('#structures tr[data-name="PTV70"] td:nth-child(2)').click();
  await page.waitForFunction(() => !window.app.state.busy && window.app.state.editId !== null, null, { polling: 100, timeout: 120000 });
  await page.locator('[data-tool="brush"]').click();
  await page.fill('#brush-mm', '6');
  await page.locator('#brush-mm').dispatchEvent('change');
  const b = await page.locator('#gl').boundingBox();
  const t = await page.evaluate(() => Array.from(nv.screenSlices.find((x) => x.axCorSag === 0).leftTopWidthHeight));
  const at = (fx, fy) => [b.x + t[0] + fx * t[2], b.y + t[1] + fy * t[3]];
  await page.mouse.move(...at(0.44, 0.6));
  await page.mouse.down();
  await page.mouse.move(...at(0.5, 0.64), { steps: 5 });
  await page.mouse.move(...at(0.56, 0.6), { steps: 5 });
  await page.mouse.up();
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(out, 'ui_pt201_paint.png') });
  console.log(`wrote ${out}/ui_pt201_first_view.png, ui_pt201_paint.png`);
}

await screenshotCase('node screenshot_pt201.mjs --bin ISOLINE --case DIR --out DIR [--source SRC]', shoot);
