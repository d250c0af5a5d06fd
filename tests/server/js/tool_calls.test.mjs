// Tool calls as agents make them, through the official OpenAI JavaScript client against
// dsv3 serve on the random-weight model (run.sh): tool_choice "required" and a named function
// are enforced by constrained decoding, so every output is a call whose arguments an
// independent validator (ajv) accepts against the tool's parameter schema; streamed calls,
// joined by the client's own stream helper, equal the non-streamed ones; the tool's result goes
// back into the prompt; tool_choice "none" keeps the tools out of it. DSV3_JSON_SAMPLES outputs
// per check (default 10; `make test-json-100` runs 100).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Ajv from 'ajv';

const client = new OpenAI({ baseURL: `${process.env.DSV3_URL}/v1`, apiKey: process.env.DSV3_API_KEY, maxRetries: 5,
                            timeout: 300_000 });
const r1 = new OpenAI({ baseURL: `${process.env.DSV3_R1_URL}/v1`, apiKey: process.env.DSV3_API_KEY, maxRetries: 5,
                        timeout: 300_000 });
const samples = Number(process.env.DSV3_JSON_SAMPLES || 10);
const perRequest = Math.min(samples, 10);
const ajv = new Ajv({ strict: false });

const weather = {
  type: 'object',
  properties: {
    city: { type: 'string', maxLength: 30 },
    days: { type: 'integer' },
    unit: { enum: ['celsius', 'fahrenheit'] },
    options: { type: 'object', properties: { hourly: { type: 'boolean' } }, additionalProperties: false },
  },
  required: ['city', 'days'],
  additionalProperties: false,
};
const search = {
  type: 'object',
  properties: {
    query: { type: 'string', minLength: 1, maxLength: 40 },
    limit: { anyOf: [{ type: 'integer' }, { type: 'null' }] },
    sites: { type: 'array', items: { type: 'string', maxLength: 15 }, maxItems: 3 },
  },
  required: ['query', 'sites'],
  additionalProperties: false,
};
const tools = [
  { type: 'function', function: { name: 'get_weather', description: 'The weather forecast for a city', parameters: weather } },
  { type: 'function', function: { name: 'web_search', description: 'Searches the web', parameters: search } },
];
const validators = { get_weather: ajv.compile(weather), web_search: ajv.compile(search) };
const messages = [{ role: 'user', content: 'What will the weather be in Paris?' }];

async function modelId(c = client) {
  return (await c.models.list()).data[0].id;
}

// `total` choices for `params`, n at a time.
async function choices(c, params, total) {
  const all = [];
  for (let seed = 0; all.length < total; seed += 1) {
    const n = Math.min(perRequest, total - all.length);
    const r = await c.chat.completions.create({ ...params, n, seed });
    all.push(...r.choices);
  }
  return all;
}

function expectValidCall(choice, names) {
  const calls = choice.message.tool_calls;
  assert.ok(Array.isArray(calls) && calls.length === 1, `one tool call: ${JSON.stringify(choice.message)}`);
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.content, null);
  const { name, arguments: args } = calls[0].function;
  assert.ok(names.includes(name), name);
  let value;
  try { value = JSON.parse(args); } catch (e) { assert.fail(`arguments are not JSON (${e.message}): ${args}`); }
  const validate = validators[name];
  assert.ok(validate(value), `${ajv.errorsText(validate.errors)}: ${args}`);
  return name;
}

test(`tool_choice required: ${samples} of ${samples} outputs are one call whose arguments validate (ajv)`, async () => {
  const model = await modelId();
  const got = await choices(client, { model, messages, tools, tool_choice: 'required', max_tokens: 160, temperature: 1 },
                            samples);
  for (const c of got) expectValidCall(c, ['get_weather', 'web_search']);
  assert.equal(got.length, samples);
});

test(`tool_choice naming a function: ${samples} of ${samples} outputs call it with valid arguments (ajv)`, async () => {
  const model = await modelId();
  const got = await choices(client, {
    model, messages, tools, tool_choice: { type: 'function', function: { name: 'web_search' } }, max_tokens: 160,
    temperature: 1,
  }, samples);
  for (const c of got) assert.equal(expectValidCall(c, ['web_search']), 'web_search');
  assert.equal(got.length, samples);
});

test('a prompt that opens <think> (R1-style): the forced call comes after it, reasoning empty', async () => {
  const model = await modelId(r1);
  const got = await choices(r1, { model, messages, tools, tool_choice: 'required', max_tokens: 160, temperature: 1 }, 2);
  for (const c of got) {
    expectValidCall(c, ['get_weather', 'web_search']);
    assert.ok(!c.message.reasoning_content, `no reasoning: ${c.message.reasoning_content}`);
  }
});

test('streamed tool calls, joined by the client, equal the non-streamed ones; arguments come in pieces', async () => {
  const params = { model: await modelId(), messages, tools, tool_choice: 'required', max_tokens: 160, temperature: 0 };
  const whole = await client.chat.completions.create(params);
  expectValidCall(whole.choices[0], ['get_weather', 'web_search']);

  const stream = client.chat.completions.stream(params);
  let pieces = 0;
  let finish = null;
  let opened = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      if (c.finish_reason) finish = c.finish_reason;
      for (const d of c.delta?.tool_calls ?? []) {
        if (d.id) opened = { id: d.id, name: d.function.name, pieces };
        if (d.function?.arguments) pieces += 1;
      }
    }
  }
  const final = await stream.finalChatCompletion();
  const streamed = final.choices[0].message.tool_calls.map((t) => ({ id: t.id, type: t.type, function: t.function }));
  const expected = whole.choices[0].message.tool_calls.map((t) => ({ id: t.id, type: t.type, function: t.function }));
  assert.deepEqual(streamed, expected);
  assert.equal(finish, 'tool_calls');
  assert.ok(opened && opened.pieces === 0, 'the id and name come first, before any argument');
  assert.ok(pieces >= 3, `the arguments arrive in pieces as generated (${pieces})`);
});

test('round trip: the call, the tool result rendered back (role "tool"), the answer', async () => {
  const model = await modelId();
  const first = await client.chat.completions.create({
    model, messages, tools, tool_choice: { type: 'function', function: { name: 'get_weather' } }, max_tokens: 160,
    temperature: 0,
  });
  const call = first.choices[0].message.tool_calls[0];
  const followUp = async (result) => client.chat.completions.create({
    model, tools, max_tokens: 8, temperature: 0,
    messages: [...messages, first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: result }],
  });
  const short = await followUp('{"forecast": "sun"}');
  assert.equal(typeof short.choices[0].message.content, 'string');
  assert.ok(['stop', 'length', 'tool_calls'].includes(short.choices[0].finish_reason));
  // The result is in the prompt: 100 more words of it are about 100 more prompt tokens.
  const long = await followUp(JSON.stringify({ forecast: 'sun '.repeat(100).trim() }));
  assert.ok(long.usage.prompt_tokens - short.usage.prompt_tokens >= 90,
            `${short.usage.prompt_tokens} -> ${long.usage.prompt_tokens}`);
  assert.ok(short.usage.prompt_tokens > first.usage.prompt_tokens, 'the call and its result follow the first prompt');
});

test('tools reach the prompt (V3\'s template ignores them: the system prompt carries them); "none" keeps them out', async () => {
  const model = await modelId();
  const usage = async (extra) => (await client.chat.completions.create({ model, messages, max_tokens: 1, ...extra }))
    .usage.prompt_tokens;
  const bare = await usage({});
  const withTools = await usage({ tools });
  assert.ok(withTools > bare + 100, `the tool list is in the prompt: ${bare} -> ${withTools}`);
  assert.equal(await usage({ tools, tool_choice: 'none' }), bare);
});

test('tool_choice naming a function that is not in tools is a 400 naming tool_choice', async () => {
  const model = await modelId();
  await assert.rejects(
    client.chat.completions.create({ model, messages, tools, max_tokens: 4,
                                     tool_choice: { type: 'function', function: { name: 'no_such_tool' } } }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'tool_choice');
});
