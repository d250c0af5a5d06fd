// Progress text: sizes, percentage, rate and ETA; plain-mode lines stay few.

#include <gtest/gtest.h>

#include <cstdio>

#include "tools/progress.h"

using namespace dsv3;

TEST(Progress, Formats) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(70272), "70.3 kB");
  EXPECT_EQ(format_bytes(4'510'000'000ull), "4.51 GB");
  EXPECT_EQ(format_bytes(689'000'000'000ull), "689 GB");
  EXPECT_EQ(format_progress(0, 1000, 0.0), "0 B / 1.00 kB    0%");
  // 1 GB of 4 GB in 2 s: 500 MB/s, 3 GB left -> 6 s.
  EXPECT_EQ(format_progress(1'000'000'000, 4'000'000'000, 2.0), "1.00 GB / 4.00 GB   25%  500 MB/s  ETA 0:06");
  // 7999 GB left at 1 GB/s.
  EXPECT_NE(format_progress(1'000'000'000, 8'000'000'000'000, 1.0).find("ETA 2:13:19"), std::string::npos);
  EXPECT_EQ(format_progress(5, 5, 1.0), "5 B / 5 B  100%  5 B/s");
  EXPECT_EQ(format_count_progress(256, 1024, 2.0, "tokens"), "256 / 1024 tokens   25%  128 tokens/s  ETA 0:06");
}

TEST(Progress, PlainLinesEveryTenPercent) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* mem = open_memstream(&buf, &len);
  {
    ProgressReporter p("job", 100, /*tty=*/false, mem);
    for (int i = 0; i < 100; ++i) p.add(1);
    p.finish();
  }
  std::fclose(mem);
  std::string out(buf, len);
  free(buf);
  // At most one line per decile plus the final one; the last says 100%.
  size_t lines = 0;
  for (char c : out) lines += c == '\n';
  EXPECT_GE(lines, 1u);
  EXPECT_LE(lines, 11u);
  EXPECT_NE(out.find("job: 100 B / 100 B  100%"), std::string::npos) << out;
}
