// walk.mjs: headless Chromium walks the seed's path through the member web
// UI by clicking, as a member would: sign in, profile picture, Security, turn
// on "Use a third-party app password", create "Thunderbird", copy the
// password, read the message about it, delete it, sign out. A screenshot of
// every step goes to cfg.outDir.
//
// Driven by a Go test (test/e2e/web_browser_test.go, against the real
// postern binary), which passes the configuration as JSON in argv[2]. Protocol on stdio, one JSON object a line:
//   stdout {"event":"created","tag","email","password","clipboard","profile"}
//          the new app password, read from the page and from the clipboard
//          (profile: the .mobileconfig download carried it); the Go
//          test logs in over IMAP with it, then writes "continue" on stdin;
//   stdout {"event":"deleted","tag"}  after Delete; the Go test checks that the
//          same IMAP login now fails and writes "continue";
//   stdout {"event":"done"}.
// Nothing is fetched from the network: the browser is the system's
// /usr/bin/chromium, started with its background services off.
import { launchChromium, emit, check } from './chromium.mjs';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

const cfg = JSON.parse(process.argv[2]);
const rl = readline.createInterface({ input: process.stdin });
const lines = rl[Symbol.asyncIterator]();

async function waitForGo() {
  const { value, done } = await lines.next();
  if (done || value.trim() !== 'continue') throw new Error('the Go test said: ' + (done ? 'EOF' : value));
}

fs.mkdirSync(cfg.outDir, { recursive: true });
const browser = await launchChromium(cfg);

try {
  for (const run of cfg.runs) await walk(run);
} finally {
  await browser.close();
}
emit({ event: 'done' });
rl.close(); // stdin would keep the process alive
process.stdin.destroy();

async function walk(run) {
  const T = run.text; // the UI's strings in the run's language, from the Go catalog
  const context = await browser.newContext({
    viewport: { width: run.width, height: run.height },
    deviceScaleFactor: 1,
    isMobile: run.width < 600,
    hasTouch: run.width < 600,
    locale: run.lang === 'ja' ? 'ja-JP' : 'en-US',
    timezoneId: run.timezone,
  });
  // The time zone cookie static/app.js would set on the first page (set
  // here so that no reload races the first click).
  await context.addCookies([{ name: 'postern_tz', value: run.timezone, url: cfg.baseURL }]);
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: cfg.baseURL });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // The walk's deliberate failures (a wrong password 401, a blank app name
  // 400, the reloaded password page 410) are logged by Chromium as failed
  // loads; anything else is an error.
  const expected = /^Failed to load resource: the server responded with a status of (400|401|410) /;
  page.on('console', (m) => { if (m.type() === 'error' && !expected.test(m.text())) errors.push(m.text()); });
  let step = 0;
  const shot = async (name) => {
    step++;
    process.stderr.write(`${new Date().toISOString()} ${run.tag}: step ${step} ${name}\n`);
    const file = path.join(cfg.outDir, `${run.tag}-${String(step).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
  };
  const openMenu = async () => {
    await page.locator('#account-button').click();
    await page.getByRole('menu').waitFor({ state: 'visible' });
    check(await page.locator('#account-button').getAttribute('aria-expanded') === 'true', 'menu button aria-expanded');
  };

  // Sign in with the main password, after a wrong one: the focus goes to the
  // password field, marked invalid and described by the error.
  await page.goto(cfg.baseURL + '/');
  await page.waitForURL('**/signin');
  await shot('signin');
  await page.getByLabel(T.email).fill(run.email);
  await page.getByLabel(T.password, { exact: true }).fill('not the password');
  await page.getByRole('button', { name: T.signin }).click();
  await page.locator('#signin-error').waitFor();
  check((await page.locator('#signin-error').innerText()).includes(T.signinError), 'the sign-in error is shown');
  check(await page.evaluate(() => document.activeElement.id) === 'password', 'focus on the password after a failed sign-in');
  check(await page.locator('#password').getAttribute('aria-describedby') === 'signin-error', 'the password field is described by the error');
  check(await page.getByLabel(T.email).inputValue() === run.email, 'the address is kept');
  await shot('signin-failed');
  await page.getByLabel(T.password, { exact: true }).fill(run.password);
  await page.getByRole('button', { name: T.signin }).click();
  await page.waitForURL('**/security');
  // The browser's time zone came with the form: it is the member's now.
  check(await page.locator('#tz').inputValue() === run.timezone, 'the time zone chosen from the browser: ' + await page.locator('#tz').inputValue());
  check((await page.locator('.tz').innerText()).includes(T.zoneNote), 'times are shown in the member\'s zone');

  // The profile picture at the top right opens the menu: name, address,
  // Security, Messages, Sign out. Keyboard first: Enter opens and focuses the
  // first item, Escape closes and returns focus.
  await page.locator('#account-button').focus();
  await page.keyboard.press('Enter');
  await page.getByRole('menu').waitFor({ state: 'visible' });
  check(await page.evaluate(() => document.activeElement.getAttribute('role')) === 'menuitem', 'keyboard focus in the menu');
  await page.keyboard.press('Escape');
  await page.getByRole('menu').waitFor({ state: 'hidden' });
  check(await page.evaluate(() => document.activeElement.id) === 'account-button', 'focus back on the button');
  await openMenu();
  const menuText = await page.getByRole('menu').innerText();
  check(menuText.includes(run.name) && menuText.includes(run.email), 'name and address in the menu');
  await shot('profile-menu');
  await page.getByRole('menuitem', { name: T.security }).click();
  await page.waitForURL('**/security');
  // "Where you're signed in": this browser, marked, with its sign-out button.
  const current = page.locator('#sessions li.session.current');
  check(await current.count() === 1, 'this session is listed once');
  check((await current.innerText()).includes(T.thisSession), 'this session is marked');
  check(await current.getByRole('button', { name: new RegExp('^' + T.sessionSignOut) }).count() === 1, 'a sign-out button for it');
  await shot('security');

  if (run.enforced) {
    check(await page.getByRole('switch').count() === 0, 'no switch on an enforced domain');
    check((await page.locator('main').innerText()).includes(T.enforced), 'the reason it is locked');
  } else {
    // Turn the setting on, through the confirmation dialog.
    const sw = page.getByRole('switch', { name: T.setting });
    check(await sw.getAttribute('aria-checked') === 'false', 'the setting starts off');
    await sw.click();
    const dialog = page.locator('#setting-dialog');
    await dialog.waitFor({ state: 'visible' });
    check((await dialog.innerText()).includes(T.logout), 'the dialog warns about logging out');
    await shot('confirm-setting');
    await dialog.getByRole('button', { name: T.turnOn }).click();
    await page.waitForURL('**/security?done=setting.on');
    check(await page.getByRole('switch', { name: T.setting }).getAttribute('aria-checked') === 'true', 'the setting is on');
    await shot('setting-on');
  }

  // Create a third-party app password → Create new password → name → Create password.
  await page.getByRole('link', { name: T.createEntry }).click();
  await page.waitForURL('**/security/app-passwords');
  await shot('app-passwords');
  check((await page.locator('#delete-hint').innerText()) === T.deleteHint, 'Manage says when to delete a password');
  await page.getByRole('link', { name: T.createNew }).click();
  await page.waitForURL('**/security/app-passwords/new');
  // A blank name: the error is at the field, which has the focus and is
  // described by it.
  await page.getByLabel(T.appName).fill('   ');
  await page.getByRole('button', { name: T.createPassword }).click();
  await page.locator('#name-error').waitFor();
  check(await page.evaluate(() => document.activeElement.id) === 'name', 'focus on the name field after an error');
  check(await page.locator('#name').getAttribute('aria-invalid') === 'true', 'the name field is marked invalid');
  check((await page.locator('#name').getAttribute('aria-describedby')).split(' ').includes('name-error'), 'the name field is described by its error');
  check(await page.locator('main .alert').count() === 0, 'no banner for a field error');
  await shot('app-name-error');
  await page.getByLabel(T.appName).fill('Thunderbird');
  await shot('app-name');
  await page.getByRole('button', { name: T.createPassword }).click();
  await page.locator('#app-password').waitFor();
  const grouped = (await page.locator('#app-password').innerText()).trim();
  check(/^[A-Za-z0-9]{5}( [A-Za-z0-9]{5}){3}$/.test(grouped), 'the password is shown grouped: ' + grouped.length + ' characters');
  await page.getByRole('button', { name: T.copy }).click();
  await page.locator('.copy-status').filter({ hasText: T.copied }).waitFor();
  const clipboard = await page.evaluate(() => navigator.clipboard.readText());
  const password = grouped.replace(/ /g, '');
  check(clipboard === password, 'the clipboard holds the password without spaces');
  await shot('created');
  // The Apple configuration profile: the form posts the password back, the
  // server checks it against the stored hash and answers with the profile.
  let profile = false;
  if (cfg.checkProfile) {
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#download-profile').click()]);
    const body = fs.readFileSync(await download.path(), 'utf8');
    check(download.suggestedFilename().endsWith('.mobileconfig'), 'profile file name: ' + download.suggestedFilename());
    check(body.includes('<string>' + password + '</string>') && body.includes('com.apple.mail.managed'), 'the profile carries the password');
    check(!page.url().includes(password), 'no password in the URL');
    profile = true;
  }
  check(/\/security\/app-passwords\/created\?view=[0-9a-f]{32}$/.test(page.url()), 'the page after Create is a GET of a view: ' + page.url());
  emit({ event: 'created', tag: run.tag, email: run.email, password, clipboard, profile });
  await waitForGo();

  // Reloading (or a phone restoring the tab) sends no form again and shows
  // the password no more.
  let reposted = false;
  page.on('request', (r) => { if (r.method() === 'POST') reposted = true; });
  await page.reload();
  await page.locator('#manage').waitFor();
  check(!reposted, 'the reload sent no form');
  check((await page.locator('h1').innerText()) === T.createdGone, 'the reload says the password cannot be shown again');
  check(!(await page.content()).includes(password), 'the reload shows no password');
  await shot('created-reloaded');

  // The message about it, from the menu's Messages (with its unread count).
  await openMenu();
  await page.getByRole('menuitem', { name: new RegExp('^' + T.messages) }).click();
  await page.waitForURL('**/messages');
  const first = page.locator('li.message').first();
  check((await first.innerText()).includes('Thunderbird'), 'the newest message is about Thunderbird');
  const msgText = await first.innerText();
  check(msgText.includes(T.browserName) && !msgText.includes('Mozilla/'), 'the message names the browser for people: ' + msgText);
  check(await first.evaluate((el) => el.classList.contains('unread')), 'the message is marked unread');
  await shot('messages');

  // Delete it in the Manage section, through the confirmation dialog.
  await openMenu();
  await page.getByRole('menuitem', { name: T.security }).click();
  await page.waitForURL('**/security');
  await page.getByRole('link', { name: T.createEntry }).click();
  await page.waitForURL('**/security/app-passwords');
  await page.locator('li.app', { hasText: 'Thunderbird' }).getByRole('button', { name: new RegExp('^' + T.delete) }).click();
  const del = page.locator('#delete-dialog');
  await del.waitFor({ state: 'visible' });
  check((await del.innerText()).includes('Thunderbird'), 'the dialog names the password');
  await shot('confirm-delete');
  await del.getByRole('button', { name: T.delete, exact: true }).click();
  await page.waitForURL('**/security/app-passwords?done=deleted');
  check(await page.locator('li.app').count() === 0, 'the list is empty');
  await shot('deleted');
  emit({ event: 'deleted', tag: run.tag });
  await waitForGo();

  await openMenu();
  await page.getByRole('menuitem', { name: T.signout }).click();
  await page.waitForURL('**/signin?done=signedout');
  check(errors.length === 0, 'no script errors: ' + errors.join('; '));
  await context.close();
}
