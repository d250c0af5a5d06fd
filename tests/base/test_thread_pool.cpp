#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "base/thread_pool.h"

using namespace dsv3;

TEST(ThreadPool, EveryTaskRunsExactlyOnce) {
  for (bool ranges : {false, true})
    for (int threads : {1, 2, 3, 8}) {
      ThreadPool pool(threads);
      for (int64_t n : {0, 1, 2, 7, 1000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        auto hit = [&](int64_t t) { hits[t].fetch_add(1); };
        for (int rep = 0; rep < 50; ++rep) ranges ? pool.parallel_for_ranges(n, hit) : pool.parallel_for(n, hit);
        for (int64_t t = 0; t < n; ++t)
          EXPECT_EQ(hits[t].load(), 50) << "ranges=" << ranges << " threads=" << threads << " n=" << n;
      }
    }
}

TEST(ThreadPool, RunOnAllGivesEachThreadItsIndex) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> seen(4);
  pool.run_on_all([&](int i) { seen[i].fetch_add(1); });
  for (auto& s : seen) EXPECT_EQ(s.load(), 1);
}

TEST(ThreadPool, NestedCallsRunSerially) {
  ThreadPool pool(3);
  std::atomic<int> total{0};
  pool.parallel_for(4, [&](int64_t) { pool.parallel_for(5, [&](int64_t) { total.fetch_add(1); }); });
  EXPECT_EQ(total.load(), 20);
}

TEST(ThreadPool, MixedRegionsBackToBack) {
  // Many short regions, shared and ranged in turn, with run_on_all in between: nothing lost,
  // nothing run twice, and no deadlock when workers wake late and find newer jobs.
  ThreadPool pool(3);
  std::atomic<int64_t> sum{0};
  int64_t expected = 0;
  for (int round = 0; round < 3000; ++round) {
    const int64_t n = 1 + round % 19;
    auto add = [&](int64_t t) { sum.fetch_add(t + 1); };
    round % 2 ? pool.parallel_for_ranges(n, add) : pool.parallel_for(n, add);
    expected += n * (n + 1) / 2;
    if (round % 97 == 0) {
      std::atomic<int> seen{0};
      pool.run_on_all([&](int) { seen.fetch_add(1); });
      EXPECT_EQ(seen.load(), 3);
    }
  }
  EXPECT_EQ(sum.load(), expected);
}

TEST(ThreadPool, MoreThreadsThanCoresStillCompletes) {
  // Oversubscribed: 8 threads on whatever this machine has; every region still completes
  // (the caller runs tasks no worker picked up; a hang would hit the test timeout).
  ThreadPool pool(8);
  std::atomic<int64_t> count{0};
  for (int round = 0; round < 500; ++round) pool.parallel_for(4, [&](int64_t) { count.fetch_add(1); });
  EXPECT_EQ(count.load(), 2000);
}

TEST(ThreadPool, RangesRunEachShareFromTheFrontOrTheBack) {
  // Within each thread's share of the tasks, every thread that ran some of them ran either
  // the share's first tasks in order (its owner: begin, begin + 1, ...) or tasks taken from
  // the far end, each before the previous one (a thread whose own share was done; a
  // worker that never woke leaves its whole share to the others that way).
  ThreadPool pool(3);
  constexpr int64_t n = 300;
  for (int rep = 0; rep < 200; ++rep) {
    std::vector<std::thread::id> who(n);
    std::vector<int64_t> when(n);
    std::atomic<int64_t> clock{0};
    pool.parallel_for_ranges(n, [&](int64_t t) {
      who[t] = std::this_thread::get_id();
      when[t] = clock.fetch_add(1);
    });
    for (int share = 0; share < 3; ++share) {
      const int64_t begin = share * n / 3, end = (share + 1) * n / 3;
      std::vector<std::thread::id> threads;
      for (int64_t t = begin; t < end; ++t)
        if (std::find(threads.begin(), threads.end(), who[t]) == threads.end()) threads.push_back(who[t]);
      for (const std::thread::id& id : threads) {
        std::vector<int64_t> ran;  // its tasks of the share, in the order it ran them
        for (int64_t t = begin; t < end; ++t)
          if (who[t] == id) ran.push_back(t);
        std::sort(ran.begin(), ran.end(), [&](int64_t x, int64_t y) { return when[x] < when[y]; });
        bool from_front = true, from_back = true;
        for (size_t i = 0; i < ran.size(); ++i) {
          from_front = from_front && ran[i] == begin + static_cast<int64_t>(i);
          from_back = from_back && (i == 0 || ran[i] < ran[i - 1]);
        }
        EXPECT_TRUE(from_front || from_back) << "share " << share << ": a thread ran " << ran.size() << " tasks from "
                                             << ran.front() << " out of order";
      }
    }
  }
}
