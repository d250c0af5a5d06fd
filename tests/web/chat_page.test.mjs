// The chat page at / in headless Chromium, against a real `dsv3 serve` (tests/web/run.sh).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import puppeteer from "puppeteer-core";

const url = process.env.DSV3_URL;
const apiKey = process.env.DSV3_API_KEY;

let browser;
let page;
let consoleErrors = [];

function watch(p, errors) {
  p.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  p.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
}

async function api(path, body) {
  const res = await fetch(url + path, {
    method: body ? "POST" : "GET",
    headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  assert.equal(res.status, 200, `${path}: ${await res.clone().text()}`);
  return res;
}

async function cancelledCount() {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("dsv3_requests_cancelled_total"));
  assert.ok(line, "dsv3_requests_cancelled_total is in /metrics");
  return Number(line.split(/\s+/)[1]);
}

async function setSetting(id, value) {
  await page.evaluate(
    (id, value) => {
      const input = document.getElementById(id);
      input.value = value;
      input.dispatchEvent(new Event("change"));
    },
    id,
    String(value),
  );
}

async function sendMessage(text) {
  await page.type("#input", text);
  await page.keyboard.press("Enter");
}

const streaming = () => page.$eval("#stop", (b) => !b.hidden);
const waitIdle = () => page.waitForFunction(() => document.getElementById("stop").hidden, { timeout: 60000 });
const stored = () => page.evaluate(() => {
  const list = JSON.parse(localStorage.getItem("dsv3.conversations"));
  return list.find((c) => c.id === JSON.parse(localStorage.getItem("dsv3.current")));
});

before(async () => {
  browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu"],  // root in CI containers
  });
  page = await browser.newPage();
  watch(page, consoleErrors);
});

after(async () => {
  await browser?.close();
});

describe("chat page", () => {
  test("asks for the API key, then loads with no console errors", async () => {
    await page.goto(url + "/", { waitUntil: "networkidle0" });
    await page.waitForSelector("#key-prompt:not([hidden])");
    // The only error so far is the browser reporting the 401 that told the page to ask.
    assert.ok(consoleErrors.every((e) => e.includes("401")), consoleErrors.join("\n"));
    await page.type("#key-input", apiKey);
    await page.click("#key-form button");
    await page.waitForSelector("#key-prompt", { hidden: true });
    await page.waitForFunction(() => document.getElementById("model-name").textContent.startsWith("model: "));

    // With the key kept, a fresh load shows no error at all.
    consoleErrors.length = 0;
    await page.reload({ waitUntil: "networkidle0" });
    await page.waitForFunction(() => document.getElementById("model-name").textContent.startsWith("model: "));
    assert.equal(await page.$eval("#key-prompt", (e) => e.hidden), true);
    assert.deepEqual(consoleErrors, []);
  });

  test("a message streams an answer, the one the API gives, with its token speed", async () => {
    await setSetting("set-temperature", 0);
    await setSetting("set-max-tokens", 200);
    // Watch the answer grow while it streams.
    const lengths = page.evaluate(() => new Promise((resolve) => {
      const seen = new Set();
      const tick = () => {
        const c = document.querySelector(".message.assistant:last-child .content");
        if (c) seen.add(c.textContent.length);
        if (document.getElementById("stop").hidden && c && seen.size > 1) resolve([...seen]);
        else setTimeout(tick, 5);
      };
      tick();
    }));
    await sendMessage("Hello there");
    const seen = (await lengths).filter((n) => n > 0);
    assert.ok(seen.length >= 2, `the answer grew in steps: ${seen}`);
    await waitIdle();

    const conv = await stored();
    assert.equal(conv.messages.length, 2);
    const model = await page.$eval("#model-name", (e) => e.textContent.slice("model: ".length));
    const expected = await (await api("/v1/chat/completions", {
      model, messages: [{ role: "user", content: "Hello there" }], temperature: 0, top_p: 0.95, max_tokens: 200,
    })).json();
    assert.equal(conv.messages[1].content, expected.choices[0].message.content);
    assert.equal(conv.messages[1].stats.tokens, expected.usage.completion_tokens);
    const stats = await page.$eval(".message.assistant:last-child .stats", (e) => e.textContent);
    assert.match(stats, new RegExp(`^${expected.usage.completion_tokens} tokens · \\d+\\.\\d tok/s$`));
  });

  test("regenerate replaces the last answer; edit replaces the last message", async () => {
    await page.click(".message.assistant:last-child .regenerate");
    await waitIdle();
    let conv = await stored();
    assert.equal(conv.messages.length, 2);
    assert.equal(conv.messages[0].content, "Hello there");

    await page.click(".message.user .edit");
    await page.$eval(".edit-box", (b) => { b.value = "Tell me a story"; });
    await page.click(".message.user .meta button");
    await waitIdle();
    conv = await stored();
    assert.deepEqual(conv.messages.map((m) => m.role), ["user", "assistant"]);
    assert.equal(conv.messages[0].content, "Tell me a story");
    assert.ok(conv.messages[1].stats.tokens > 0);
  });

  test("stop cancels the request, and the server counts the cancel", async () => {
    const before = await cancelledCount();
    await setSetting("set-temperature", 1);
    await setSetting("set-max-tokens", 7000);  // with the history, within --ctx 8192
    await sendMessage("Write a very long answer");
    await page.waitForFunction(
      () => document.querySelector(".message.assistant:last-child .content")?.textContent.length > 0);
    assert.equal(await streaming(), true, "still streaming when Stop is pressed");
    await page.click("#stop");
    await waitIdle();
    const conv = await stored();
    assert.equal(conv.messages.at(-1).stats.stopped, true);
    assert.match(await page.$eval(".message.assistant:last-child .stats", (e) => e.textContent), /stopped/);
    let after = before;
    for (let i = 0; i < 100 && after === before; ++i) {
      await new Promise((r) => setTimeout(r, 50));
      after = await cancelledCount();
    }
    assert.equal(after, before + 1);
  });

  test("a conversation survives a reload, and a new one starts empty", async () => {
    const conv = await stored();
    await page.reload({ waitUntil: "networkidle0" });
    assert.deepEqual(await stored(), conv);
    const shown = await page.$$eval(".message", (ms) => ms.length);
    assert.equal(shown, conv.messages.length);
    assert.equal(await page.$eval("#conversations .current span", (e) => e.textContent), "Hello there");

    await page.click("#new-chat");
    assert.equal(await page.$$eval(".message", (ms) => ms.length), 0);
    assert.equal(await page.$$eval("#conversations li", (ls) => ls.length), 2);
    await page.click("#conversations li:not(.current) span");
    assert.equal(await page.$$eval(".message", (ms) => ms.length), conv.messages.length);
    assert.deepEqual(consoleErrors, []);
  });
});

// The random model cannot be made to write HTML, so the driver answers the page's request with
// a canned stream (request interception): the page's own code parses and renders it.
describe("model output with HTML", () => {
  test("is shown as text, never run; reasoning shows apart, folded once the answer comes", async () => {
    const context = await browser.createBrowserContext();
    const p = await context.newPage();
    const errors = [];
    watch(p, errors);
    const hostile = 'Look: <script>window.__xss = 1</script> and <img src=x onerror="window.__xss = 2">\n\n'
      + "```html\n<b>code</b>\n```\n\n[link](javascript:window.__xss=3)";
    const chunk = (delta) => `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;
    const sse = chunk({ role: "assistant", reasoning_content: "Thinking <img src=y onerror=\"window.__xss = 4\">" })
      + chunk({ content: hostile.slice(0, 20) }) + chunk({ content: hostile.slice(20) })
      + `data: ${JSON.stringify({ choices: [], usage: { completion_tokens: 9 } })}\n\ndata: [DONE]\n\n`;
    await p.setRequestInterception(true);
    p.on("request", (r) => {
      if (r.url().endsWith("/v1/chat/completions")) {
        r.respond({ status: 200, contentType: "text/event-stream", body: sse });
      } else {
        r.continue();
      }
    });
    await p.evaluateOnNewDocument((k) => localStorage.setItem("dsv3.apiKey", JSON.stringify(k)), apiKey);
    await p.goto(url + "/", { waitUntil: "networkidle0" });
    await p.type("#input", "hi");
    await p.keyboard.press("Enter");
    await p.waitForSelector(".message.assistant .stats");

    const content = await p.$eval(".message.assistant .content", (e) => e.textContent);
    assert.ok(content.includes("<script>window.__xss = 1</script>"), content);
    assert.ok(content.includes('<img src=x onerror="window.__xss = 2">'), content);
    assert.equal(await p.$eval(".message.assistant .content pre code", (e) => e.textContent), "<b>code</b>\n");
    assert.equal(await p.$$eval(".message script, .message img, .message b", (es) => es.length), 0);
    assert.equal(await p.$eval(".message.assistant .content a", (a) => a.getAttribute("href")), null);
    await p.click(".message.assistant .content a");

    const reasoning = await p.$eval(".message.assistant details.reasoning", (d) => ({
      open: d.open, text: d.querySelector(".reasoning-text").textContent,
    }));
    assert.deepEqual(reasoning, { open: false, text: 'Thinking <img src=y onerror="window.__xss = 4">' });
    assert.equal(await p.evaluate(() => window.__xss), undefined);
    assert.deepEqual(errors, []);
    await context.close();
  });
});

// A reasoning model (run.sh: the random weights with an R1-style template, which opens a
// think block): what the server streams as reasoning_content shows in its own block.
describe("reasoning model", () => {
  test("reasoning streams into a collapsible block apart from the answer", async () => {
    const context = await browser.createBrowserContext();
    const p = await context.newPage();
    const errors = [];
    watch(p, errors);
    await p.evaluateOnNewDocument((k) => {
      localStorage.setItem("dsv3.apiKey", JSON.stringify(k));
      localStorage.setItem("dsv3.settings", JSON.stringify({ temperature: 0, max_tokens: 40 }));
    }, apiKey);
    const reasoningUrl = process.env.DSV3_REASONING_URL;
    await p.goto(reasoningUrl + "/", { waitUntil: "networkidle0" });
    await p.type("#input", "Why is the sky blue?");
    await p.keyboard.press("Enter");
    await p.waitForFunction(() => document.getElementById("stop").hidden && document.querySelector(".message.assistant .stats"));

    // What the API gives for the same request, streamed: the reasoning deltas apart from the content.
    const model = await p.$eval("#model-name", (e) => e.textContent.slice("model: ".length));
    const res = await fetch(reasoningUrl + "/v1/chat/completions", {
      method: "POST",
      headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ model, messages: [{ role: "user", content: "Why is the sky blue?" }], temperature: 0,
        top_p: 0.95, max_tokens: 40, stream: true }),
    });
    let reasoning = "";
    let content = "";
    for (const line of (await res.text()).split("\n")) {
      if (!line.startsWith("data: {")) continue;
      const delta = JSON.parse(line.slice(6)).choices[0]?.delta ?? {};
      reasoning += delta.reasoning_content ?? "";
      content += delta.content ?? "";
    }
    assert.ok(reasoning.length > 0, "the server streams reasoning_content");

    const shown = await p.$eval(".message.assistant", (m) => ({
      reasoning: m.querySelector("details.reasoning .reasoning-text")?.textContent,
      content: m.querySelector(".content").textContent,
    }));
    assert.equal(shown.reasoning, reasoning);
    const kept = await p.evaluate(() => JSON.parse(localStorage.getItem("dsv3.conversations"))[0].messages[1]);
    assert.equal(kept.reasoning, reasoning);
    assert.equal(kept.content, content);  // the answer holds only what came as content
    // Folded and unfolded by a click.
    const open = await p.$eval("details.reasoning", (d) => d.open);
    await p.click("details.reasoning summary");
    assert.equal(await p.$eval("details.reasoning", (d) => d.open), !open);
    assert.deepEqual(errors, []);
    await context.close();
  });
});
