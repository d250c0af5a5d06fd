# Stand-in for the parts of HuggingFace transformers that llama.cpp's converter calls, for a
# DeepSeek-V3-architecture checkpoint: the config as a dict, and the tokenizer's vocabulary
# and added tokens from tokenizer.json / tokenizer_config.json. Not a tokenizer: encode/decode
# only round-trip added tokens (the converter's normalization check); the pre-tokenizer name
# is given to the converter directly (deepseek-v3).
import json, os


class _Config:
    def __init__(self, d):
        self._d = d

    def to_dict(self):
        return dict(self._d)


class AutoConfig:
    @staticmethod
    def from_pretrained(path, **kw):
        return _Config(json.load(open(os.path.join(path, "config.json"))))


class _Added:
    def __init__(self, t):
        self.content = t["content"]
        self.special = t.get("special", False)
        self.normalized = t.get("normalized", False)


class _Tokenizer:
    def __init__(self, path):
        tj = json.load(open(os.path.join(path, "tokenizer.json")))
        self.vocab = dict(tj["model"]["vocab"])
        self.added_tokens_decoder = {}
        for t in tj.get("added_tokens", []):
            self.vocab[t["content"]] = t["id"]
            self.added_tokens_decoder[t["id"]] = _Added(t)
        self._by_id = {i: s for s, i in self.vocab.items()}
        cfg_path = os.path.join(path, "tokenizer_config.json")
        self.chat_template = json.load(open(cfg_path)).get("chat_template") if os.path.exists(cfg_path) else None

    def get_vocab(self):
        return dict(self.vocab)

    def get_added_vocab(self):
        return {a.content: i for i, a in self.added_tokens_decoder.items()}

    def encode(self, text, add_special_tokens=False, **kw):
        if text in self.vocab:
            return [self.vocab[text]]
        raise NotImplementedError("the stand-in encodes single tokens only")

    def decode(self, ids, **kw):
        return "".join(self._by_id[i] for i in ids)


class AutoTokenizer:
    @staticmethod
    def from_pretrained(path, **kw):
        return _Tokenizer(path)
