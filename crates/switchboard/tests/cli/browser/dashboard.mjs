// Drives the dashboard in Debian's chromium or firefox-esr, headless, for tests/cli/browser.rs
// (Firefox through WebDriver BiDi, playwright's `moz-firefox` channel, so the stock Debian
// build serves). Talks to the test on stdin/stdout, one line each way, so the test decides
// when mail is sent:
//   argv: <playwright-core dir> <browser executable> <dashboard url> <token> <screenshot dir>
//   out "signed-in"            the page shows the room
//   in  "message <text>"       wait for a message with this text to appear
//   out "seen <ms>"            it appeared, after <ms> since the line came in
//   in  "absent <text>"        check no message with this text is on the page now
//   out "absent"               it is not (else "failed …")
//   in  "wait <selector>"      wait for an element matching the playwright selector
//   out "waited <ms>"          it is on the page, after <ms> since the line came in
//   in  "look"                 at a phone's width (390 px) the page must not scroll sideways;
//                              screenshots at that width and in dark mode
//   out "looked"               it fits (else "failed …")
//   in  "banner"               wait for the "reconnecting…" banner to show
//   out "banner"               it shows
//   in  "charts"               check the charts are drawn and coloured by the style sheet
//   out "charts <light> <dark>" their line colour in each colour scheme
//   in  "chart <title>=<value>" wait for that chart to show that newest value
//   out "chart"                it does
// Generic commands, for any part of the page. <sel> is a CSS selector without spaces (use `>`
// between parts); in a <value>, `\n` stands for a line break.
//   in  "see <sel> <text>"     wait for an element matching <sel> that shows <text>
//   out "seen <ms>"            it appeared, after <ms> since the line came in
//   in  "fill <sel> <value>"   type <value> into the field (replacing what it held)
//   out "filled"
//   in  "select <sel> <value>" choose the option with this value in the list
//   out "selected"
//   in  "click <sel>"          click the element (a submit waits for the page it loads)
//   out "clicked"
//   in  "follow <sel>"         click a link or a submit button and wait for the new page
//   out "followed"
//   in  "shot <name> [<sel>]"  a screenshot <name>.png of the page, or of the element, when
//                              screenshots are kept (Chromium only)
//   out "shot"
//   out "failed <why>"         anything went wrong (the test fails with it)
import { createRequire } from "node:module";
import readline from "node:readline";

const [pwDir, executable, url, token, shots] = process.argv.slice(2);
const require = createRequire(pwDir + "/");
const playwright = require("playwright-core");
const firefox = executable.includes("firefox");

const say = (line) => process.stdout.write(line + "\n");
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

let browser;
let page;
try {
  browser = firefox
    ? await playwright.firefox.launch({ channel: "moz-firefox", executablePath: executable, headless: true })
    : await playwright.chromium.launch({
        executablePath: executable,
        headless: true,
        // Root in a container has no user namespace for the sandbox.
        args: ["--no-sandbox"],
      });
  page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("response", (r) => r.status() >= 400 && errors.push(`${r.status()} ${r.url()}`));
  await page.goto(url);
  await page.fill("#token", token);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  await page.waitForSelector("#peers-h");
  const shot = (name) =>
    shots && !firefox ? page.screenshot({ path: `${shots}/${name}.png`, fullPage: true }) : null;
  await shot("dashboard-signed-in");
  say("signed-in");
  for (;;) {
    const next = await lines.next();
    if (next.done) break;
    const text = next.value;
    if (text === "banner") {
      await page.locator("#connection").waitFor({ state: "visible", timeout: 30_000 });
      say("banner");
      continue;
    }
    if (text === "look") {
      const wide = page.viewportSize();
      await page.setViewportSize({ width: 390, height: 844 });
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
      await shot("dashboard-phone");
      await page.setViewportSize(wide);
      await page.emulateMedia({ colorScheme: "dark" });
      await shot("dashboard-dark");
      await page.emulateMedia({ colorScheme: "light" });
      say(overflow > 0 ? `failed the page is ${overflow} px wider than a phone` : "looked");
      continue;
    }
    if (text.startsWith("wait ")) {
      const start = Date.now();
      await page.locator(text.slice("wait ".length)).first().waitFor({ timeout: 10_000 });
      say(`waited ${Date.now() - start}`);
      continue;
    }
    const [command, sel, ...rest] = text.split(" ");
    const arg = rest.join(" ").replaceAll("\\n", "\n");
    if (command === "see" && sel) {
      const start = Date.now();
      await page.locator(sel, { hasText: arg }).first().waitFor({ timeout: 10_000 });
      say(`seen ${Date.now() - start}`);
      continue;
    }
    if (command === "fill" && sel) {
      await page.fill(sel, arg);
      say("filled");
      continue;
    }
    if (command === "select" && sel) {
      await page.selectOption(sel, arg);
      say("selected");
      continue;
    }
    if (command === "follow" && sel) {
      await Promise.all([page.waitForNavigation(), page.click(sel)]);
      say("followed");
      continue;
    }
    if (command === "click" && sel) {
      await page.click(sel, { timeout: 10_000 });
      say("clicked");
      continue;
    }
    if (command === "shot" && sel) {
      if (!arg) await shot(sel);
      else if (shots && !firefox) await page.locator(arg).first().screenshot({ path: `${shots}/${sel}.png` });
      say("shot");
      continue;
    }
    if (text === "charts") {
      await page.locator("#charts .chart-svg").nth(3).waitFor({ timeout: 30_000 });
      const stroke = () => page.locator("#charts .spark").first().evaluate((e) => getComputedStyle(e).stroke);
      const light = await stroke();
      await page.emulateMedia({ colorScheme: "dark" });
      const dark = await stroke();
      await shot("dashboard-charts-dark");
      await page.emulateMedia({ colorScheme: "light" });
      const coloured = light !== dark && ![light, dark].some((c) => c === "none" || c === "rgb(0, 0, 0)");
      say(coloured ? `charts ${light} ${dark}` : `failed the charts' colour does not follow the scheme: ${light} / ${dark}`);
      continue;
    }
    if (text.startsWith("chart ")) {
      const [title, value] = text.slice("chart ".length).split("=");
      const chart = page.locator("#charts .chart", { hasText: title });
      await chart.locator(".latest", { hasText: new RegExp(`^${value}$`) }).waitFor({ timeout: 30_000 });
      say("chart");
      continue;
    }
    if (text.startsWith("absent ")) {
      const unwanted = text.slice("absent ".length);
      const found = await page.locator(".message .text", { hasText: unwanted }).count();
      say(found === 0 ? "absent" : `failed "${unwanted}" is on the page`);
      continue;
    }
    if (text.startsWith("message ")) {
      const start = Date.now();
      const wanted = text.slice("message ".length);
      await page.locator(".message .text", { hasText: wanted }).first().waitFor({ timeout: 10_000 });
      say(`seen ${Date.now() - start}`);
      await shot("dashboard-message");
      continue;
    }
    say(`failed unknown command: ${text}`);
  }
  // A relay that went away on purpose (the reconnect test) fails the stream's loads while it is
  // down; anything else is a fault of the page.
  const faults = errors.filter((e) => !(process.env.RELAY_GOES_AWAY && /ERR_CONNECTION_REFUSED|Failed to load resource/.test(e)));
  if (faults.length) say(`failed page errors: ${faults.join(" | ")}`);
} catch (e) {
  // Where the page was and what it showed, so a failure explains itself.
  let where = "";
  if (page) {
    const text = await page.locator("body").innerText().catch(() => "");
    where = ` (at ${page.url()}: ${text.replace(/\s+/g, " ").slice(0, 300)})`;
  }
  say(`failed ${String(e).split("\n")[0]}${where}`);
} finally {
  if (browser) await browser.close();
}
