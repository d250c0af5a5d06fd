// dsv3 serve split over two ranks (mpirun -np 2) against one process, both driven by the official
// OpenAI JavaScript client with eight requests at once, half of them streamed: the same tokens,
// and their logprobs within 1e-3. run-mpi.sh starts both servers and passes DSV3_URL (one process)
// and DSV3_MPI_URL (two ranks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const apiKey = process.env.DSV3_API_KEY;
const one = new OpenAI({ baseURL: `${process.env.DSV3_URL}/v1`, apiKey, maxRetries: 0, timeout: 300_000 });
const two = new OpenAI({ baseURL: `${process.env.DSV3_MPI_URL}/v1`, apiKey, maxRetries: 0, timeout: 300_000 });

const topics = ['the ocean', 'a cat', 'prime numbers', 'the moon', 'bread', 'a long journey by train', 'rain', 'music'];
const params = (model, i) => ({
  model, messages: [{ role: 'user', content: `Request ${i}: describe ${topics[i]}` }], max_tokens: 12, temperature: 0,
  logprobs: true,
});

// One request's tokens and logprobs, streamed or not.
async function tokens(client, request, stream) {
  if (!stream) {
    const r = await client.chat.completions.create(request);
    return r.choices[0].logprobs.content.map((t) => [t.token, t.logprob]);
  }
  const out = [];
  for await (const chunk of await client.chat.completions.create({ ...request, stream: true }))
    for (const choice of chunk.choices) for (const t of choice.logprobs?.content ?? []) out.push([t.token, t.logprob]);
  return out;
}

// Eight clients at once (continuous batching), each request twice (the second from the prefix cache).
async function all(client) {
  const model = (await client.models.list()).data[0].id;
  const results = [];
  for (let round = 0; round < 2; round++)
    results.push(...await Promise.all([...topics.keys()].map((i) => tokens(client, params(model, i), i % 2 === 1))));
  return results;
}

test('two ranks answer eight concurrent clients with one process\'s tokens', async () => {
  const [alone, split] = await Promise.all([all(one), all(two)]);
  assert.equal(split.length, alone.length);
  for (let i = 0; i < alone.length; i++) {
    assert.ok(alone[i].length > 0, `request ${i}: no tokens`);
    assert.deepEqual(split[i].map((t) => t[0]), alone[i].map((t) => t[0]), `request ${i}: tokens`);
    for (let k = 0; k < alone[i].length; k++)
      assert.ok(Math.abs(split[i][k][1] - alone[i][k][1]) <= 1e-3, `request ${i}, token ${k}: logprob ${split[i][k][1]} against ${alone[i][k][1]}`);
  }
});
