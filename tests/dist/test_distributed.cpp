// The model split across W ranks (mpirun -np W, one thread each) against one process: logits
// at every position within 1e-4, greedy tokens identical (with and without MTP drafting), MTP
// logits too; on the tiny fixtures (V3: q LoRA, groups, sigmoid router, MTP, FP8; V2: softmax
// router, BF16) and on a random V3 whose sizes split unevenly (heads, experts, vocabulary and
// FFN columns, FP8 slices on and off block boundaries). Then the faults: a rank killed
// mid-generation, ranks with different checkpoints, a rank missing a file.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "format/safetensors.h"
#include "model/golden.h"
#include "test_util.h"

using namespace dsv3;

namespace {

// mpirun as CI runs it: as root, more ranks than the 2 cores, TCP between ranks (the transport
// across machines; shared memory is not always usable in containers).
std::string mpirun(int ranks) {
  return "mpirun --oversubscribe --allow-run-as-root --bind-to none --mca btl tcp,self -np " + std::to_string(ranks) + " ";
}

test::RunResult run_shell(const std::string& cmd) {
  test::TempDir t;
  const std::string out = t / "out", err = t / "err";
  const int status = std::system((cmd + " </dev/null >" + out + " 2>" + err).c_str());
  test::RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = test::read_file(out);
  r.err = test::read_file(err);
  return r;
}

// `dsv3 <args>` in one process (ranks 1) or under mpirun.
test::RunResult run_dsv3_ranks(int ranks, const std::string& args) {
  return run_shell((ranks > 1 ? mpirun(ranks) : std::string()) + DSV3_BIN + " " + args);
}

std::vector<float> read_tensor(const std::string& file, const std::string& name) {
  auto st = SafetensorsFile::open(file);
  EXPECT_TRUE(st.ok()) << file;
  if (!st.ok()) return {};
  const TensorInfo* t = (*st)->find(name);
  EXPECT_NE(t, nullptr) << name;
  if (!t) return {};
  std::vector<float> v(t->numel());
  std::memcpy(v.data(), (*st)->data(*t), v.size() * 4);
  return v;
}

bool mpirun_available() { return std::system("mpirun --version >/dev/null 2>&1") == 0; }

void check_parity(const std::string& dir, bool mtp, const std::vector<int>& worlds) {
  const std::string tokens = "1,17,923,5,77,300,2,41,8,600";
  test::TempDir t;
  const std::string base = t / "base.safetensors";
  const std::string flags = " --model " + dir + " -t 1 --tokens " + tokens;
  auto r = run_dsv3_ranks(1, "logits" + flags + " --out " + base + (mtp ? " --mtp" : ""));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto logits = read_tensor(base, "logits");
  const std::string gen = "generate" + flags + " -n 12 --temperature 0 --ids --ignore-eos";
  auto greedy = run_dsv3_ranks(1, gen);
  ASSERT_EQ(greedy.exit_code, 0) << greedy.err;
  for (int w : worlds) {
    SCOPED_TRACE("W=" + std::to_string(w));
    const std::string out = t / (std::string("w") + std::to_string(w) + ".safetensors");
    r = run_dsv3_ranks(w, "logits" + flags + " --out " + out + (mtp ? " --mtp" : ""));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_LE(test::max_abs_diff(read_tensor(out, "logits"), logits).max_abs, 1e-4);
    if (mtp) {
      EXPECT_LE(test::max_abs_diff(read_tensor(out, "mtp_logits"), read_tensor(base, "mtp_logits")).max_abs, 1e-4);
    }
    r = run_dsv3_ranks(w, gen);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, greedy.out);
    if (mtp) {  // speculative decoding: MTP passes and rolled-back caches on every rank
      r = run_dsv3_ranks(w, gen + " --mtp --draft-policy always");
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(r.out, greedy.out);
    }
  }
}

#define REQUIRE_MPIRUN()   \
  do {                                                                          \
    if (!mpirun_available()) GTEST_SKIP() << "mpirun not installed (openmpi-bin)"; \
  } while (0)

TEST(Distributed, TinyV3MatchesOneProcess) {
  REQUIRE_MPIRUN();
  check_parity(test::fixtures() + "/tiny-v3", /*mtp=*/true, {2, 3, 4});
}

TEST(Distributed, TinyV2MatchesOneProcess) {
  REQUIRE_MPIRUN();
  check_parity(test::fixtures() + "/tiny-v2", /*mtp=*/false, {2, 3, 4});
}

// Sizes that split unevenly over 3 and 4 ranks: 6 heads, 10 experts, a vocabulary of 1003,
// shared-expert columns (192) narrower than W FP8 blocks (slices off block boundaries,
// dequantized) and dense columns (384) in whole blocks.
TEST(Distributed, UnevenRandomV3MatchesOneProcess) {
  REQUIRE_MPIRUN();
  test::TempDir t;
  auto r = run_dsv3_ranks(1, "make-random --config " + test::fixtures() + "/tiny-v3/config.json --out " + t.path() +
                       " --seed 7 --set num_attention_heads=6 --set n_routed_experts=10 --set n_group=2 --set topk_group=1"
                       " --set vocab_size=1003 --set moe_intermediate_size=192 --set intermediate_size=384");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  check_parity(t.path(), /*mtp=*/true, {2, 3, 4});
}

TEST(Distributed, RefusesASplitThatCannotBeDone) {
  REQUIRE_MPIRUN();
  // tiny-v3 has 4 heads: 5 ranks would leave one without.
  auto r = run_dsv3_ranks(5, "logits --model " + test::fixtures() + "/tiny-v3 -t 1 --tokens 1,2 --out /dev/null");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("num_attention_heads is 4, which cannot be split over 5 ranks"), std::string::npos) << r.err;
}

// The pid of the dsv3 process of `rank` whose command line holds `marker` (Open MPI puts the
// rank in each process's environment), 0 until it exists.
pid_t find_rank(const std::string& marker, int rank) {
  const std::string want = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank) + std::string(1, '\0');
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string cmdline = test::read_file(entry.path().string() + "/cmdline");
    if (cmdline.find("dsv3") == std::string::npos || cmdline.find(marker) == std::string::npos) continue;
    if (test::read_file(entry.path().string() + "/environ").find(want) == std::string::npos) continue;
    return static_cast<pid_t>(std::stol(name));
  }
  return 0;
}

TEST(Distributed, AKilledRankEndsTheJobNamingIt) {
  REQUIRE_MPIRUN();
  test::TempDir t;
  const std::string err = t / "err";
  const std::string cmd = mpirun(2) + DSV3_BIN + " generate --model " + test::fixtures() +
                          "/tiny-v3 -t 1 --tokens 1,2,3,4,5,6,7 -n 100000 --ignore-eos --temperature 0 --ids";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::freopen("/dev/null", "w", stdout);
    std::freopen(err.c_str(), "w", stderr);
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until rank 1 is running and generation is under way, then SIGKILL it.
  pid_t rank1 = 0;
  for (int i = 0; i < 200 && !rank1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    rank1 = find_rank("1,2,3,4,5,6,7", 1);
  }
  ASSERT_NE(rank1, 0) << "rank 1 never started";
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ASSERT_EQ(kill(rank1, SIGKILL), 0);
  const auto killed = std::chrono::steady_clock::now();
  int status = 0;
  pid_t done = 0;
  while ((done = waitpid(pid, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() - killed < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (done == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "the job still ran 60 s after rank 1 was killed";
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  EXPECT_LT(seconds, 30.0);
  EXPECT_TRUE(!WIFEXITED(status) || WEXITSTATUS(status) != 0);
  const std::string text = test::read_file(err);
  EXPECT_NE(text.find("rank 1"), std::string::npos) << text;
}

// Two "machines": rank 0 and rank 1 each find `model` in their own working directory.
TEST(Distributed, RanksWithDifferentCheckpointsRefuseNamingTheRank) {
  REQUIRE_MPIRUN();
  test::TempDir a, b;
  const std::string tiny = test::fixtures() + "/tiny-v3";
  std::filesystem::copy(tiny, a / "model");
  std::filesystem::copy(tiny, b / "model");
  // Rank 1's config.json differs (a different context limit, same shapes).
  std::string config = test::read_file(b / "model/config.json");
  const size_t at = config.find("\"max_position_embeddings\"");
  ASSERT_NE(at, std::string::npos);
  config.insert(config.find(':', at) + 1, " 1");
  test::write_file(b / "model/config.json", config);
  const std::string args = " -t 1 --tokens 1,2 --out /dev/null";
  const std::string common = "mpirun --oversubscribe --allow-run-as-root --bind-to none --mca btl tcp,self ";
  auto r = run_shell(common + "-np 1 -wdir " + a.path() + " " + DSV3_BIN + " logits --model model" + args + " : -np 1 -wdir " +
                     b.path() + " " + DSV3_BIN + " logits --model model" + args);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("rank 1: model/config.json differs from rank 0's"), std::string::npos) << r.err;

  // Rank 1 lacks a shard: it says which file.
  std::filesystem::copy_file(a / "model/config.json", b / "model/config.json",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::remove(b / "model/model-00002-of-00002.safetensors");
  r = run_shell(common + "-np 1 -wdir " + a.path() + " " + DSV3_BIN + " logits --model model" + args + " : -np 1 -wdir " +
                b.path() + " " + DSV3_BIN + " logits --model model" + args);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("rank 1: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("model-00002-of-00002.safetensors"), std::string::npos) << r.err;
}

// The shard files `inspect --ranks` lists for each rank (its "  files: a b c" lines).
std::vector<std::vector<std::string>> files_per_rank(const std::string& inspect_out) {
  std::vector<std::vector<std::string>> files;
  std::istringstream lines(inspect_out);
  for (std::string line; std::getline(lines, line);) {
    const std::string tag = "  files:";
    if (line.rfind(tag, 0) != 0) continue;
    std::istringstream names(line.substr(tag.size()));
    files.emplace_back();
    for (std::string f; names >> f;) files.back().push_back(f);
  }
  return files;
}

// "mpirun ... -np 1 dsv3 ARGS --model DIR0 : -np 1 dsv3 ARGS --model DIR1 : ...": each rank
// names its own directory (MPMD), as machines that keep the checkpoint in different places.
std::string mpmd(const std::vector<std::string>& dirs, const std::string& args) {
  std::string cmd = "mpirun --oversubscribe --allow-run-as-root --bind-to none --mca btl tcp,self ";
  for (size_t r = 0; r < dirs.size(); ++r)
    cmd += (r ? " : " : "") + std::string("-np 1 ") + DSV3_BIN + " " + args + " --model " + dirs[r];
  return cmd;
}

// Each rank's directory holds only what `inspect --ranks 2` lists for it, plus config.json and
// the index: the split run reads nothing else, and gives the one process's logits (MTP's too).
TEST(Distributed, EachRankNeedsOnlyTheFilesInspectLists) {
  REQUIRE_MPIRUN();
  test::TempDir t;
  const std::string whole = t / "whole";
  // Small shards, so that other ranks' experts sit in files a rank does not need.
  auto r = run_dsv3_ranks(1, "make-random --config " + test::fixtures() + "/tiny-v3/config.json --out " + whole +
                                 " --seed 3 --shard-size 0.0003");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_dsv3_ranks(1, "inspect --model " + whole + " --ranks 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto files = files_per_rank(r.out);
  ASSERT_EQ(files.size(), 2u) << r.out;
  size_t shards = 0;
  for (const auto& e : std::filesystem::directory_iterator(whole)) shards += e.path().extension() == ".safetensors";
  std::vector<std::string> dirs;
  for (int rank = 0; rank < 2; ++rank) {
    SCOPED_TRACE("rank " + std::to_string(rank));
    EXPECT_GT(files[rank].size(), 0u);
    EXPECT_LT(files[rank].size(), shards) << "every shard is needed: the test shows nothing";
    const std::string dir = t / ("rank" + std::to_string(rank));
    std::filesystem::create_directory(dir);
    for (const std::string f : {"config.json", "model.safetensors.index.json"})
      std::filesystem::copy_file(whole + "/" + f, dir + "/" + f);
    for (const std::string& f : files[rank]) std::filesystem::copy_file(whole + "/" + f, dir + "/" + f);
    dirs.push_back(dir);
  }
  const std::string args = "logits -t 1 --mtp --tokens 1,17,923,5,77,300,2,41";
  r = run_shell(std::string(DSV3_BIN) + " " + args + " --model " + whole + " --out " + (t / "one.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_shell(mpmd(dirs, args + " --out " + (t / "two.safetensors")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* name : {"logits", "mtp_logits"})
    EXPECT_LE(test::max_abs_diff(read_tensor(t / "two.safetensors", name), read_tensor(t / "one.safetensors", name)).max_abs,
              1e-4)
        << name;

  // A rank without one of its files stops the run, naming the rank and the file.
  const std::string lost = files[1].back();
  std::filesystem::remove(dirs[1] + "/" + lost);
  r = run_shell(mpmd(dirs, args + " --out /dev/null"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("rank 1: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(lost), std::string::npos) << r.err;
}

// --kernels and --math on rank 0's command line, DSV3_AMX in rank 0's environment only: every
// rank runs them (each rank's load line says what it runs).
TEST(Distributed, FollowersRunRankZerosKernelChoices) {
  REQUIRE_MPIRUN();
  const std::string tiny = test::fixtures() + "/tiny-v3";
  // bf16 math where this CPU has it (AVX512-BF16), else only the path and AMX are checked.
  const bool bf16 = run_dsv3_ranks(1, "logits --model " + tiny + " -t 1 --math bf16 --tokens 1,2 --out /dev/null").exit_code == 0;
  const std::string args = "logits -t 1 --tokens 1,2,3 --out /dev/null --kernels scalar" + std::string(bf16 ? " --math bf16" : "");
  auto r = run_shell("DSV3_LOG=info mpirun --oversubscribe --allow-run-as-root --bind-to none --mca btl tcp,self -np 1 env "
                     "DSV3_AMX=emulated " + std::string(DSV3_BIN) + " " + args + " --model " + tiny + " : -np 1 " +
                     DSV3_BIN + " logits --model " + tiny);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string want = std::string("kernels scalar, math ") + (bf16 ? "bf16" : "exact") + ", AMX emulated";
  for (int rank = 0; rank < 2; ++rank) {
    const std::string tag = "rank " + std::to_string(rank) + " of 2:";
    const size_t at = r.err.find(tag);
    ASSERT_NE(at, std::string::npos) << r.err;
    const std::string line = r.err.substr(at, r.err.find('\n', at) - at);
    EXPECT_NE(line.find(want), std::string::npos) << line;
  }
}

// bench across ranks: each rank's decode split into compute and communication, counted over
// the decode alone. The other ranks wait in a collective while rank 0 measures the bandwidth
// probe around each run; that wait once counted as their communication, which then exceeded
// the whole decode (compute came out negative). The probe here is large next to the tiny
// model's decode, so that such a wait would show several times over.
TEST(Distributed, BenchSplitsEachRanksDecodeIntoComputeAndCommunication) {
  REQUIRE_MPIRUN();
  auto r = run_dsv3_ranks(2, "bench --model " + test::fixtures() + "/tiny-v3 -t 1 -p 4 -n 64 --repeat 1 --probe-gb 0.1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  const double step = 1.0 / j["decode_tokens_per_s"]["median"].get<double>();  // one run: its own step
  ASSERT_EQ(j["ranks"].size(), 2u) << r.out;
  for (const auto& rank : j["ranks"]) {
    const double compute = rank["compute_seconds_per_token"].get<double>();
    const double comm = rank["comm_seconds_per_token"].get<double>();
    EXPECT_NEAR(compute + comm, step, 1e-9 + 1e-6 * step) << rank.dump();
    // Within the decode, give or take the counters' own collective (scheduling on 2 cores).
    EXPECT_GE(comm, 0) << rank.dump();
    EXPECT_LE(comm, 1.25 * step) << rank.dump();
    EXPECT_GE(compute, -0.25 * step) << rank.dump();
    EXPECT_GT(rank["collectives_per_token"].get<double>(), 0) << rank.dump();
  }
}

// A rank whose executable differs (here: one more byte at its end, which still runs) refuses at
// start, before any model is read, naming the rank and both builds.
TEST(Distributed, RanksOfDifferentBuildsRefuseAtStart) {
  REQUIRE_MPIRUN();
  test::TempDir t;
  const std::string other = t / "dsv3";
  std::filesystem::copy_file(DSV3_BIN, other);
  std::filesystem::permissions(other, std::filesystem::perms::owner_all);
  std::ofstream(other, std::ios::app | std::ios::binary) << '\0';
  const std::string args = " logits --model " + test::fixtures() + "/tiny-v3 -t 1 --tokens 1,2 --out /dev/null";
  const std::string common = "mpirun --oversubscribe --allow-run-as-root --bind-to none --mca btl tcp,self ";
  auto r = run_shell(common + "-np 1 " + DSV3_BIN + args + " : -np 1 " + other + args);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("rank 1 (on "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("runs a different dsv3 build than rank 0"), std::string::npos) << r.err;
  // The same executable everywhere passes the check.
  r = run_shell(common + "-np 2 " + other + args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace

namespace {

// A server started in the background (`launcher` empty: one process), stopped on destruction.
class Server {
 public:
  Server(const std::string& launcher, const std::string& args, const std::string& log) {
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      std::freopen("/dev/null", "w", stdout);
      std::freopen(log.c_str(), "w", stderr);
      const std::string cmd = "exec " + launcher + DSV3_BIN + " " + args;
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 600 && port_ == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      const std::string text = test::read_file(log);
      const size_t at = text.find("http://127.0.0.1:");
      if (at != std::string::npos && text.find("ready:") != std::string::npos)
        port_ = std::stoi(text.substr(at + std::strlen("http://127.0.0.1:")));
    }
  }
  ~Server() {
    kill(-pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  int port() const { return port_; }

 private:
  pid_t pid_ = 0;
  int port_ = 0;
};

// Each prompt's completion, all sent at once (8 clients), then all again (prefix cache hits).
std::vector<std::string> complete_all(int port, const std::vector<std::string>& prompts) {
  std::vector<std::string> texts(prompts.size() * 2);
  for (int round = 0; round < 2; ++round) {
    std::vector<std::thread> clients;
    for (size_t i = 0; i < prompts.size(); ++i)
      clients.emplace_back([&, i, round] {
        httplib::Client client("127.0.0.1", port);
        client.set_read_timeout(300);
        const std::string body = R"({"model":"model","prompt":")" + prompts[i] +
                                 R"(","max_tokens":12,"temperature":0,"ignore_eos":true})";
        auto res = client.Post("/v1/completions", body, "application/json");
        std::string& text = texts[round * prompts.size() + i];
        if (!res) {
          text = "<no response>";
          return;
        }
        const auto json = nlohmann::json::parse(res->body, nullptr, false);
        text = std::to_string(res->status) + " " +
               (json.contains("choices") ? json["choices"][0].value("text", "<no text>") : res->body);
      });
    for (auto& c : clients) c.join();
  }
  return texts;
}

}  // namespace

// The server under mpirun -np 2 answers 8 concurrent clients with one process's tokens
// (continuous batching, chunked prefill and the prefix cache on every rank).
TEST(Distributed, ServerAnswersAsOneProcess) {
  REQUIRE_MPIRUN();
  test::TempDir t;
  auto r = run_dsv3_ranks(1, "make-random --config " + std::string(DSV3_SOURCE_DIR) + "/tests/data/small-chat-config.json --out " +
                       (t / "model") + " --seed 7 --tokenizer " + test::v3_tokenizer_dir());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> prompts = {"The cat",        "Once upon a time", "1 2 3 4",     "Hello, world",
                                            "A long prompt that is cut into chunks by the step budget", "x", "Why", "The dog"};
  const std::string args = "serve --model " + (t / "model") +
                           " --port 0 --ctx 512 -t 1 --max-step-tokens 16 --prefix-cache-mb 16";
  std::vector<std::string> one, two;
  {
    Server s("", args, t / "one.log");
    ASSERT_NE(s.port(), 0) << test::read_file(t / "one.log");
    one = complete_all(s.port(), prompts);
  }
  {
    Server s(mpirun(2), args, t / "two.log");
    ASSERT_NE(s.port(), 0) << test::read_file(t / "two.log");
    two = complete_all(s.port(), prompts);
    // The second round started from cached prefixes: copies of caches on rank 1 too.
    auto metrics = httplib::Client("127.0.0.1", s.port()).Get("/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_EQ(metrics->body.find("dsv3_prefix_cache_hits_total 0\n"), std::string::npos) << metrics->body;
  }
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_EQ(one[i].substr(0, 4), "200 ") << one[i];
    EXPECT_EQ(two[i], one[i]) << "request " << i;
  }
}

TEST(Distributed, InspectRanksListsEachRanksShare) {
  auto r = run_dsv3_ranks(1, "inspect --model " + test::fixtures() + "/tiny-v3 --ranks 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("split over 2 ranks"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("heads [0, 2), experts [0, 8), vocabulary [0, 512)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("heads [2, 4), experts [8, 16), vocabulary [512, 1024)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("files: model-00001-of-00002.safetensors model-00002-of-00002.safetensors"), std::string::npos);
  r = run_dsv3_ranks(1, "inspect --model " + test::fixtures() + "/tiny-v3 --ranks 5");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("num_attention_heads is 4, which cannot be split over 5 ranks"), std::string::npos) << r.err;
}
