// Takes docs/chat-page.png: the page in headless Chromium against a running `dsv3 serve`.
// The random-weight test model writes noise, so the answer shown is a canned stream the driver
// serves in place of /v1/chat/completions; everything else is the real page and server.
// Usage: CHROMIUM=/usr/bin/chromium node tests/web/screenshot.mjs http://127.0.0.1:PORT out.png
import puppeteer from "puppeteer-core";

const [url, out] = process.argv.slice(2);
const reasoning = "The user asks for a function that reverses a string. In Python, slicing with a step of -1 does it.";
const answer = "Slicing with a step of `-1` walks the string backwards:\n\n```python\ndef reverse(s: str) -> str:\n"
  + "    return s[::-1]\n\nprint(reverse(\"dsv3\"))  # 3vsd\n```\n\nIt works for any sequence: lists and tuples too.";
const chunk = (delta) => `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;
const sse = chunk({ role: "assistant", reasoning_content: reasoning }) + chunk({ content: answer })
  + `data: ${JSON.stringify({ choices: [], usage: { completion_tokens: 61 } })}\n\ndata: [DONE]\n\n`;

const browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM ?? "chromium", headless: true, args: ["--no-sandbox"] });
const page = await browser.newPage();
await page.setViewport({ width: 1100, height: 640 });
await page.setRequestInterception(true);
page.on("request", (r) => {
  if (r.url().endsWith("/v1/chat/completions")) r.respond({ status: 200, contentType: "text/event-stream", body: sse });
  else r.continue();
});
await page.goto(url + "/", { waitUntil: "networkidle0" });
await page.type("#input", "Write a Python function that reverses a string.");
await page.keyboard.press("Enter");
await page.waitForSelector(".message.assistant .stats");
await page.$eval(".message.assistant details.reasoning", (d) => { d.open = true; });
await page.$eval("#settings", (d) => { d.open = true; });
await page.screenshot({ path: out });
await browser.close();
