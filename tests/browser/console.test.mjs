// The review console in a real browser: `lakegate dev` (Temporal dev server, worker, watched
// landing folder, console) on free loopback ports and a temporary lake, driven by playwright-core
// through Debian's chromium. A person uploads, watches, reviews and decides; the test then checks
// the lake's zones, the audit log and the workflow history. No mocks, no skips: a missing
// chromium fails the run.
//
// Env: LAKEGATE_BIN (the lakegate binary), LAKEGATE_VENV (virtualenv with `temporal`),
// LAKEGATE_SCREENSHOTS (folder for the README's screenshots; default docs/console).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const bin = process.env.LAKEGATE_BIN || path.join(repo, 'target/debug/lakegate');
const venv = process.env.LAKEGATE_VENV || path.join(repo, '.venv');
const shots = process.env.LAKEGATE_SCREENSHOTS || path.join(repo, 'docs/console');
const USER = 'alice@example.org';
const TOKEN = 'browser-test-token';
// Stays in the quarantined file and must show only on the audited failing-rows page.
const SENTINEL = 'ZEBULON_QUARTZ';

const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

let dir, dev, devLog, context, page, consoleUrl, temporalAddress, uiUrl;

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** Polls `check` until it returns a truthy value, or fails with `what` at the deadline. */
async function until(what, check, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; last: ${last}\n--- dev log ---\n${log()}`);
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

function log() {
  try {
    return fs.readFileSync(devLog, 'utf8').slice(-4000);
  } catch {
    return '';
  }
}

function csv(name, rows) {
  const file = path.join(dir, 'files', name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, ['id,name,birthdate', ...rows].join('\n') + '\n');
  return file;
}

async function shot(name) {
  fs.mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

/** Files (names) under a zone of the lake, recursively. */
function zone(name) {
  const root = path.join(dir, 'lake', name);
  if (!fs.existsSync(root)) return [];
  return fs.readdirSync(root, { recursive: true })
    .filter((f) => fs.statSync(path.join(root, f)).isFile())
    .map((f) => path.basename(f))
    .sort();
}

/** Opens the inbox until it lists `name`. */
async function inboxRow(name) {
  return until(`${name} in the inbox`, async () => {
    await page.goto(`${consoleUrl}/inbox`);
    const row = page.locator('#inbox tr', { hasText: name });
    return (await row.count()) === 1 ? row : null;
  });
}

/** Uploads `files`; waits for the page that follows them, or (`refused`) for the error. */
async function upload(files, refused = false) {
  await page.goto(`${consoleUrl}/upload`);
  await page.getByLabel('Dataset').selectOption('clinic');
  await page.getByLabel('Files (one or more)').setInputFiles(files);
  await page.getByRole('button', { name: 'Upload and onboard' }).click();
  if (refused) await page.locator('[role=alert]').waitFor();
  else await page.waitForURL(/\/uploads\?/);
}

/** Waits on the page following the uploads until `name`'s status contains `words`. */
async function uploadedAs(name, words) {
  await until(`${name} ${words}`, async () => {
    await page.reload();
    const row = page.locator('#uploads tr', { hasText: name });
    return (await row.innerText()).includes(words);
  });
}

/** This environment without a configured Temporal: the dev server is the one to use. */
function devEnv() {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('TEMPORAL_')) delete env[k];
  return env;
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lakegate-browser-'));
  const contracts = path.join(dir, 'contracts');
  fs.mkdirSync(contracts);
  fs.copyFileSync(path.join(here, 'fixtures/clinic.yaml'), path.join(contracts, 'clinic.yaml'));
  const [port, uiPort, consolePort] = [await freePort(), await freePort(), await freePort()];
  temporalAddress = `127.0.0.1:${port}`;
  uiUrl = `http://127.0.0.1:${uiPort}`;
  consoleUrl = `http://127.0.0.1:${consolePort}`;
  devLog = path.join(dir, 'dev-stdout.log');
  const out = fs.openSync(devLog, 'w');
  dev = spawn(bin, [
    'dev', '--port', String(port), '--ui-port', String(uiPort),
    '--console-addr', `127.0.0.1:${consolePort}`,
    '--console-token', TOKEN, '--console-user', USER,
    '--data-dir', dir, '--contracts', contracts, '--venv', venv,
    '--pipeline', path.join(dir, 'no-pipeline.yaml'),
  ], { stdio: ['ignore', out, out], env: devEnv() });
  dev.on('exit', (code, signal) => fs.appendFileSync(devLog, `\n[dev exited: ${code ?? signal}]\n`));
  await until('the console to answer', async () => {
    if (dev.exitCode !== null) throw new Error('lakegate dev exited');
    return (await fetch(`${consoleUrl}/login`)).ok && fs.existsSync(path.join(dir, 'dev.json'));
  }, 120_000);
  // Fails (not skips) when chromium is missing.
  context = await chromium.launchPersistentContext(path.join(dir, 'chromium-profile'), {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 800 },
  });
  page = context.pages()[0] ?? (await context.newPage());
});

after(async () => {
  await context?.close();
  if (dev && dev.exitCode === null) {
    dev.kill('SIGTERM');
    await until('lakegate dev to stop', () => dev.exitCode !== null || dev.signalCode !== null, 30_000);
  }
  if (dir && !process.env.LAKEGATE_KEEP) fs.rmSync(dir, { recursive: true, force: true });
});

test('a reviewer uploads, reviews and decides in the browser', async () => {
  // Signing in: nothing is reachable before it.
  await page.goto(`${consoleUrl}/inbox`);
  assert.match(page.url(), /\/login$/);
  await shot('login');
  await page.getByLabel(/Console token/).fill(TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  assert.equal(await page.locator('#signed-in-user').innerText(), USER);

  // A good and a bad file in one upload: one promoted, one quarantined.
  const good = csv('patients_good.csv', ['p1,Ann,1980-01-02', 'p2,Bob,1975-03-04']);
  const bad1 = csv('patients_bad1.csv', ['p3,Cy,1990-01-01', `,${SENTINEL},1991-02-02`]);
  await page.goto(`${consoleUrl}/upload`);
  await shot('upload');
  await upload([good, bad1]);
  await uploadedAs('patients_good.csv', 'promoted');
  await uploadedAs('patients_bad1.csv', 'quarantined');
  await shot('uploads');

  // The contract's size bound stops an upload while it streams; nothing lands.
  const big = csv('patients_big.csv', Array.from({ length: 5000 }, (_, i) => `p${i},N${i},2000-01-01`));
  await upload([big], true);
  assert.match(await page.locator('[role=alert]').innerText(), /larger than the 100000 bytes/);
  assert.ok(!zone('landing').includes('patients_big.csv'));

  // Three more bad files for the decisions below.
  const more = ['patients_bad2.csv', 'patients_bad3.csv', 'patients_bad4.csv'].map((n, i) =>
    csv(n, [`,x${i},2001-01-01`]));
  await upload(more);
  for (const n of ['patients_bad2.csv', 'patients_bad3.csv', 'patients_bad4.csv']) {
    await uploadedAs(n, 'quarantined');
  }
  await inboxRow('patients_bad4.csv');
  await shot('inbox');
  // The inbox shows the reason, and never the cell value.
  const inboxText = await page.locator('#inbox').innerText();
  assert.match(inboxText, /required\(id\)/);
  assert.ok(!inboxText.includes(SENTINEL));

  // The file's page: the report, then the failing rows on demand (audited).
  await (await inboxRow('patients_bad1.csv')).getByRole('link', { name: 'patients_bad1.csv' }).click();
  const bad1Id = page.url().split('/files/')[1];
  assert.match(await page.locator('#report').innerText(), /required/);
  assert.ok(!(await page.content()).includes(SENTINEL));
  await shot('file');
  await page.getByRole('button', { name: 'Show the first failing rows' }).click();
  const rows = await page.locator('#failing-rows').innerText();
  assert.ok(rows.includes(SENTINEL), rows);
  await shot('failing-rows');
  await page.goto(`${consoleUrl}/audit`);
  const audit = page.locator('#audit tr', { hasText: 'patients_bad1.csv' });
  assert.equal(await audit.count(), 1);
  assert.match(await audit.innerText(), new RegExp(USER.replace('.', '\\.')));
  await shot('audit');

  // Approve from the inbox, with the keyboard: the reason field, then the row's button.
  await page.goto(`${consoleUrl}/inbox`);
  await page.getByLabel(/Reason for the decision/).fill('sender confirmed the blank id is a test row');
  const approve = page.getByRole('button', { name: 'Approve patients_bad1.csv' });
  await approve.focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/decide$/);
  assert.match(await page.locator('#answers').innerText(), /promoted/);
  await shot('decisions');

  // Reject another from its own page.
  await (await inboxRow('patients_bad2.csv')).getByRole('link', { name: 'patients_bad2.csv' }).click();
  await page.getByLabel(/Reason \(recorded/).fill('wrong extract');
  await page.getByRole('button', { name: /^Reject/ }).click();
  await until('the rejection', async () => (await page.locator('#phase').innerText()).includes('rejected')
    || (await page.reload(), false));
  assert.match(await page.locator('#decision').innerText(), new RegExp(`reject by ${USER.replace('.', '\\.')}`));
  // The decision went through the `review` Update: the page shows what the workflow answered.
  assert.match(await page.locator('#answer').innerText(), /rejected \(patients_bad2\.csv moved out of quarantine\)/);
  // Deciding the same file again is refused by the workflow, and the console says why.
  const again = await page.evaluate(async (filePath) => {
    const csrf = document.querySelector('input[name=csrf]').value;
    const response = await fetch(`${filePath}/review`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `csrf=${encodeURIComponent(csrf)}&decision=approve&reason=again`,
    });
    return { status: response.status, text: await response.text() };
  }, new URL(page.url()).pathname);
  assert.equal(again.status, 409);
  assert.match(again.text, /Not decided\. The workflow answered: already decided/);

  // Bulk-reject the last two.
  await inboxRow('patients_bad3.csv');
  await page.getByLabel('Select patients_bad3.csv').check();
  await page.getByLabel('Select patients_bad4.csv').check();
  await page.getByLabel(/Reason for the decision/).fill('duplicates of a later extract');
  await page.getByRole('button', { name: 'Reject selected' }).click();
  const answers = await page.locator('#answers').innerText();
  assert.equal((answers.match(/rejected/g) || []).length, 2, answers);
  await page.goto(`${consoleUrl}/inbox`);
  assert.equal(await page.locator('#inbox-empty').count(), 1);

  // The zones: every file in exactly one, where the decisions put it.
  assert.deepEqual(zone('raw'), ['patients_bad1.csv', 'patients_good.csv']);
  assert.deepEqual(zone('rejected'), ['patients_bad2.csv', 'patients_bad3.csv', 'patients_bad4.csv']);
  assert.deepEqual(zone('quarantine'), []);
  assert.deepEqual(zone('landing'), []);

  // The history records the signed-in reviewer, and no cell value: read through the dev
  // environment's codec server, as the Web UI reads it (payloads are stored encrypted).
  const settings = await (await fetch(`${uiUrl}/api/v1/settings`)).json();
  const history = execFileSync(path.join(venv, 'bin/temporal'), [
    'workflow', 'show', '--workflow-id', bad1Id, '--address', temporalAddress, '--output', 'json',
    '--codec-endpoint', settings.Codec.Endpoint,
  ], { encoding: 'utf8' });
  const decoded = Buffer.from(history.match(/"data":\s*"([^"]*)"/g)
    .map((m) => Buffer.from(m.split('"')[3], 'base64').toString()).join('\n'));
  assert.ok(decoded.includes(USER), 'the history names the reviewer');
  assert.ok(!decoded.includes(SENTINEL), 'the history holds no cell value');
  // The Web UI tells the run apart by its summary: dataset and table in words, no file name.
  const summary = Buffer.from(JSON.parse(history).events[0].userMetadata.summary.data, 'base64').toString();
  assert.match(summary, /clinic\.patients/);
  assert.ok(!summary.includes('patients_bad1'), summary);

  await page.goto(`${consoleUrl}/runs`);
  await shot('runs');
});

test('forms refuse a missing CSRF token, and the proxy headers are not believed from a browser', async () => {
  const cookies = await context.cookies(consoleUrl);
  const cookie = cookies.map((c) => `${c.name}=${c.value}`).join('; ');
  const forged = await fetch(`${consoleUrl}/decide`, {
    method: 'POST',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'decision=approve&id=ingest-00000000000000000000000000000000',
    redirect: 'manual',
  });
  assert.equal(forged.status, 403);
  const spoofed = await fetch(`${consoleUrl}/inbox`, {
    headers: { 'x-forwarded-email': 'mallory@example.org' },
    redirect: 'manual',
  });
  assert.equal(spoofed.status, 303);
  assert.equal(spoofed.headers.get('location'), '/login');
});

test('a file dropped into landing/ by another program onboards by itself', async () => {
  // As rsync does: write a dot-file, then rename it into place.
  const folder = path.join(dir, 'lake/landing/sftp/clinic');
  fs.mkdirSync(folder, { recursive: true });
  const temp = path.join(folder, '.patients_dropped.csv.Xy12');
  fs.writeFileSync(temp, 'id,name,birthdate\np9,Dee,1970-05-06\n');
  fs.renameSync(temp, path.join(folder, 'patients_dropped.csv'));
  await until('the dropped file in raw/', () => zone('raw').includes('patients_dropped.csv'));
  assert.ok(!zone('landing').includes('patients_dropped.csv'));
});
