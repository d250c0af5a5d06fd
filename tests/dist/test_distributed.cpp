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
#include <thread>

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
test::RunResult dsv3(int ranks, const std::string& args) {
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
  auto r = dsv3(1, "logits" + flags + " --out " + base + (mtp ? " --mtp" : ""));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto logits = read_tensor(base, "logits");
  const std::string gen = "generate" + flags + " -n 12 --temperature 0 --ids --ignore-eos";
  auto greedy = dsv3(1, gen);
  ASSERT_EQ(greedy.exit_code, 0) << greedy.err;
  for (int w : worlds) {
    SCOPED_TRACE("W=" + std::to_string(w));
    const std::string out = t / ("w" + std::to_string(w) + ".safetensors");
    r = dsv3(w, "logits" + flags + " --out " + out + (mtp ? " --mtp" : ""));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_LE(test::max_abs_diff(read_tensor(out, "logits"), logits).max_abs, 1e-4);
    if (mtp) EXPECT_LE(test::max_abs_diff(read_tensor(out, "mtp_logits"), read_tensor(base, "mtp_logits")).max_abs, 1e-4);
    r = dsv3(w, gen);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, greedy.out);
    if (mtp) {  // speculative decoding: MTP passes and rolled-back caches on every rank
      r = dsv3(w, gen + " --mtp --draft-policy always");
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(r.out, greedy.out);
    }
  }
}

#define REQUIRE_MPIRUN() \
  if (!mpirun_available()) GTEST_SKIP() << "mpirun not installed (openmpi-bin)"

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
  auto r = dsv3(1, "make-random --config " + test::fixtures() + "/tiny-v3/config.json --out " + t.path() +
                       " --seed 7 --set num_attention_heads=6 --set n_routed_experts=10 --set n_group=2 --set topk_group=1"
                       " --set vocab_size=1003 --set moe_intermediate_size=192 --set intermediate_size=384");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  check_parity(t.path(), /*mtp=*/true, {2, 3, 4});
}

TEST(Distributed, RefusesASplitThatCannotBeDone) {
  REQUIRE_MPIRUN();
  // tiny-v3 has 4 heads: 5 ranks would leave one without.
  auto r = dsv3(5, "logits --model " + test::fixtures() + "/tiny-v3 -t 1 --tokens 1,2 --out /dev/null");
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

}  // namespace
