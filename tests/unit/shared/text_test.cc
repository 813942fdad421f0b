#include "memd/shared/text.h"

#include <random>
#include <string>

#include <gtest/gtest.h>

#include "memd/shared/names.h"
#include "memd/v1/memory.pb.h"

namespace memd {
namespace {

TEST(TextTest, IsValidUtf8FollowsRfc3629) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\x9e"));
  for (const char* bad : {"\xc3", "\xff", "a\xe2\x82", "\xc0\xaf" /* overlong '/' */,
                          "\xed\xa0\x80" /* a surrogate */, "\xf4\x90\x80\x80" /* > U+10FFFF */,
                          "\x80", "\xe0\x80\xaf" /* overlong */}) {
    EXPECT_FALSE(IsValidUtf8(bad)) << Escaped(bad);
  }
}

// Whatever bytes go in, ValidUtf8's result parses as a proto3 string (the
// protobuf parser is the judge), and valid text comes out unchanged.
TEST(TextTest, ValidUtf8OfAnyBytesParsesAsAProtoString) {
  const uint32_t seed = std::random_device()();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes(rng() % 12, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() % 4 == 0 ? 0x80 + rng() % 0x80 : rng());
    v1::SessionResponse out;
    out.set_status_message(ValidUtf8(bytes));
    v1::SessionResponse in;
    ASSERT_TRUE(in.ParseFromString(out.SerializeAsString())) << Escaped(bytes);
    if (IsValidUtf8(bytes)) ASSERT_EQ(out.status_message(), bytes);
  }
  EXPECT_EQ(ValidUtf8("a\xc3" "b\xe2\x82\xac"), "a\\xc3b\xe2\x82\xac");
}

TEST(TextTest, EscapedIsPrintableAsciiAndCapped) {
  EXPECT_EQ(Escaped("caf\xc3\xa9"), "caf\\xc3\\xa9");
  EXPECT_EQ(Escaped("x\x1b[2J'"), "x\\x1b[2J\\'");
  const std::string long_name(1000, '\xff');
  std::string quoted = Escaped(long_name);
  EXPECT_EQ(quoted.size(), kMaxQuotedBytes * 4 + 3);
  EXPECT_EQ(quoted.substr(quoted.size() - 3), "...");
}

TEST(TextTest, SystemNameDropsACutCharacterAndEscapesTheRest) {
  EXPECT_EQ(SystemName("abcdefghijklmn\xc3"), "abcdefghijklmn");       // comm cut a 2-byte char
  EXPECT_EQ(SystemName("abcdefghijkl\xe2\x82"), "abcdefghijkl");       // and a 3-byte one
  EXPECT_EQ(SystemName("d\xc3\xa9" "codeur"), "d\xc3\xa9" "codeur");    // whole characters stay
  EXPECT_EQ(SystemName("\xff\x1b[2Jx\\"), "\\xff\\x1b[2Jx\\\\");
  EXPECT_EQ(SystemName("\xc3x"), "\\xc3x");  // a lone lead byte inside is escaped, not dropped
}

TEST(TextTest, ValidateTextRefusesBrokenUtf8AndControlCharacters) {
  EXPECT_TRUE(ValidateText("client_name", "d\xc3\xa9" "codeur").ok());
  absl::Status s = ValidateText("client_name", "a\xe2\x82");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "client_name 'a\\xe2\\x82' is not valid UTF-8");
  s = ValidateText("client_name", "x\x1b[2J");
  EXPECT_EQ(s.message(), "client_name 'x\\x1b[2J' contains the control character 0x1b");
}

TEST(TextTest, ValidateNameQuotesTheNameAndTheWholeCharacterEscaped) {
  absl::Status s = ValidateName("channel name", "caf\xc3\xa9");
  EXPECT_EQ(s.message(), "channel name 'caf\\xc3\\xa9' contains '\\xc3\\xa9'; allowed characters "
                         "are A-Z a-z 0-9 _ -");
  s = ValidateName("channel name", "a\xe2\x82");
  EXPECT_EQ(s.message(), "channel name 'a\\xe2\\x82' contains '\\xe2'; allowed characters are "
                         "A-Z a-z 0-9 _ -");
}

}  // namespace
}  // namespace memd
