// The pages guardians see, checked as a guardian uses them: on a phone-sized screen, by
// tapping. Every page must fit the screen (nothing wider than it), be readable without
// zooming (text at least 16 CSS px), have controls big enough to tap (at least 44 CSS px
// tall), log no console error and fetch nothing from another origin. Each page is one
// function in PAGES below: a new page (the notice board) is one more function.
// Usage: node guardian-pages.js FIXTURE.json (run by scripts/guardian-pages.sh, which sets up
// the server, the message and the links; see there for the fixture's fields).
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const fixture = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const base = new URL(fixture.base_url);

// An iPhone-sized phone (CSS pixels), Japanese.
const PHONE = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 3,
  isMobile: true,
  hasTouch: true,
  userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  locale: 'ja-JP',
  timezoneId: 'Asia/Tokyo',
};
const MIN_TEXT_PX = 16; // below this, phones zoom into inputs and people zoom to read
const MIN_TAP_PX = 44; // Apple's Human Interface Guidelines; WCAG 2.5.5

function ok(line) { console.log(`ok  ${line}`); }
function fail(message) { throw new Error(message); }
function expect(condition, message) { if (!condition) fail(message); }
function same(actual, expected, message) {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) fail(`${message}: expected ${e}, got ${a}`);
}

// The staff API and the app's API, as the script set them up.
async function api(pathname, token) {
  const response = await fetch(new URL(pathname, base), { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) fail(`GET ${pathname} answered ${response.status}: ${await response.text()}`);
  return response.json();
}
const staff = pathname => api(pathname, fixture.staff_token);
const app = pathname => api(pathname, fixture.app_token);

// ---- what every page must do on a phone --------------------------------------------------

/// A new tab on the phone that records console errors and requests to other origins.
async function open(context, url) {
  const page = await context.newPage();
  page.problems = [];
  page.on('console', m => { if (m.type() === 'error') page.problems.push(`console error: ${m.text()}`); });
  page.on('pageerror', e => page.problems.push(`page error: ${e.message}`));
  page.on('request', r => {
    const origin = new URL(r.url()).origin;
    if (origin !== base.origin) page.problems.push(`request to another origin: ${r.url()}`);
  });
  const response = await page.goto(url);
  page.lastStatus = response.status();
  return page;
}

function clean(page, name) {
  expect(page.problems.length === 0, `${name}: ${page.problems.join('; ')}`);
  ok(`${name}: no console errors, no requests to other origins`);
}

/// Fits the screen, readable without zooming, every control big enough to tap.
async function fitsPhone(page, name) {
  // The phone's screen, not window.innerWidth: a mobile browser zooms out to show a page
  // wider than the screen, and innerWidth grows with it.
  const found = await page.evaluate(({ width, minText, minTap }) => {
    const describe = el => {
      const text = (el.innerText || el.value || el.getAttribute('aria-label') || '').trim().replace(/\s+/g, ' ');
      return `<${el.tagName.toLowerCase()}${el.className ? '.' + el.className : ''}>${text ? ' "' + text.slice(0, 30) + '"' : ''}`;
    };
    const visible = el => {
      const r = el.getBoundingClientRect();
      const s = getComputedStyle(el);
      return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none';
    };
    const all = [...document.body.querySelectorAll('*')].filter(visible);
    // A box that sticks out, or one whose text runs out of it (a long URL that does not wrap).
    const wide = all
      .filter(el => el.getBoundingClientRect().right > width + 0.5
        || (getComputedStyle(el).overflowX === 'visible' && el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0))
      .map(describe);
    // Text: every element that holds text of its own, and every field one types into.
    const small = all
      .filter(el => [...el.childNodes].some(n => n.nodeType === Node.TEXT_NODE && n.textContent.trim())
        || el.matches('textarea, input:not([type=hidden]):not([type=radio]):not([type=checkbox]), select, button'))
      .filter(el => parseFloat(getComputedStyle(el).fontSize) < minText)
      .map(el => `${describe(el)} ${getComputedStyle(el).fontSize}`);
    // Tap targets: a radio button or checkbox is tapped through its label.
    const controls = all.filter(el => el.matches('a[href], button, input:not([type=hidden]), textarea, select'));
    const tiny = controls
      .map(el => ({ el, target: el.matches('input[type=radio], input[type=checkbox]') ? el.closest('label') || el : el }))
      .filter(({ target }) => target.getBoundingClientRect().height < minTap)
      .map(({ el, target }) => `${describe(target)} ${Math.round(target.getBoundingClientRect().height)}px${el === target ? '' : ` (for ${describe(el)})`}`);
    return {
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
      width,
      wide,
      small,
      tiny,
      controls: controls.length,
    };
  }, { width: PHONE.viewport.width, minText: MIN_TEXT_PX, minTap: MIN_TAP_PX });
  const wrong = [];
  if (found.scrollWidth > found.width || found.innerWidth > found.width || found.wide.length) {
    wrong.push(`wider than the ${found.width}px screen (scrollWidth ${found.scrollWidth}, zoomed out to ${found.innerWidth}px): ${found.wide.join(', ')}`);
  }
  if (found.small.length) wrong.push(`text smaller than ${MIN_TEXT_PX}px: ${found.small.join(', ')}`);
  if (found.tiny.length) wrong.push(`tap targets under ${MIN_TAP_PX}px tall: ${found.tiny.join(', ')}`);
  expect(wrong.length === 0, `${name}:\n  ${wrong.join('\n  ')}`);
  ok(`${name}: fits the ${found.width}px screen (scrollWidth ${found.scrollWidth}, nothing sticks out)`);
  ok(`${name}: all text at least ${MIN_TEXT_PX}px`);
  ok(`${name}: all ${found.controls} buttons, links and fields at least ${MIN_TAP_PX}px tall`);
}

/// Within the phone's screen as the page now stands, without scrolling.
async function onScreen(page, locator) {
  const box = await locator.boundingBox(); // relative to the viewport
  return box !== null && box.y >= 0 && box.y + box.height <= PHONE.viewport.height;
}

async function screenshot(page, file) {
  const where = path.join(fixture.screenshots, file);
  await page.screenshot({ path: where, fullPage: true });
  return where;
}

/// Taps a button and waits for the page the form post leads to.
async function tapAndWait(page, locator) {
  const response = page.waitForNavigation();
  await locator.tap();
  return (await response).status();
}

// ---- the pages -----------------------------------------------------------------------

/// The personal link in every e-mail: read, acknowledge, answer.
async function personalLink(context) {
  const name = 'personal link';
  const page = await open(context, fixture.personal_link);
  same(page.lastStatus, 200, `${name}: GET`);
  for (const [what, locator] of [
    ['the subject', page.getByRole('heading', { level: 1, name: '運動会のお知らせと出欠確認' })],
    ['the body', page.getByText('10月12日（土）に運動会を行います。', { exact: false })],
    ['the sender', page.getByText('1年1組 担任 佐藤', { exact: false })],
    ['the 確認しました button', page.getByRole('button', { name: '確認しました' })],
  ]) {
    expect(await locator.isVisible(), `${name}: ${what} is not visible`);
  }
  ok(`${name}: the subject, body, sender and the 確認しました button are visible`);
  const attachment = page.getByRole('link', { name: 'letter.pdf' });
  expect(await attachment.isVisible(), `${name}: no link to the attachment`);
  const file = await context.request.get(new URL(await attachment.getAttribute('href'), page.url()).href);
  expect(file.status() === 200 && file.headers()['content-type'].startsWith('application/pdf'),
    `${name}: the attachment link answered ${file.status()} ${file.headers()['content-type']}`);
  ok(`${name}: the attachment link is there and serves the PDF`);
  ok(`${name}: screenshot ${await screenshot(page, 'personal-link.png')}`);
  await fitsPhone(page, name);

  // 確認しました
  const acknowledged = await tapAndWait(page, page.getByRole('button', { name: '確認しました' }));
  same(acknowledged, 200, `${name}: the page after 確認しました`);
  expect(await page.getByText('確認済み', { exact: false }).isVisible(), `${name}: no 確認済み after tapping 確認しました`);
  expect(await page.getByRole('button', { name: '確認しました' }).count() === 0, `${name}: the 確認しました button is still there`);
  ok(`${name}: tapping 確認しました shows the page again, acknowledged (確認済み)`);

  // The survey, with the required question left out: an error next to it, nothing stored.
  const question = text => page.locator('fieldset').filter({ has: page.locator('legend', { hasText: text }) });
  const attendance = question('当日は参観されますか');
  const helping = question('お手伝いいただける係');
  const note = question('連絡事項');
  await helping.getByLabel('受付').tap();
  await helping.getByLabel('撮影').tap();
  await note.locator('textarea').fill('よろしくお願いします。');
  same(await tapAndWait(page, page.getByRole('button', { name: '回答する' })), 200, `${name}: the page after an incomplete answer`);
  const error = attendance.locator('.error');
  expect(await error.isVisible(), `${name}: no error inside the required question's box`);
  const errorText = await error.innerText();
  expect(errorText.includes('回答してください'), `${name}: the error says ${errorText}`);
  expect(await onScreen(page, error), `${name}: the error is off screen: the guardian would have to scroll to find it`);
  same((await staff(`/api/v1/messages/${fixture.message_id}/stats`)).answered, 0, `${name}: stats.answered after an incomplete form`);
  const before = (await staff(`/api/v1/messages/${fixture.message_id}/recipients`)).items.find(r => r.member_id === fixture.member_id);
  same(before && before.answers, [], `${name}: answers stored from an incomplete form`);
  ok(`${name}: answering without the required question shows "${errorText}" next to it, on screen, and stores nothing`);
  expect(await helping.getByLabel('受付').isChecked() && await helping.getByLabel('撮影').isChecked()
    && !(await helping.getByLabel('片付け').isChecked())
    && await note.locator('textarea').inputValue() === 'よろしくお願いします。',
  `${name}: what the guardian had answered is gone after the error`);
  ok(`${name}: the answers given are still filled in after the error`);
  ok(`${name}: screenshot ${await screenshot(page, 'personal-link-survey-error.png')}`);
  await fitsPhone(page, `${name} (survey error)`);

  // Answered fully.
  await attendance.getByLabel('参観する', { exact: true }).tap();
  same(await tapAndWait(page, page.getByRole('button', { name: '回答する' })), 200, `${name}: the page after answering`);
  expect(await page.getByRole('button', { name: '回答を変更する' }).isVisible(), `${name}: no 回答を変更する after answering`);
  expect(await question('当日は参観されますか').getByLabel('参観する', { exact: true }).isChecked(), `${name}: the answer is not shown checked`);
  expect(await onScreen(page, page.getByRole('button', { name: '回答を変更する' })) || await onScreen(page, attendance),
    `${name}: after answering the page opens away from the survey`);
  const recipients = await staff(`/api/v1/messages/${fixture.message_id}/recipients`);
  const mine = recipients.items.find(r => r.member_id === fixture.member_id);
  same(mine && mine.answers, [
    { question: 0, choices: [0] },
    { question: 1, choices: [0, 2] },
    { question: 2, text: 'よろしくお願いします。' },
  ], `${name}: the answers staff see`);
  const stats = await staff(`/api/v1/messages/${fixture.message_id}/stats`);
  same([stats.read, stats.acknowledged, stats.answered], [1, 1, 1], `${name}: stats read/acknowledged/answered`);
  ok(`${name}: a full answer is stored (staff see 参観する, 受付+撮影 and the note; stats read 1, acknowledged 1, answered 1)`);
  ok(`${name}: screenshot ${await screenshot(page, 'personal-link-answered.png')}`);
  await fitsPhone(page, `${name} (answered)`);
  clean(page, name);
}

/// The link that confirms an address a guardian added in the app (double opt-in).
async function confirmationPage(context) {
  const name = 'confirmation page';
  const status = async () => (await app('/api/v1/app/me')).emails.find(e => e.address === fixture.added_address)?.status;
  same(await status(), 'unconfirmed', `${name}: the added address before the link is opened`);
  const page = await open(context, fixture.confirmation_link);
  same(page.lastStatus, 200, `${name}: GET`);
  expect(await page.getByRole('heading', { name: 'メールアドレスの確認' }).isVisible(), `${name}: no heading`);
  const button = page.getByRole('button', { name: 'このアドレスで受け取る' });
  expect(await button.isVisible(), `${name}: no button`);
  same(await status(), 'unconfirmed', `${name}: the address after only opening the link`);
  ok(`${name}: opening it shows the button and confirms nothing (the app's profile: unconfirmed)`);
  ok(`${name}: screenshot ${await screenshot(page, 'confirmation.png')}`);
  await fitsPhone(page, name);
  same(await tapAndWait(page, button), 200, `${name}: the page after the button`);
  expect(await page.getByRole('heading', { name: 'メールアドレスを確認しました' }).isVisible(), `${name}: no confirmed result`);
  same(await status(), 'active', `${name}: the address after the button`);
  ok(`${name}: tapping the button shows メールアドレスを確認しました and the profile shows the address active`);
  ok(`${name}: screenshot ${await screenshot(page, 'confirmation-done.png')}`);
  await fitsPhone(page, `${name} (confirmed)`);
  clean(page, name);
}

const PAGES = [personalLink, confirmationPage];

(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  try {
    for (const check of PAGES) {
      const context = await browser.newContext(PHONE);
      try { await check(context); } finally { await context.close(); }
    }
  } finally {
    await browser.close();
  }
})().catch(e => { console.error(e); process.exit(1); });
