// Structured output as clients ask for it: response_format json_schema and json_object against
// dsv3 serve on the random-weight model (run.sh), every output checked by an independent
// validator (ajv, pinned in package.json) against the schema the request sent. The random
// weights pick among the tokens the mask allows with no preference for valid JSON, so each
// output is a fresh walk through the grammar. DSV3_JSON_SAMPLES outputs per format (default 10;
// `make test-json-100` runs 100).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Ajv from 'ajv';

// Retries: node runs the test files side by side, and n = 10 choices next to the other files'
// requests can fill the server's queue (429 with Retry-After), which a client retries.
const client = new OpenAI({ baseURL: `${process.env.DSV3_URL}/v1`, apiKey: process.env.DSV3_API_KEY, maxRetries: 5,
                            timeout: 300_000 });
const samples = Number(process.env.DSV3_JSON_SAMPLES || 10);
const perRequest = Math.min(samples, 10);  // n choices per request, generated as one batch

// Objects, nesting, arrays with bounds, enums, const, anyOf, a $ref, optional and required
// properties, every scalar type.
const personSchema = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 40 },
    age: { type: 'integer' },
    height: { type: 'number' },
    member: { type: 'boolean' },
    nickname: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'null' }] },
    role: { enum: ['admin', 'user', 'guest'] },
    version: { const: 2 },
    tags: { type: 'array', items: { type: 'string', maxLength: 12 }, minItems: 1, maxItems: 3 },
    address: { $ref: '#/$defs/address' },
  },
  required: ['name', 'age', 'member', 'role', 'version', 'tags', 'address'],
  additionalProperties: false,
  $defs: {
    address: {
      type: 'object',
      properties: { city: { type: 'string' }, zip: { type: 'string', minLength: 5, maxLength: 5 } },
      required: ['city'],
      additionalProperties: false,
    },
  },
};

const ajv = new Ajv({ strict: false });

async function modelId() {
  return (await client.models.list()).data[0].id;
}

// `total` outputs for `params`, n at a time, with their finish reasons.
async function outputs(params, total) {
  const all = [];
  for (let seed = 0; all.length < total; seed += 1) {
    const n = Math.min(perRequest, total - all.length);
    const r = await client.chat.completions.create({ ...params, n, seed });
    assert.ok(Array.isArray(r.choices), `no choices: ${JSON.stringify(r)}`);
    for (const c of r.choices) all.push({ text: c.message.content, finish: c.finish_reason });
  }
  return all;
}

test(`json_schema: ${samples} of ${samples} outputs validate against the schema (ajv)`, async () => {
  const validate = ajv.compile(personSchema);
  const model = await modelId();
  const got = await outputs({
    model, messages: [{ role: 'user', content: 'Describe a person.' }], max_tokens: 256, temperature: 1,
    response_format: { type: 'json_schema', json_schema: { name: 'person', schema: personSchema, strict: true } },
  }, samples);
  let valid = 0;
  for (const { text, finish } of got) {
    let value;
    try { value = JSON.parse(text); } catch (e) { assert.fail(`not JSON (${e.message}): ${text}`); }
    assert.ok(validate(value), `${ajv.errorsText(validate.errors)}: ${text}`);
    assert.equal(finish, 'stop', 'the value completes within max_tokens and ends the output');
    valid += 1;
  }
  assert.equal(valid, samples);
});

test(`json_object: ${samples} of ${samples} outputs are JSON objects`, async () => {
  const model = await modelId();
  const got = await outputs({
    model, messages: [{ role: 'user', content: 'Answer in JSON.' }], max_tokens: 96, temperature: 1,
    response_format: { type: 'json_object' },
  }, samples);
  for (const { text, finish } of got) {
    let value;
    try { value = JSON.parse(text); } catch (e) { assert.fail(`not JSON (${e.message}): ${text}`); }
    assert.ok(value !== null && typeof value === 'object' && !Array.isArray(value), text);
    assert.equal(finish, 'stop');
  }
});

test('client.chat.completions.parse returns the parsed value; the stream reassembles to the same text', async () => {
  const schema = { type: 'object', properties: { answer: { type: 'string', maxLength: 20 }, score: { type: 'number' } },
                   required: ['answer', 'score'], additionalProperties: false };
  const params = { model: await modelId(), messages: [{ role: 'user', content: 'Rate it.' }], max_tokens: 64,
                   temperature: 0, response_format: { type: 'json_schema', json_schema: { name: 'rating', schema,
                                                                                          strict: true } } };
  const parsed = await client.chat.completions.parse(params);
  const message = parsed.choices[0].message;
  assert.ok(ajv.validate(schema, message.parsed), message.content);
  assert.deepEqual(message.parsed, JSON.parse(message.content));

  const stream = await client.chat.completions.create({ ...params, stream: true });
  let text = '';
  let pieces = 0;
  for await (const chunk of stream) {
    for (const c of chunk.choices) if (c.delta?.content) { text += c.delta.content; pieces += 1; }
  }
  assert.ok(pieces >= 2, 'streamed as it is generated');
  assert.equal(text, message.content, 'greedy: the same output streamed or not');
});

test('a schema the matcher cannot enforce is a 400 naming the keyword and its path', async () => {
  const model = await modelId();
  const bad = { type: 'object', properties: { age: { type: 'integer', minimum: 0 } } };
  await assert.rejects(
    client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], max_tokens: 4,
                                     response_format: { type: 'json_schema', json_schema: { name: 'b', schema: bad } } }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'response_format' &&
      e.message.includes("response_format.json_schema.schema.properties.age: unsupported keyword 'minimum'"));
  await assert.rejects(
    client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], max_tokens: 4,
                                     response_format: { type: 'yaml' } }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'response_format');
});
