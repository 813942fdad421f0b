#include <gtest/gtest.h>

#include "memd/shared/address.h"
#include "memd/shared/handle.h"
#include "memd/shared/names.h"
#include "memd/shared/size.h"

namespace memd {
namespace {

TEST(SizeTest, ParsesUnits) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("64MiB"), 64ull << 20);
  EXPECT_EQ(*ParseSize("1GiB"), 1ull << 30);
  EXPECT_EQ(*ParseSize("2g"), 2ull << 30);
  EXPECT_EQ(*ParseSize(" 10 KB "), 10240u);
  EXPECT_EQ(*ParseSize("0"), 0u);
}

TEST(SizeTest, RejectsGarbageAndOverflowNamingTheText) {
  for (const char* bad : {"", "MiB", "12XB", "-5", "99999999999999999999", "17179869184GiB"}) {
    auto r = ParseSize(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find(bad), absl::string_view::npos) << r.status();
  }
}

TEST(SizeTest, FormatsForPeople) {
  EXPECT_EQ(FormatSize(512), "512 B");
  EXPECT_EQ(FormatSize(64ull << 20), "64.0 MiB");
  EXPECT_EQ(FormatSize(3ull << 29), "1.5 GiB");
}

TEST(AddressTest, ParsesUnixAndTcp) {
  auto u = ParseAddress("unix:///run/memd/memd.sock");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->unix_path, "/run/memd/memd.sock");
  EXPECT_EQ(ParseAddress("unix:rel.sock")->unix_path, "rel.sock");
  auto t = ParseAddress("localhost:5000");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->kind, Address::Kind::kTcp);
  EXPECT_FALSE(ParseAddress("nonsense").ok());
  EXPECT_FALSE(ParseAddress("host:0").ok());
  EXPECT_FALSE(ParseAddress("unix://").ok());
  EXPECT_FALSE(ParseAddress("unix:///" + std::string(200, 'x')).ok());
}

TEST(NamesTest, ValidatesAndNamespaces) {
  EXPECT_TRUE(ValidateName("pool name", "video_4k-1").ok());
  EXPECT_FALSE(ValidateName("pool name", "").ok());
  EXPECT_FALSE(ValidateName("pool name", "a.b").ok());
  EXPECT_FALSE(ValidateName("pool name", "a/b").ok());
  EXPECT_FALSE(ValidateName("pool name", std::string(65, 'a')).ok());
  EXPECT_EQ(PoolObjectName("memd", "default"), "/memd.memd.default");
}

TEST(HandleTest, RoundTrips) {
  HandleParts p = DecodeHandle(EncodeHandle({255, kMaxGeneration, 0xffffffff}));
  EXPECT_EQ(p.pool_index, 255u);
  EXPECT_EQ(p.generation, kMaxGeneration);
  EXPECT_EQ(p.slot, 0xffffffffu);
}

}  // namespace
}  // namespace memd
