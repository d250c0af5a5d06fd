// reasoning_content as clients read it: dsv3 serve with an R1-style chat template (run.sh
// starts it on the random-weight model and passes DSV3_R1_URL). The template's generation
// prompt ends in "<think>\n", so everything the model writes before "</think>" is reasoning;
// the random weights never write "</think>", so it all arrives as reasoning_content.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: `${process.env.DSV3_R1_URL}/v1`, apiKey: process.env.DSV3_API_KEY, maxRetries: 0,
                            timeout: 120_000 });

const params = { model: 'x', messages: [{ role: 'user', content: 'Why is the sky blue?' }], max_tokens: 12,
                 temperature: 0 };

test('an R1-style template: the answer is reasoning_content, streamed as delta.reasoning_content', async () => {
  const models = await client.models.list();
  params.model = models.data[0].id;
  const whole = await client.chat.completions.create(params);
  const message = whole.choices[0].message;
  assert.equal(typeof message.reasoning_content, 'string');
  assert.ok(message.reasoning_content.length > 0);
  assert.ok(!message.content);  // no </think> came: no answer yet

  const stream = await client.chat.completions.create({ ...params, stream: true });
  let reasoning = '';
  let content = '';
  let reasoningChunks = 0;
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      if (choice.delta?.reasoning_content) {
        reasoning += choice.delta.reasoning_content;
        reasoningChunks += 1;
      }
      if (choice.delta?.content) content += choice.delta.content;
    }
  }
  assert.ok(reasoningChunks >= 2, 'reasoning arrives as it is generated');
  assert.equal(reasoning, message.reasoning_content);
  assert.equal(content, '');
});
