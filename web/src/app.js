// The chat page: conversations, streaming answers, stop, regenerate, edit, settings.
import { renderMarkdown } from "./markdown.js";
import { ApiError, listModels, streamChat } from "./api.js";
import * as store from "./store.js";

const $ = (id) => document.getElementById(id);

const state = {
  conversations: store.loadConversations(),
  current: null,
  settings: store.loadSettings(),
  apiKey: store.loadApiKey(),
  model: null,
  controller: null,  // the AbortController of the answer being streamed
};

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function currentConversation() {
  return state.conversations.find((c) => c.id === state.current);
}

function save() {
  store.saveConversations(state.conversations);
  store.saveCurrentId(state.current);
}

function showStatus(message) {
  $("status").textContent = message;
  $("status").hidden = !message;
}

// ---- conversations list ----

function renderConversationList() {
  const list = $("conversations");
  list.replaceChildren();
  for (const c of [...state.conversations].sort((a, b) => b.updated - a.updated)) {
    const li = el("li", c.id === state.current ? "current" : "");
    const title = el("span", "", c.title);
    title.addEventListener("click", () => selectConversation(c.id));
    const del = el("button", "", "×");
    del.title = "Delete";
    del.addEventListener("click", () => deleteConversation(c.id));
    li.append(title, del);
    list.append(li);
  }
}

function selectConversation(id) {
  if (state.controller) return;
  state.current = id;
  save();
  renderConversationList();
  renderMessages();
}

function startNewConversation() {
  if (state.controller) stop();
  const c = store.newConversation();
  state.conversations.push(c);
  state.current = c.id;
  save();
  renderConversationList();
  renderMessages();
  $("input").focus();
}

function deleteConversation(id) {
  if (state.controller) return;
  state.conversations = state.conversations.filter((c) => c.id !== id);
  if (state.current === id) state.current = state.conversations[0]?.id ?? null;
  if (!state.current) return startNewConversation();
  save();
  renderConversationList();
  renderMessages();
}

// ---- messages ----

function fillAssistant(node, m) {
  node.replaceChildren();
  if (m.reasoning) {
    const details = el("details", "reasoning");
    details.open = !m.content;  // open while the model thinks, folded once it answers
    details.append(el("summary", "", "Reasoning"), el("div", "reasoning-text", m.reasoning));
    node.append(details);
  }
  const content = el("div", "content");
  content.innerHTML = renderMarkdown(m.content || "");
  node.append(content);
}

function statsText(s) {
  const parts = [];
  if (s.tokens !== undefined) parts.push(`${s.tokens} tokens`);
  if (s.tokensPerSecond !== undefined) parts.push(`${s.tokensPerSecond.toFixed(1)} tok/s`);
  if (s.stopped) parts.push("stopped");
  if (s.error) parts.push(`error: ${s.error}`);
  return parts.join(" · ");
}

function renderMessages() {
  const box = $("messages");
  box.replaceChildren();
  const conv = currentConversation();
  if (!conv) return;
  const lastUser = conv.messages.findLastIndex((m) => m.role === "user");
  conv.messages.forEach((m, i) => {
    const node = el("div", `message ${m.role}`);
    if (m.role === "user") {
      node.textContent = m.content;
      if (i === lastUser && !state.controller) {
        const meta = el("div", "meta");
        const edit = el("button", "edit", "Edit");
        edit.addEventListener("click", () => editLastUser(node, i));
        meta.append(edit);
        node.append(meta);
      }
    } else {
      const body = el("div", "body");
      fillAssistant(body, m);
      node.append(body);
      const meta = el("div", "meta");
      if (m.stats) meta.append(el("span", "stats", statsText(m.stats)));
      if (i === conv.messages.length - 1 && !state.controller) {
        const regen = el("button", "regenerate", "Regenerate");
        regen.addEventListener("click", regenerate);
        meta.append(regen);
      }
      node.append(meta);
    }
    box.append(node);
  });
  box.scrollTop = box.scrollHeight;
}

function editLastUser(node, index) {
  const conv = currentConversation();
  const box = el("textarea", "edit-box");
  box.value = conv.messages[index].content;
  box.rows = 4;
  const saveButton = el("button", "", "Send");
  const cancel = el("button", "", "Cancel");
  const meta = el("div", "meta");
  meta.append(saveButton, cancel);
  node.replaceChildren(box, meta);
  box.focus();
  cancel.addEventListener("click", renderMessages);
  saveButton.addEventListener("click", () => {
    const text = box.value.trim();
    if (!text) return;
    conv.messages = conv.messages.slice(0, index);
    send(text);
  });
}

function regenerate() {
  const conv = currentConversation();
  if (state.controller || conv.messages.at(-1)?.role !== "assistant") return;
  conv.messages.pop();
  answer(conv);
}

// ---- sending ----

function send(text) {
  const conv = currentConversation();
  conv.messages.push({ role: "user", content: text });
  if (conv.title === "New chat") conv.title = text.slice(0, 40);
  answer(conv);
}

function requestMessages(conv) {
  const messages = [];
  if (state.settings.system.trim()) messages.push({ role: "system", content: state.settings.system });
  // Reasoning is not sent back: DeepSeek's template drops earlier turns' thinking anyway.
  for (const m of conv.messages) messages.push({ role: m.role, content: m.content });
  return messages;
}

function setStreaming(on) {
  $("send").hidden = on;
  $("stop").hidden = !on;
}

async function answer(conv) {
  showStatus("");
  const reply = { role: "assistant", content: "", reasoning: "" };
  const body = {
    model: state.model ?? undefined,
    messages: requestMessages(conv),
    temperature: Number(state.settings.temperature),
    top_p: Number(state.settings.top_p),
    max_tokens: Number(state.settings.max_tokens) || undefined,
  };
  conv.messages.push(reply);
  conv.updated = Date.now();
  state.controller = new AbortController();
  setStreaming(true);
  save();
  renderConversationList();
  renderMessages();
  const node = $("messages").lastElementChild.querySelector(".body");
  let first = null;
  let deltas = 0;
  let pending = false;
  const paint = () => {
    pending = false;
    fillAssistant(node, reply);
    $("messages").scrollTop = $("messages").scrollHeight;
  };
  const started = performance.now();
  try {
    const { usage } = await streamChat({
      apiKey: state.apiKey,
      body,
      signal: state.controller.signal,
      onDelta: ({ content, reasoning }) => {
        first ??= performance.now();
        deltas += 1;
        reply.content += content;
        reply.reasoning += reasoning;
        if (!pending) {
          pending = true;
          requestAnimationFrame(paint);
        }
      },
    });
    const tokens = usage?.completion_tokens ?? deltas;
    // Decoding speed: tokens after the first over the time since the first arrived.
    const seconds = (performance.now() - (first ?? started)) / 1000;
    reply.stats = { tokens };
    // An answer that arrived all at once (one chunk) has no measurable speed.
    if (tokens > 1 && seconds > 0.001) reply.stats.tokensPerSecond = (tokens - 1) / seconds;
  } catch (e) {
    if (e.name === "AbortError") {
      reply.stats = { tokens: deltas, stopped: true };
    } else {
      reply.stats = { error: e.message };
      if (e instanceof ApiError && e.status === 401) askForKey("the key was refused");
      else showStatus(e.message);
    }
  } finally {
    state.controller = null;
    setStreaming(false);
    conv.updated = Date.now();
    save();
    renderMessages();
  }
}

function stop() {
  state.controller?.abort();
}

// ---- settings and the API key ----

function bindSettings() {
  const fields = { system: "set-system", temperature: "set-temperature", top_p: "set-top-p", max_tokens: "set-max-tokens" };
  for (const [key, id] of Object.entries(fields)) {
    $(id).value = state.settings[key];
    $(id).addEventListener("change", () => {
      state.settings[key] = key === "system" ? $(id).value : Number($(id).value);
      store.saveSettings(state.settings);
    });
  }
  $("set-api-key").value = state.apiKey;
  $("set-api-key").addEventListener("change", () => useKey($("set-api-key").value.trim()));
}

function askForKey(why) {
  $("key-prompt").hidden = false;
  $("key-error").textContent = why ?? "";
  $("key-input").focus();
}

async function useKey(key) {
  state.apiKey = key;
  store.saveApiKey(key);
  $("set-api-key").value = key;
  await connect();
}

// Finds the served model; a 401 means the server has a key we lack.
async function connect() {
  try {
    const models = await listModels(state.apiKey);
    state.model = models[0] ?? null;
    $("model-name").textContent = state.model ? `model: ${state.model}` : "";
    $("key-prompt").hidden = true;
    showStatus("");
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) askForKey(state.apiKey ? "the key was refused" : "");
    else showStatus(`cannot reach the server: ${e.message}`);
  }
}

function init() {
  if (!currentConversation()) {
    state.current = store.loadCurrentId();
    if (!currentConversation()) state.current = state.conversations.at(-1)?.id ?? null;
  }
  if (!state.current) startNewConversation();
  renderConversationList();
  renderMessages();
  bindSettings();
  $("new-chat").addEventListener("click", startNewConversation);
  $("stop").addEventListener("click", stop);
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("input").value.trim();
    if (!text || state.controller) return;
    $("input").value = "";
    send(text);
  });
  $("input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    useKey($("key-input").value.trim());
  });
  connect();
}

init();
