// Drives a running edgelm server with the official `openai` npm client and prints what it got as
// JSON on stdout; tests/serve/openai_client_test.cpp checks the results against its oracles.
// Usage: node openai_client.mjs CONFIG.json   (NODE_PATH: the folder holding openai and ajv)
//   CONFIG = {"mode": "suite" | "concurrent", "baseURL", "apiKey", "model", ...}
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(process.env.EDGELM_NODE_DEPS + '/');
const OpenAI = require('openai').default ?? require('openai');
const Ajv = require('ajv').default ?? require('ajv');

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const client = new OpenAI({ baseURL: config.baseURL, apiKey: config.apiKey, maxRetries: 0, timeout: 120000 });

async function collectChatStream(params) {
  const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  let role = null;
  for await (const chunk of stream) {
    chunks += 1;
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      if (choice.delta.role) role = choice.delta.role;
      if (choice.delta.content) text += choice.delta.content;
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  return { text, finish, usage, chunks, role };
}

async function collectCompletionStream(params) {
  const stream = await client.completions.create({ ...params, stream: true });
  let text = '';
  let finish = null;
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      text += choice.text;
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  return { text, finish };
}

async function suite() {
  const out = {};
  const models = await client.models.list();
  out.models = models.data.map((m) => m.id);
  out.model = (await client.models.retrieve(config.model)).id;

  const chatParams = { model: config.model, messages: [{ role: 'user', content: 'Tell me a story.' }], max_tokens: 24, temperature: 0 };
  const chat = await client.chat.completions.create(chatParams);
  out.chat = { object: chat.object, text: chat.choices[0].message.content, role: chat.choices[0].message.role,
    finish: chat.choices[0].finish_reason, usage: chat.usage, id: chat.id };
  out.chat_stream = await collectChatStream(chatParams);

  const logprobs = await client.chat.completions.create({ ...chatParams, max_tokens: 4, logprobs: true, top_logprobs: 3 });
  out.chat_logprobs = logprobs.choices[0].logprobs.content.map((c) => ({ token: c.token, logprob: c.logprob, top: c.top_logprobs.length }));

  const completion = await client.completions.create({ model: config.model, prompt: config.completionPrompt, max_tokens: 20, temperature: 0 });
  out.completion = { object: completion.object, text: completion.choices[0].text, finish: completion.choices[0].finish_reason, usage: completion.usage };
  out.completion_stream = await collectCompletionStream({ model: config.model, prompt: config.completionPrompt, max_tokens: 20, temperature: 0 });
  const stopped = await client.completions.create({ model: config.model, prompt: config.completionPrompt, max_tokens: 40, temperature: 0, stop: [config.stopString] });
  out.completion_stop = { text: stopped.choices[0].text, finish: stopped.choices[0].finish_reason };

  const embDefault = await client.embeddings.create({ model: config.model, input: config.embeddingInput });
  const embFloat = await client.embeddings.create({ model: config.model, input: [config.embeddingInput, 'A cat.'], encoding_format: 'float' });
  out.embedding_base64 = Array.from(embDefault.data[0].embedding);
  out.embedding_float = embFloat.data.map((d) => d.embedding);
  out.embedding_usage = embFloat.usage;

  // Structured output: every answer must parse and validate (ajv is the oracle).
  const ajv = new Ajv({ strict: false });
  out.json_schema = [];
  for (const [i, schema] of config.schemas.entries()) {
    for (const seed of config.seeds) {
      const r = await client.chat.completions.create({
        model: config.model, messages: [{ role: 'user', content: 'Give me JSON.' }], temperature: 1.0, seed, max_tokens: 300,
        response_format: { type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } },
      });
      const text = r.choices[0].message.content;
      let parsed = null;
      let valid = false;
      let why = '';
      try {
        parsed = JSON.parse(text);
        valid = ajv.validate(schema, parsed);
        if (!valid) why = ajv.errorsText();
      } catch (e) {
        why = String(e);
      }
      out.json_schema.push({ schema: i, seed, text, finish: r.choices[0].finish_reason, valid, why });
    }
  }
  const jo = await client.chat.completions.create({ model: config.model, messages: [{ role: 'user', content: 'JSON please' }],
    temperature: 0.8, seed: 7, max_tokens: 200, response_format: { type: 'json_object' } });
  out.json_object = { text: jo.choices[0].message.content, finish: jo.choices[0].finish_reason };

  const wrong = new OpenAI({ baseURL: config.baseURL, apiKey: 'sk-wrong-key-0123456789abcdef', maxRetries: 0 });
  try {
    await wrong.chat.completions.create(chatParams);
    out.wrong_key = { error: null };
  } catch (e) {
    out.wrong_key = { auth_error: e instanceof OpenAI.AuthenticationError, status: e.status, code: e.code ?? null, type: e.type ?? null };
  }
  try {
    await client.chat.completions.create({ ...chatParams, model: 'no-such-model' });
    out.unknown_model = { error: null };
  } catch (e) {
    out.unknown_model = { not_found: e instanceof OpenAI.NotFoundError, status: e.status, code: e.code ?? null };
  }
  return out;
}

// Many streaming completions at once; prompts are token-id arrays.
async function concurrent() {
  const jobs = config.prompts.map((prompt) =>
    collectCompletionStream({ model: config.model, prompt, max_tokens: config.maxTokens, temperature: 0 }).catch((e) => ({ error: String(e) })));
  const chat = (content) =>
    collectChatStream({ model: config.model, messages: [{ role: 'user', content }], max_tokens: config.maxTokens, temperature: 0 }).catch((e) => ({ error: String(e) }));
  if (config.sequential) {  // one request at a time: nothing else is batched with it
    const chats = [];
    for (const content of config.chatPrompts ?? []) chats.push(await chat(content));
    return { completions: await Promise.all(jobs), chats };
  }
  return { completions: await Promise.all(jobs), chats: await Promise.all((config.chatPrompts ?? []).map(chat)) };
}

const modes = { suite, concurrent };
modes[config.mode]().then(
  (out) => process.stdout.write(JSON.stringify(out)),
  (e) => {
    process.stderr.write(`openai_client.mjs: ${e?.stack ?? e}\n`);
    process.exit(1);
  },
);
