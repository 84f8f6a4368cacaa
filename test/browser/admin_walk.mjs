// admin_walk.mjs: headless Chromium walks the admin console as an
// organisation administrator would: sign in, open the console from the
// account menu (by keyboard), add a domain, change its security policy,
// read its DNS records, delete it. Every page is checked with axe-core
// (no violation allowed) and photographed into cfg.outDir.
//
// Driven by a Go test (test/e2e/admin_browser_test.go) that passes the
// configuration as JSON in argv[2] and reads one JSON object a line on
// stdout: {"event":"axe","tag","page","violations":[…]} for every page
// checked, {"event":"done"} at the end.
import { launchChromium, emit, check } from './chromium.mjs';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const cfg = JSON.parse(process.argv[2]);
const axeSource = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

fs.mkdirSync(cfg.outDir, { recursive: true });
const browser = await launchChromium(cfg);
try {
  for (const run of cfg.runs) await walk(run);
} finally {
  await browser.close();
}
emit({ event: 'done' });

async function walk(run) {
  const T = run.text;
  const context = await browser.newContext({
    viewport: { width: run.width, height: run.height }, deviceScaleFactor: 1,
    isMobile: run.width < 600, hasTouch: run.width < 600,
    locale: run.lang === 'ja' ? 'ja-JP' : 'en-US', timezoneId: 'Asia/Tokyo',
  });
  await context.addCookies([{ name: 'postern_tz', value: 'Asia/Tokyo', url: cfg.baseURL },
    { name: 'postern_lang', value: run.lang, url: cfg.baseURL }]);
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  let step = 0;
  // look photographs the page and runs axe-core on it (WCAG 2.x A and AA
  // rules and best practices); the Go test fails on any violation.
  const look = async (name) => {
    step++;
    process.stderr.write(`${new Date().toISOString()} ${run.tag}: step ${step} ${name}\n`);
    await page.screenshot({ path: path.join(cfg.outDir, `admin-${run.tag}-${String(step).padStart(2, '0')}-${name}.png`), fullPage: true });
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    check(width <= run.width, `${name}: the page is ${width}px wide in a ${run.width}px window`);
    // Evaluated through the DevTools protocol, which the page's CSP
    // (script-src 'self') does not govern: the page itself is unchanged.
    await page.evaluate(axeSource);
    const res = await page.evaluate(() => window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
    }));
    emit({ event: 'axe', tag: run.tag, page: name, url: page.url(),
      violations: res.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) })) });
  };

  await page.goto(cfg.baseURL + '/signin');
  await page.getByLabel(T.email).fill(run.email);
  await page.getByLabel(T.password, { exact: true }).fill(run.password);
  await page.getByRole('button', { name: T.signin }).click();
  await page.waitForURL('**/security');

  // The console from the account menu, by keyboard.
  await page.locator('#account-button').focus();
  await page.keyboard.press('Enter');
  const item = page.getByRole('menuitem', { name: T.console });
  await item.waitFor({ state: 'visible' });
  await item.focus();
  await page.keyboard.press('Enter');
  await page.waitForURL('**/admin/domains');
  check(await page.locator('nav.adminnav a[aria-current="page"]').innerText() === T.domains, 'Domains is the current section');
  // The skip link comes first.
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement.classList.contains('skip')), 'the first Tab reaches the skip link');
  // Shown while focused, the skip link covers the brand; axe looks at the page at rest.
  await page.evaluate(() => document.activeElement.blur());
  await look('domains');

  // Add a domain created before the cut-off: each member decides.
  await page.getByRole('link', { name: T.add }).click();
  await page.waitForURL('**/admin/domains/new');
  await look('add');
  const name = `walk-${run.tag}.example`;
  await page.getByLabel(T.name, { exact: true }).fill('not a domain');
  await page.getByRole('button', { name: T.add }).click();
  await page.locator('#name-err').waitFor();
  check(await page.getByLabel(T.name, { exact: true }).getAttribute('aria-invalid') === 'true', 'the bad name is marked invalid');
  await look('add-error');
  errors.length = 0; // the console reports the refused form's 400, which was the point
  await page.getByLabel(T.name, { exact: true }).fill(name);
  await page.getByLabel(T.created).fill('2021-04-01');
  await page.getByRole('button', { name: T.add }).click();
  await page.waitForURL(`**/admin/domains/${name}?done=domain.added`);
  check((await page.locator('main').innerText()).includes(T.optional), 'the new domain lets each member decide');
  await look('domain');

  // Its security policy: IMAP off, an allowlist, expiry, the setting forced on.
  await page.getByRole('link', { name: T.policyEdit }).click();
  await page.waitForURL(`**/admin/domains/${name}/policy`);
  await page.getByLabel('IMAP', { exact: true }).uncheck();
  await page.getByLabel(T.networks).fill('192.0.2.0/24\n2001:db8::/32');
  await page.getByLabel(T.expire).fill('90');
  await page.getByLabel(T.force).check();
  await look('policy');
  await page.getByRole('button', { name: T.save }).click();
  await page.waitForURL(`**/admin/domains/${name}?done=policy.saved`);
  const main = await page.locator('main').innerText();
  check(main.includes('192.0.2.0/24') && main.includes(T.forced), 'the saved policy is shown');
  await look('policy-saved');

  await page.getByRole('link', { name: T.dns }).click();
  await page.waitForURL(`**/admin/domains/${name}/dns`);
  check((await page.locator('main').innerText()).includes('_dmarc.' + name), 'the DMARC record is listed');
  await look('dns');

  // A member, so that deleting the domain asks the second confirmation.
  await page.goto(`${cfg.baseURL}/admin/domains/${name}/members/new`);
  await page.locator('#local').fill('leaver');
  await page.locator('main form.form button[type="submit"]').click();
  await page.locator('#one-time-password').waitFor();

  await page.goto(`${cfg.baseURL}/admin/domains/${name}`);
  await page.getByRole('link', { name: T.deleteAll }).click();
  await page.waitForURL(`**/admin/domains/${name}/delete`);
  check((await page.locator('main').innerText()).includes(T.deleteAllMembers), 'the page counts the members that go');
  await page.getByLabel(T.deleteAllType).fill(name);
  await look('delete');
  await page.getByRole('button', { name: T.deleteAll, exact: true }).click();
  await page.waitForURL('**/admin/domains?done=domain.deleted');
  check(!(await page.locator('main').innerText()).includes(name), 'the domain is gone from the list');
  await look('deleted');

  // The audit log has the deletion, by this admin, and its charts.
  await page.getByRole('link', { name: T.auditNav }).click();
  await page.waitForURL('**/admin/audit');
  const log = await page.locator('main').innerText();
  check(log.includes(name) && log.includes(T.auditDeleted), 'the audit log lists the domain deleted');
  await page.locator('details summary').first().click();
  await look('audit');
  await walkMembers(run, page, look, errors);

  check(errors.length === 0, 'no script errors: ' + errors.join('; '));
  await context.close();
}

// walkMembers: the Members section. Find members, add one (its one-time
// password shown once), check an import file with a dry run, open the
// member, reset the password, delete the member after typing the address.
async function walkMembers(run, page, look, errors) {
  const T = run.text;
  const local = `walk-${run.tag}`;
  const email = `${local}@example.com`;
  const submit = page.locator('main form.form button[type="submit"]');
  await page.getByRole('link', { name: T.members, exact: true }).click();
  await page.waitForURL('**/admin/members');
  check(await page.locator('nav.adminnav a[aria-current="page"]').innerText() === T.members, 'Members is the current section');
  await look('members');

  await page.locator('a[href="/admin/domains/example.com/members/new"]').click();
  await page.waitForURL('**/admin/domains/example.com/members/new');
  await look('member-new');
  await page.locator('#local').fill(local);
  await page.locator('#name').fill('Walk ' + run.tag);
  await submit.click();
  check(await page.locator('#one-time-password').innerText() !== '', 'the one-time password is shown');
  await look('member-added');

  await page.goto(cfg.baseURL + '/admin/domains/example.com/members/import');
  await page.locator('#csv').fill(`email,name\nimp-${run.tag}@example.com,Imported\nnot an address,\n`);
  check(await page.locator('#dry_run').isChecked(), 'a dry run by default');
  await submit.click();
  await page.locator('main [role="status"] li').first().waitFor();
  await look('import-dry-run');
  errors.length = 0; // none expected, but a 4xx of a refused form is reported by the console

  await page.goto(cfg.baseURL + '/admin/members?q=' + encodeURIComponent(local));
  await page.getByRole('link', { name: email }).click();
  await page.waitForURL(`**/admin/domains/example.com/members/${email}`);
  await look('member');

  await page.locator(`a[href$="/members/${email}/reset-password"]`).click();
  await page.waitForURL(`**/members/${email}/reset-password`);
  await look('reset-confirm');
  await page.locator('main form button[type="submit"]').click();
  check(await page.locator('#one-time-password').innerText() !== '', 'the new one-time password is shown');
  await look('reset-done');

  await page.goto(`${cfg.baseURL}/admin/domains/example.com/members/${email}/delete`);
  await page.locator('#confirm_email').fill(email);
  await look('member-delete');
  await submit.click();
  await page.waitForURL('**/admin/members?done=m-delete*');
  await look('member-deleted');
}
