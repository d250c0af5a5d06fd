// Conversations and settings, kept in the browser's localStorage.
const CONVERSATIONS = "dsv3.conversations";
const CURRENT = "dsv3.current";
const SETTINGS = "dsv3.settings";
const API_KEY = "dsv3.apiKey";

export const defaultSettings = { system: "", temperature: 0.7, top_p: 0.95, max_tokens: 1024 };

function read(key, fallback) {
  try {
    const v = localStorage.getItem(key);
    return v === null ? fallback : JSON.parse(v);
  } catch {
    return fallback;  // a value another page version wrote, or storage turned off
  }
}

function write(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch (e) {
    console.warn("could not save to localStorage:", e.message);
  }
}

export const loadConversations = () => read(CONVERSATIONS, []);
export const saveConversations = (list) => write(CONVERSATIONS, list);
export const loadCurrentId = () => read(CURRENT, null);
export const saveCurrentId = (id) => write(CURRENT, id);
export const loadSettings = () => ({ ...defaultSettings, ...read(SETTINGS, {}) });
export const saveSettings = (s) => write(SETTINGS, s);
export const loadApiKey = () => read(API_KEY, "");
export const saveApiKey = (k) => write(API_KEY, k);

export function newConversation() {
  return { id: `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`, title: "New chat", messages: [], updated: Date.now() };
}
