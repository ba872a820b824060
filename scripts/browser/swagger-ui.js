// What a member of staff does first: open Swagger UI, sign in with Authorize (the OAuth2
// password flow, e-mail address and password), then "Try it out" on GET /api/v1/me.
// Usage: node swagger-ui.js BASE_URL EMAIL PASSWORD SCREENSHOT.png (run by scripts/swagger-ui.sh).
const { chromium } = require('playwright-core');
const [base, email, password, screenshot] = process.argv.slice(2);
(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  await page.goto(`${base}/swagger-ui/`);
  await page.waitForSelector('.btn.authorize');
  await page.click('.btn.authorize');
  await page.fill('#oauth_username', email);
  await page.fill('#oauth_password', password);
  const dialog = page.locator('.auth-container').filter({ has: page.locator('#oauth_username') });
  await dialog.locator('button.authorize').click();
  await page.waitForSelector('text=Logout', { timeout: 10000 });
  await page.click('.btn-done');
  await page.click('#operations-auth-me');
  await page.click('#operations-auth-me .try-out__btn');
  await page.click('#operations-auth-me .execute');
  await page.waitForSelector('#operations-auth-me .responses-table .response-col_status', { timeout: 10000 });
  const text = await page.locator('#operations-auth-me .live-responses-table .microlight').first().innerText();
  const me = JSON.parse(text);
  await page.screenshot({ path: screenshot });
  if (me.kind !== 'user' || me.email !== email || me.role !== 'admin') {
    throw new Error(`GET /api/v1/me through Swagger UI answered ${text}`);
  }
  console.log(`Swagger UI: signed in through Authorize and "Try it out" on /api/v1/me answered ${me.email} (${me.role})`);
  await browser.close();
})().catch(e => { console.error(e); process.exit(1); });
