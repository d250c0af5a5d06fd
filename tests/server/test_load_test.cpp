// dsv3 loadtest against a real in-process server: every request counted, tokens and latencies
// measured from the SSE stream, the server's memory read from /metrics; a server that is not
// there is an error naming the URL.

#include <gtest/gtest.h>

#include "server_fixture.h"
#include "tools/load_test.h"

using namespace dsv3;

namespace {
LoadTestOptions options_for(const test::TestServer& server, int clients, double seconds, int max_tokens) {
  LoadTestOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(server.port());
  o.clients = clients;
  o.duration_seconds = seconds;
  o.max_tokens = max_tokens;
  return o;
}
}  // namespace

TEST(LoadTest, DrivesConcurrentStreamingClients) {
  test::TestServer server;
  LoadTestOptions o = options_for(server, 3, 1.0, 4);
  auto r = run_load_test(o);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->requests_failed, 0) << r->first_error;
  EXPECT_GE(r->requests_ok, 3);
  // Every finished request streamed its tokens (random weights rarely hit EOS in 4 tokens,
  // but may: at least one token each).
  EXPECT_GE(r->generated_tokens, r->requests_ok);
  EXPECT_LE(r->generated_tokens, r->requests_ok * 4 + 3 * 4);  // in-flight ones may add a few
  EXPECT_GT(r->tokens_per_second, 0);
  EXPECT_GT(r->decode_tokens_per_second, 0);  // requests of 2+ tokens finished
  EXPECT_GT(r->ttft_p50_ms, 0);
  EXPECT_LE(r->ttft_p50_ms, r->ttft_p99_ms);
  EXPECT_GT(r->server_rss_before, 0);
  EXPECT_GT(r->server_anon_after, 0);
  EXPECT_LT(r->server_anon_after, r->server_rss_after);
  const Json j = r->to_json();
  EXPECT_TRUE(j.contains("server_anonymous_bytes"));
  EXPECT_TRUE(j.contains("decode_tokens_per_second"));
}

TEST(LoadTest, NoServerIsAnErrorNamingTheUrl) {
  LoadTestOptions o;
  o.url = "http://127.0.0.1:1";  // nothing listens on port 1
  o.duration_seconds = 0.2;
  auto r = run_load_test(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("127.0.0.1:1"), std::string::npos) << r.error().message();
}

// top_p goes into the requests (sent below 1): a value the server refuses fails them all.
TEST(LoadTest, SendsTopP) {
  test::TestServer server;
  LoadTestOptions o = options_for(server, 1, 0.3, 2);
  o.top_p = -0.5;
  auto r = run_load_test(o);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->requests_ok, 0);
  EXPECT_GT(r->requests_failed, 0);
  EXPECT_NE(r->first_error.find("400"), std::string::npos) << r->first_error;
}
