// Shared by the browser scripts: `isoline serve CASE` on a free port, and headless Chromium
// with SwiftShader WebGL (no GPU here).
import { spawn } from 'node:child_process';

/// Starts `isoline serve caseDir` and resolves to { proc, url } once it prints its URL
/// (author null: without --author, as an oncologist starts it).
export function startServer(bin, caseDir, author = 'tester') {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, ['serve', caseDir, '--port', '0', ...(author === null ? [] : ['--author', author])],
                    { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/open (http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]+)/);
      if (m) resolve({ proc: p, url: m[1] });
    });
    p.on('exit', (c) => reject(new Error(`isoline serve exited with ${c}: ${out}`)));
    setTimeout(() => reject(new Error('isoline serve did not print its URL')), 30000);
  });
}

/// Headless Chromium as the tests run it.
export function launchChromium(chromium) {
  return chromium.launch({
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-sandbox'],
  });
}

// `--name value` from the command line of a script, or `def`.
export function cliArg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}
