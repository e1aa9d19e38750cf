// The dashboard's time to first render, as Debian's chromium (headless) measures it, for the
// figures bench (benches/figures/dashboard.rs). Signs in once with the one-time link, then
// loads the page fresh (new context, empty cache) ten times and prints one Markdown table row:
// the medians of first contentful paint and DOMContentLoaded.
//   argv: <playwright-core dir> <chromium> <sign-in link>
import { createRequire } from "node:module";

const [pwDir, chromium, link] = process.argv.slice(2);
const require = createRequire(pwDir + "/");
const { chromium: driver } = require("playwright-core");

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = link.slice(0, link.indexOf("/login/"));
const browser = await driver.launch({ executablePath: chromium, headless: true, args: ["--no-sandbox"] });
try {
  const first = await browser.newContext();
  await (await first.newPage()).goto(link);
  const cookies = await first.cookies();
  await first.close();
  const paints = [];
  const ready = [];
  for (let i = 0; i < 10; i++) {
    const context = await browser.newContext();
    await context.addCookies(cookies);
    const page = await context.newPage();
    await page.goto(base + "/", { waitUntil: "load" });
    // The paint entry is recorded a frame after the paint; wait for it rather than guess.
    await page.waitForFunction(() => performance.getEntriesByName("first-contentful-paint").length > 0, null, { timeout: 10_000 });
    const t = await page.evaluate(() => {
      const fcp = performance.getEntriesByName("first-contentful-paint")[0];
      const nav = performance.getEntriesByType("navigation")[0];
      return {
        fcp: fcp ? fcp.startTime : NaN,
        dcl: nav.domContentLoadedEventEnd,
      };
    });
    paints.push(t.fcp);
    ready.push(t.dcl);
    await context.close();
  }
  console.log(
    `| time to first render in chromium, fresh load (first contentful paint / DOMContentLoaded, median of 10) | ${median(paints).toFixed(0)} ms / ${median(ready).toFixed(0)} ms |`,
  );
} finally {
  await browser.close();
}
