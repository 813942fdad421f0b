// Text that crosses the wire or reaches an operator's terminal.
//
// A proto3 `string` field must hold well-formed UTF-8: a parser refuses the
// whole message otherwise, so one stray byte in an error message ends a
// client's session (issue 13, case 4). Values a client or the system gave
// (names, labels, /proc/<pid>/comm) can hold any bytes; these functions are
// how such a value is quoted in a message, shown in a listing, or checked.
// Plain functions, thread-safe.
#ifndef MEMD_SHARED_TEXT_H_
#define MEMD_SHARED_TEXT_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace memd {

// Whether `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), which every proto3 parser accepts.
bool IsValidUtf8(std::string_view text);

// Bytes of the character at the start of `text`: its whole UTF-8 sequence
// when well-formed, else 1 (a stray byte). REQUIRES: !text.empty().
size_t CharacterBytes(std::string_view text);

// A message quotes at most this many bytes of a value, then "...": a client
// may send a 60 KiB name, and its escaped quote (up to 4 characters a byte)
// must not make the answer larger than the lane's 64 KiB entry limit.
inline constexpr size_t kMaxQuotedBytes = 64;

// `value` as printable ASCII, for quoting a value a client or the system gave
// in a message: bytes outside 0x20..0x7e become \xNN, and \ ' " are
// backslashed (absl::CHexEscape); "caf\xc3\xa9" for "café". At most
// kMaxQuotedBytes of `value`, then "...".
std::string Escaped(std::string_view value);

// The guard before a string goes into a proto `string` field: `text`
// unchanged when it is well-formed UTF-8; otherwise each byte that is not part
// of a well-formed sequence becomes the four characters \xNN.
std::string ValidUtf8(std::string_view text);

// A name the system gave, made fit to show: the last character when the
// kernel cut it inside (comm keeps 15 bytes) is dropped, then invalid bytes,
// control characters (0x00..0x1f, 0x7f) and \ become \xNN / \\.
std::string SystemName(std::string_view raw);

// OK when `value` is well-formed UTF-8 without control characters; otherwise
// INVALID_ARGUMENT naming `what` and the escaped value, e.g.
// "client_name 'a\xe2\x82' is not valid UTF-8".
absl::Status ValidateText(std::string_view what, std::string_view value);

}  // namespace memd

#endif  // MEMD_SHARED_TEXT_H_
