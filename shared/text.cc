#include "memd/shared/text.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"

namespace memd {
namespace {

// One UTF-8 sequence at the start of `text`, per RFC 3629's table.
struct Sequence {
  size_t length = 0;       // bytes of the well-formed sequence; 0 when there is none
  bool truncated = false;  // the bytes there are a well-formed sequence's start, cut by the end
};

Sequence SequenceAt(std::string_view text) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t lead = byte(0);
  if (lead < 0x80) return {1, false};
  size_t need = 0;
  uint8_t second_min = 0x80, second_max = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    need = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    need = 3;
    if (lead == 0xe0) second_min = 0xa0;  // no overlong forms
    if (lead == 0xed) second_max = 0x9f;  // no surrogates
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    need = 4;
    if (lead == 0xf0) second_min = 0x90;  // no overlong forms
    if (lead == 0xf4) second_max = 0x8f;  // nothing above U+10FFFF
  } else {
    return {};  // a continuation byte, or 0xc0, 0xc1, 0xf5..0xff: never a lead
  }
  for (size_t i = 1; i < need; ++i) {
    if (i == text.size()) return {0, true};
    const uint8_t min = i == 1 ? second_min : 0x80, max = i == 1 ? second_max : 0xbf;
    if (byte(i) < min || byte(i) > max) return {};
  }
  return {need, false};
}

void AppendHex(uint8_t byte, std::string* out) { absl::StrAppendFormat(out, "\\x%02x", byte); }

}  // namespace

bool IsValidUtf8(std::string_view text) {
  for (size_t at = 0; at < text.size();) {
    Sequence s = SequenceAt(text.substr(at));
    if (s.length == 0) return false;
    at += s.length;
  }
  return true;
}

size_t CharacterBytes(std::string_view text) { return std::max<size_t>(SequenceAt(text).length, 1); }

std::string Escaped(std::string_view value) {
  // Debian's abseil has its own string_view, not an alias of std::string_view.
  const absl::string_view quoted(value.data(), std::min(value.size(), kMaxQuotedBytes));
  return absl::CHexEscape(quoted) + (value.size() > kMaxQuotedBytes ? "..." : "");
}

std::string ValidUtf8(std::string_view text) {
  if (IsValidUtf8(text)) return std::string(text);
  std::string out;
  for (size_t at = 0; at < text.size();) {
    Sequence s = SequenceAt(text.substr(at));
    if (s.length == 0) {
      AppendHex(static_cast<uint8_t>(text[at]), &out);
      ++at;
    } else {
      out.append(text.substr(at, s.length));
      at += s.length;
    }
  }
  return out;
}

std::string SystemName(std::string_view raw) {
  std::string out;
  for (size_t at = 0; at < raw.size();) {
    Sequence s = SequenceAt(raw.substr(at));
    if (s.truncated) break;  // the kernel's byte limit cut this character
    const auto byte = static_cast<uint8_t>(raw[at]);
    if (s.length == 0 || byte < 0x20 || byte == 0x7f) {
      AppendHex(byte, &out);
      ++at;
    } else if (byte == '\\') {
      out += "\\\\";
      ++at;
    } else {
      out.append(raw.substr(at, s.length));
      at += s.length;
    }
  }
  return out;
}

absl::Status ValidateText(std::string_view what, std::string_view value) {
  if (!IsValidUtf8(value)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s '%s' is not valid UTF-8", what, Escaped(value)));
  }
  for (char c : value) {
    const auto byte = static_cast<uint8_t>(c);
    if (byte < 0x20 || byte == 0x7f) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s '%s' contains the control character 0x%02x", what, Escaped(value), byte));
    }
  }
  return absl::OkStatus();
}

}  // namespace memd
