// dsv3 logits: one forward pass over a token list, logits at every position written to a
// safetensors file (and the MTP module's draft logits with --mtp). Used to check the engine
// against DeepSeek's reference from outside.

#include <memory>

#include "command.h"
#include "common.h"
#include "format/safetensors.h"

namespace dsv3::cli {
namespace {

struct LogitsArgs {
  ModelArgs model;
  std::string tokens;
  std::string out;
  bool mtp = false;
};

int run_logits(const LogitsArgs& a) {
  auto tokens = parse_token_list(a.tokens);
  if (!tokens.ok()) return fail("logits", tokens.error().message());
  if (a.mtp && tokens->size() < 2) return fail("logits", "--mtp needs at least 2 tokens");
  auto model = load_model(a.model, a.mtp);
  if (!model.ok()) return fail("logits", model.error().message());
  const Model& m = **model;
  const int64_t n = static_cast<int64_t>(tokens->size()), V = m.vocab_size();

  KVCache cache = m.new_cache();
  SequenceInput in{&cache, *tokens, Logits::All};
  ForwardOutput out;
  if (auto st = m.forward({&in, 1}, &out, /*want_hidden=*/a.mtp); !st.ok()) return fail("logits", st.error().message());

  std::vector<TensorData> tensors;
  tensors.push_back({{"logits", DType::F32, {n, V}}, out.logits.data()});
  std::vector<float> mtp_logits;
  if (a.mtp) {
    // Row j: the MTP draft for token j+2 from hidden state j and the embedding of token j+1.
    mtp_logits.resize(static_cast<size_t>((n - 1) * V));
    KVCache mtp_cache = m.new_mtp_cache();
    auto st = m.mtp_forward(out.hidden.data(), std::span<const int32_t>(*tokens).subspan(1), &mtp_cache,
                            mtp_logits.data());
    if (!st.ok()) return fail("logits", st.error().message());
    tensors.push_back({{"mtp_logits", DType::F32, {n - 1, V}}, mtp_logits.data()});
  }
  if (auto st = write_safetensors_file(a.out, tensors); !st.ok()) return fail("logits", st.error().message());
  return 0;
}

Command add_logits(CLI::App& root) {
  auto args = std::make_shared<LogitsArgs>();
  CLI::App* app = root.add_subcommand("logits", "Write the logits at every position of a token list to a safetensors file");
  add_model_options(app, args->model);
  app->add_option("--tokens", args->tokens, "Comma-separated token ids, e.g. 0,17,923")
      ->required()
      ->check(non_empty("the token list"));
  app->add_option("--out", args->out, "Output safetensors file (tensor 'logits' F32 [n_tokens, vocab])")->required();
  app->add_flag("--mtp", args->mtp, "Also write 'mtp_logits' F32 [n_tokens-1, vocab] from the MTP module");
  return {app, [args] { return run_logits(*args); }};
}

}  // namespace

DSV3_REGISTER_COMMAND("logits", add_logits);

}  // namespace dsv3::cli
