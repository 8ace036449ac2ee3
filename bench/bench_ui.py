"""Review UI figures on a generated 512 x 512 x 160 case (tests/ui/make_case.py):

ui_margin_seconds_512: one 5 mm 3-D margin (grow) of the PTV through the server code path
  (HTTP POST /api/structures/<id>/edit -> core::expand -> new SQLite version), server pinned
  to 2 cores (taskset, OMP/ITK threads 2); best of 3.
ui_slice_change_ms: in headless Chromium (SwiftShader, no GPU), axial view 640 px with the
  CT and 4 structure overlays: one slice step as the mouse wheel does it (moveCrosshairInVox,
  which renders once and ends in gl.finish, + a 1-pixel read-back); median of 30, with the
  client's lean slice shader (NiiVue's stock shader measured alongside and printed).
  (Until 2026-11-25 this timed moveCrosshairInVox + a second drawScene: two renders.)
"""
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

KEYS = ["ui_margin_seconds_512", "ui_slice_change_ms"]

BROWSER_JS = r"""
import { createRequire } from 'node:module';
const require = createRequire(process.argv[3]);
const { chromium } = require('playwright-core');
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
  args: ['--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--no-first-run', '--no-sandbox',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  await page.goto(process.argv[2], { waitUntil: 'domcontentloaded', timeout: 300000 });
  await page.waitForFunction(() => window.__status && window.__status !== 'loading', null, { polling: 200, timeout: 600000 });
  const st = await page.evaluate(() => window.__status);
  if (st !== 'ready') throw new Error(st);
  await page.evaluate(() => document.querySelector('[data-view="axial"]').click());
  // One slice step as the mouse wheel does it (NiiVue moveCrosshairInVox: one drawScene,
  // which ends in gl.finish) plus a 1-pixel read-back; median of 30, interleaved rounds of
  // the client's lean slice shader and NiiVue's stock one (same load for both).
  const ms = await page.evaluate(() => {
    const gl = nv.gl, px = new Uint8Array(4), t = { lean: [], stock: [] };
    for (let round = 0; round < 6; round++) {
      for (const k of ['lean', 'stock']) {
        window.app.useLeanSliceShader(k === 'lean');
        nv.drawScene();
        for (let i = 0; i < 5; i++) {
          const t0 = performance.now();
          nv.moveCrosshairInVox(0, 0, i % 2 ? 1 : -1);
          gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px);
          t[k].push(performance.now() - t0);
        }
      }
    }
    window.app.useLeanSliceShader(true);
    const med = (a) => a.sort((x, y) => x - y)[a.length >> 1];
    return { lean: med(t.lean), stock: med(t.stock), canvas: gl.canvas.width };
  });
  const timings = await page.evaluate(() => window.app.timings);
  console.log(JSON.stringify({ slice_change_ms: ms.lean, stock_shader_ms: ms.stock, canvas_px: ms.canvas, load_ms: timings }));
} finally {
  await browser.close();
}
"""


def _post(url, token, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"X-Isoline-Token": token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def _get(url, token):
    req = urllib.request.Request(url, headers={"X-Isoline-Token": token})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def run(ctx):
    out = {k: None for k in KEYS}
    work = ctx.work / "ui"
    case = work / "case512"
    if not (case / "ct.nii.gz").exists():
        shutil.rmtree(case, ignore_errors=True)
        subprocess.run(["/usr/bin/python3", str(ctx.root / "tests/ui/make_case.py"), str(case),
                        "--size", "512", "512", "160", "--spacing", "0.98", "0.98", "2.5", "--no-dose"], check=True)
    shutil.rmtree(case / "review", ignore_errors=True)
    env = dict(os.environ, OMP_NUM_THREADS="2", ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS="2")
    proc = subprocess.Popen(["taskset", "-c", "0,1", str(ctx.isoline), "serve", str(case), "--port", "0"],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        url = None
        for line in proc.stdout:
            m = re.search(r"open (http://127\.0\.0\.1:\d+)/\?token=([0-9a-f]+)", line)
            if m:
                url, token = m.group(1), m.group(2)
                break
        if not url:
            raise RuntimeError("isoline serve did not start")
        ptv = next(s for s in _get(url + "/api/structures", token) if s["name"] == "PTV")
        best = float("inf")
        version = ptv["version"]
        for _ in range(3):
            t0 = time.perf_counter()
            r = _post(f"{url}/api/structures/{ptv['id']}/edit", token,
                      {"op": "margin", "mode": "grow", "mm": 5, "base_version": version})
            best = min(best, time.perf_counter() - t0)
            version = r["version"]
            # next round starts again from a comparable mask: revert to version 1
            r = _post(f"{url}/api/structures/{ptv['id']}/revert", token, {"base_version": version, "version": 1})
            version = r["version"]
        out["ui_margin_seconds_512"] = round(best, 3)
        node = shutil.which("node")
        if node and Path("/usr/bin/chromium").exists() and (ctx.root / "ui/node_modules/playwright-core").exists():
            js = work / "slice_bench.mjs"
            js.write_text(BROWSER_JS)
            p = subprocess.run([node, str(js), f"{url}/?token={token}", str(ctx.root / "ui/package.json")],
                               capture_output=True, text=True, timeout=900)
            if p.returncode == 0:
                r = json.loads(p.stdout.strip().splitlines()[-1])
                out["ui_slice_change_ms"] = round(r["slice_change_ms"], 1)
                print(f"bench_ui: slice step {r['slice_change_ms']:.1f} ms (NiiVue stock slice shader "
                      f"{r['stock_shader_ms']:.1f} ms), canvas {r['canvas_px']} px, load average "
                      f"{os.getloadavg()[0]:.1f}; page load (ms after start) {r['load_ms']}", flush=True)
            else:
                print("bench_ui: browser part failed:", p.stderr[-800:])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out
