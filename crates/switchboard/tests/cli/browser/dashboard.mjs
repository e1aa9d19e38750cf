// Drives the dashboard in Debian's chromium, headless, for tests/cli/browser.rs. Talks to the
// test on stdin/stdout, one line each way, so the test decides when mail is sent:
//   argv: <playwright-core dir> <chromium> <dashboard url> <token> <screenshot dir>
//   out "signed-in"            the page shows the room
//   in  "<text>"               wait for a message with this text to appear
//   out "seen <ms>"            it appeared, after <ms> since the line came in
//   in  "absent <text>"        check no message with this text is on the page now
//   out "absent"               it is not (else "failed …")
//   in  "banner"               wait for the "reconnecting…" banner to show
//   out "banner"               it shows
// Generic steps (a <selector> is a CSS selector without spaces; the rest of the line is text):
//   in  "click <selector>"     click the element (a submit waits for the page it loads)
//   out "clicked"
//   in  "fill <selector> <value>"  type the value into the field, replacing what it held
//   out "filled"
//   in  "see <selector> <text>"    wait for an element matching it with the text in it
//   out "seen <ms>"            it is there, after <ms> since the line came in
//   in  "shot <name> [<selector>]" a screenshot <name>.png in the screenshot dir, of the element
//   out "shot"                 or else of the whole page
//   out "failed <why>"         anything went wrong (the test fails with it)
import { createRequire } from "node:module";
import readline from "node:readline";

const [pwDir, chromium, url, token, shots] = process.argv.slice(2);
const require = createRequire(pwDir + "/");
const { chromium: driver } = require("playwright-core");

const say = (line) => process.stdout.write(line + "\n");
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

let browser;
let page;
try {
  browser = await driver.launch({
    executablePath: chromium,
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
  if (shots) await page.screenshot({ path: `${shots}/dashboard-signed-in.png`, fullPage: true });
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
    const [verb, selector, ...rest] = text.split(" ");
    const arg = rest.join(" ");
    if (verb === "click") {
      await page.click(selector, { timeout: 10_000 });
      say("clicked");
      continue;
    }
    if (verb === "fill") {
      await page.fill(selector, arg, { timeout: 10_000 });
      say("filled");
      continue;
    }
    if (verb === "see") {
      const start = Date.now();
      await page.locator(selector, { hasText: arg }).first().waitFor({ timeout: 10_000 });
      say(`seen ${Date.now() - start}`);
      continue;
    }
    if (verb === "shot") {
      const path = `${shots}/${selector}.png`;
      if (arg) await page.locator(arg).first().screenshot({ path });
      else await page.screenshot({ path, fullPage: true });
      say("shot");
      continue;
    }
    if (text.startsWith("absent ")) {
      const unwanted = text.slice("absent ".length);
      const found = await page.locator(".message .text", { hasText: unwanted }).count();
      say(found === 0 ? "absent" : `failed "${unwanted}" is on the page`);
      continue;
    }
    const start = Date.now();
    await page.locator(".message .text", { hasText: text }).first().waitFor({ timeout: 10_000 });
    say(`seen ${Date.now() - start}`);
    if (shots) await page.screenshot({ path: `${shots}/dashboard-message.png`, fullPage: true });
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
