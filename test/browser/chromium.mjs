// chromium.mjs: what every browser walk shares: Debian's Chromium started
// headless with its background services off, so that nothing is fetched
// from the network, and the one-JSON-object-a-line protocol with the Go
// test that drives the walk.
import { chromium } from 'playwright-core';

// launchChromium starts the browser at cfg.chromium (default
// /usr/bin/chromium).
export function launchChromium(cfg) {
  return chromium.launch({
    executablePath: cfg.chromium || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

// emit writes one event for the Go test, a JSON object on a line of stdout.
export function emit(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }

// check fails the walk, and so the Go test, when ok is false.
export function check(ok, what) { if (!ok) throw new Error('check failed: ' + what); }
