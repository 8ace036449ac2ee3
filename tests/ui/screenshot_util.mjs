// Shared by the screenshot scripts (screenshot_case.mjs, screenshot_pt201.mjs): their common
// arguments, `isoline serve CASE` and headless Chromium around the script's own work.
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { cliArg, launchChromium, startServer } from './serve_util.mjs';

/// Reads --bin (or $ISOLINE_BIN), --case, --out and --source (default '.'); prints
/// `usage: USAGE` and exits 2 when one of the first three is missing. Then serves the case
/// (author 'docs'), opens Chromium and awaits shoot(browser, url, out); exits 0 after it, or
/// 1 after printing its error, with the browser closed and the server stopped.
export async function screenshotCase(usage, shoot) {
  const bin = cliArg('bin', process.env.ISOLINE_BIN);
  const source = resolve(cliArg('source', '.'));
  const caseDir = cliArg('case');
  const out = cliArg('out');
  if (!bin || !caseDir || !out) {
    console.error(`usage: ${usage}`);
    process.exit(2);
  }
  const require = createRequire(join(source, 'ui', 'package.json'));
  const { chromium } = require('playwright-core');
  const server = await startServer(bin, caseDir, 'docs');
  const browser = await launchChromium(chromium);
  let code = 0;
  try {
    await shoot(browser, server.url, out);
  } catch (e) {
    console.error(e.message);
    code = 1;
  } finally {
    await browser.close();
    server.proc.kill('SIGTERM');
  }
  process.exit(code);
}

/// Opens `url` in `page` and waits (polling every `polling` ms, at most `timeout` ms) until the
/// client has drawn the case; throws unless it is ready.
export async function openCase(page, url, polling, timeout) {
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => window.__status && window.__status !== 'loading', null, { polling, timeout });
  const status = await page.evaluate(() => window.__status);
  if (status !== 'ready') throw new Error(`case not ready: ${status}`);
}
