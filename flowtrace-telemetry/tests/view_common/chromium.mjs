// Drives a headless Chromium over the DevTools protocol on a pipe
// (--remote-debugging-pipe: no port, nothing listening), for the HTML view
// tests. Reads a JSON config (argv[2]):
//   { chromium, userDataDir, url, width, height, timeoutMs, steps: [...] }
// where a step is {eval: "js"} (its value is recorded; promises awaited),
// {click: "js returning an element"} (a real mouse click at its centre) or
// {screenshot: "out.png"}. Prints one JSON object: the step results, every
// network request the page made, script exceptions and console errors.
import { spawn } from 'node:child_process';
import fs from 'node:fs';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const args = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
  '--no-default-browser-check', '--disable-extensions', '--mute-audio',
  `--user-data-dir=${cfg.userDataDir}`, '--remote-debugging-pipe',
  `--window-size=${cfg.width},${cfg.height}`, 'about:blank',
];
const child = spawn(cfg.chromium, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
let chromeLog = '';
child.stdio[2].on('data', (d) => { chromeLog = (chromeLog + d.toString()).slice(-4000); });
const killer = setTimeout(() => {
  child.kill('SIGKILL');
  console.log(JSON.stringify({ fatal: `timed out after ${cfg.timeoutMs} ms`, chromeLog }));
  process.exit(3);
}, cfg.timeoutMs);

const toChrome = child.stdio[3];
const fromChrome = child.stdio[4];
let buffer = Buffer.alloc(0);
let nextId = 0;
const pending = new Map();
const listeners = [];
fromChrome.on('data', (chunk) => {
  buffer = Buffer.concat([buffer, chunk]);
  let end;
  while ((end = buffer.indexOf(0)) >= 0) {
    const msg = JSON.parse(buffer.subarray(0, end).toString('utf8'));
    buffer = buffer.subarray(end + 1);
    if (msg.id !== undefined && pending.has(msg.id)) {
      const { resolve, reject } = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) reject(new Error(JSON.stringify(msg.error)));
      else resolve(msg.result);
    } else {
      for (const l of listeners) l(msg);
    }
  }
});
child.on('exit', (code) => {
  for (const { reject } of pending.values()) reject(new Error(`chromium exited (${code}): ${chromeLog}`));
});

function send(method, params = {}, sessionId) {
  const id = ++nextId;
  const msg = { id, method, params };
  if (sessionId) msg.sessionId = sessionId;
  toChrome.write(JSON.stringify(msg) + '\0');
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
}

const out = { results: [], requests: [], exceptions: [], consoleErrors: [] };
try {
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  const page = (method, params) => send(method, params, sessionId);
  let loaded;
  const loadedOnce = new Promise((resolve) => { loaded = resolve; });
  listeners.push((m) => {
    if (m.sessionId !== sessionId) return;
    if (m.method === 'Network.requestWillBeSent') out.requests.push({ url: m.params.request.url, type: m.params.type });
    else if (m.method === 'Runtime.exceptionThrown') out.exceptions.push(m.params.exceptionDetails.exception?.description || m.params.exceptionDetails.text);
    else if (m.method === 'Runtime.consoleAPICalled' && m.params.type === 'error') out.consoleErrors.push(m.params.args.map((a) => a.value ?? a.description).join(' '));
    else if (m.method === 'Log.entryAdded' && m.params.entry.level === 'error') out.consoleErrors.push(m.params.entry.text);
    else if (m.method === 'Page.loadEventFired') loaded();
  });
  await page('Network.enable');
  await page('Page.enable');
  await page('Runtime.enable');
  await page('Log.enable');
  await page('Emulation.setDeviceMetricsOverride', { width: cfg.width, height: cfg.height, deviceScaleFactor: 1, mobile: false });
  const started = Date.now();
  await page('Page.navigate', { url: cfg.url });
  await loadedOnce;
  const evaluate = async (expression) => {
    const r = await page('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails) return { error: r.exceptionDetails.exception?.description || r.exceptionDetails.text };
    return r.result.value;
  };
  while (await evaluate('document.body.dataset.ready') !== 'true') {
    if (Date.now() - started > cfg.timeoutMs) throw new Error('the page never became ready');
    await new Promise((r) => setTimeout(r, 50));
  }
  out.readyMs = Date.now() - started;
  const frames = 'new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))';
  for (const step of cfg.steps) {
    if (step.eval !== undefined) {
      out.results.push(await evaluate(step.eval));
    } else if (step.click !== undefined) {
      const at = await evaluate(`(() => { const el = (${step.click}); if (!el) return null;
        el.scrollIntoView({ block: 'nearest', inline: 'nearest' });
        const r = el.getBoundingClientRect(); return [r.x + Math.min(r.width / 2, 40), r.y + r.height / 2]; })()`);
      if (!Array.isArray(at)) { out.results.push({ error: `nothing to click: ${step.click}` }); continue; }
      for (const type of ['mouseMoved', 'mousePressed', 'mouseReleased']) {
        await page('Input.dispatchMouseEvent', { type, x: at[0], y: at[1], button: 'left', clickCount: 1 });
      }
      await evaluate(frames);
      out.results.push(true);
    } else if (step.type !== undefined) {
      await page('Input.insertText', { text: step.type });
      await new Promise((r) => setTimeout(r, 400));
      await evaluate(frames);
      out.results.push(true);
    } else if (step.screenshot !== undefined) {
      const shot = await page('Page.captureScreenshot', { format: 'png' });
      fs.writeFileSync(step.screenshot, Buffer.from(shot.data, 'base64'));
      out.results.push(true);
    }
  }
  await send('Browser.close').catch(() => {});
} catch (e) {
  out.fatal = String(e && e.stack || e);
  out.chromeLog = chromeLog;
  child.kill('SIGKILL');
}
clearTimeout(killer);
console.log(JSON.stringify(out));
setTimeout(() => { child.kill('SIGKILL'); process.exit(0); }, 2000).unref();
