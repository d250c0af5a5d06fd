// dsv3 serve driven by the official OpenAI JavaScript client (npm "openai"), as applications
// use it: chat and completions, streamed and not, errors as the client surfaces them,
// concurrency. The server is started by run.sh, which passes DSV3_URL and DSV3_API_KEY.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = `${process.env.DSV3_URL}/v1`;
const apiKey = process.env.DSV3_API_KEY;
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120_000 });

async function modelId() {
  const models = await client.models.list();
  assert.ok(models.data.length >= 1);
  return models.data[0].id;
}

async function collectChatStream(params) {
  const stream = await client.chat.completions.create({ ...params, stream: true });
  let content = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      if (choice.delta?.content) content += choice.delta.content;
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  return { content, finish, usage, chunks };
}

test('models list names the served model, and retrieve finds it', async () => {
  const id = await modelId();
  assert.equal(typeof id, 'string');
  const model = await client.models.retrieve(id);
  assert.equal(model.id, id);
  await assert.rejects(client.models.retrieve('no-such-model'), (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
});

test('chat completion, non-streamed', async () => {
  const model = await modelId();
  const r = await client.chat.completions.create({
    model, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello.' }],
    max_tokens: 16, temperature: 0,
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 0);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('streamed deltas concatenate to the non-streamed text, with one usage chunk', async () => {
  const model = await modelId();
  const params = { model, messages: [{ role: 'user', content: '多字节字符: 你好, 世界 🌍 ?' }], max_tokens: 40, temperature: 0 };
  const full = await client.chat.completions.create(params);
  const streamed = await collectChatStream({ ...params, stream_options: { include_usage: true } });
  assert.equal(streamed.content, full.choices[0].message.content);
  assert.equal(streamed.finish, full.choices[0].finish_reason);
  assert.ok(streamed.usage, 'usage chunk present');
  assert.equal(streamed.usage.completion_tokens, full.usage.completion_tokens);
});

test('legacy completions, streamed and not', async () => {
  const model = await modelId();
  const params = { model, prompt: 'The capital of France is', max_tokens: 12, temperature: 0 };
  const full = await client.completions.create(params);
  assert.equal(full.object, 'text_completion');
  const stream = await client.completions.create({ ...params, stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
  assert.equal(text, full.choices[0].text);
  const ids = await client.completions.create({ model, prompt: [0, 100, 200, 300], max_tokens: 3 });
  assert.equal(ids.usage.prompt_tokens, 4);
});

test('completions with echo and logprobs score the prompt, as evaluation harnesses ask', async () => {
  const model = await modelId();
  const r = await client.completions.create({ model, prompt: 'The capital of France is', max_tokens: 1, temperature: 0,
                                              echo: true, logprobs: 1 });
  const c = r.choices[0];
  assert.ok(c.text.startsWith('The capital of France is'));
  assert.equal(c.logprobs.token_logprobs[0], null);
  assert.equal(c.logprobs.tokens.length, r.usage.prompt_tokens + 1);
  for (const lp of c.logprobs.token_logprobs.slice(1)) assert.ok(lp <= 0);
});

test('n choices, logprobs and seed', async () => {
  const model = await modelId();
  const params = {
    model, messages: [{ role: 'user', content: 'Pick a word.' }], max_tokens: 5, n: 3,
    temperature: 1.0, seed: 1234, logprobs: true, top_logprobs: 5,
  };
  const a = await client.chat.completions.create(params);
  const b = await client.chat.completions.create(params);
  assert.equal(a.choices.length, 3);
  for (const [i, choice] of a.choices.entries()) {
    assert.equal(choice.index, i);
    assert.equal(choice.message.content, b.choices[i].message.content, 'same seed, same output');
    for (const entry of choice.logprobs.content) {
      assert.ok(entry.logprob <= 0);
      assert.equal(entry.top_logprobs.length, 5);
      assert.ok(Array.isArray(entry.bytes));
    }
  }
});

test('stop strings end generation without leaking', async () => {
  const model = await modelId();
  const base = { model, messages: [{ role: 'user', content: 'Tell me a story.' }], max_tokens: 30, temperature: 0 };
  const full = (await client.chat.completions.create(base)).choices[0].message.content;
  const stop = full.slice(4, 7);
  if (!stop) return;
  const expected = full.slice(0, full.indexOf(stop));
  const r = await client.chat.completions.create({ ...base, stop: [stop] });
  assert.equal(r.choices[0].message.content, expected);
  assert.equal(r.choices[0].finish_reason, 'stop');
  const s = await collectChatStream({ ...base, stop });
  assert.equal(s.content, expected);
  assert.equal(s.finish, 'stop');
});

test('errors arrive as the client library\'s typed errors', async () => {
  const model = await modelId();
  await assert.rejects(
    client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], temperature: 7 }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'temperature');
  await assert.rejects(
    client.chat.completions.create({ model, messages: [] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'messages');
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  const stranger = new OpenAI({ baseURL, apiKey: 'wrong-key', maxRetries: 0 });
  await assert.rejects(stranger.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
  await assert.rejects(
    client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], max_tokens: 10_000_000, stream: true }),
    (e) => e instanceof OpenAI.BadRequestError && e.code === 'context_length_exceeded');
});

test('eight concurrent requests give the same tokens as one at a time', async () => {
  const model = await modelId();
  const params = (i) => ({ model, messages: [{ role: 'user', content: `Request ${i}: describe the ocean` }], max_tokens: 16, temperature: 0 });
  const alone = [];
  for (let i = 0; i < 8; i++) alone.push((await client.chat.completions.create(params(i))).choices[0].message.content);
  const together = await Promise.all([...Array(8).keys()].map((i) =>
    i % 2 ? collectChatStream(params(i)).then((r) => r.content)
          : client.chat.completions.create(params(i)).then((r) => r.choices[0].message.content)));
  assert.deepEqual(together, alone);
});

test('aborting a stream cancels its generation on the server', async () => {
  const model = await modelId();
  const metric = async (name) => {
    const text = await (await fetch(`${process.env.DSV3_URL}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(name + ' '));
    return Number(line.split(' ')[1]);
  };
  const before = await metric('dsv3_requests_cancelled_total');
  const controller = new AbortController();
  const stream = await client.chat.completions.create(
    { model, messages: [{ role: 'user', content: 'Go on forever.' }], stream: true, max_tokens: 1000 },
    { signal: controller.signal });
  let seen = 0;
  try {
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta?.content) seen += 1;
      if (seen >= 3) controller.abort();
    }
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIUserAbortError || e.name === 'AbortError', String(e));
  }
  let after = before;
  for (let i = 0; i < 100 && after === before; i++) {
    await new Promise((r) => setTimeout(r, 50));
    after = await metric('dsv3_requests_cancelled_total');
  }
  assert.equal(after, before + 1);
  assert.equal(await metric('dsv3_running_requests'), 0);
});
