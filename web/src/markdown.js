// Model text -> safe HTML. marked parses the markdown; HTML the model writes (blocks or
// inline) is rendered as escaped text, never as markup; DOMPurify then removes anything
// executable that markdown itself can produce (javascript: links, say), as a second guard.
import { Marked } from "marked";
import DOMPurify from "dompurify";

const escapeHtml = (s) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");

const marked = new Marked({
  gfm: true,
  breaks: true,
  renderer: {
    html(token) {
      return escapeHtml(token.text);
    },
  },
});

export function renderMarkdown(text) {
  const html = marked.parse(text, { async: false });
  return DOMPurify.sanitize(html, { FORBID_TAGS: ["style", "form", "input", "button"], FORBID_ATTR: ["style"] });
}
