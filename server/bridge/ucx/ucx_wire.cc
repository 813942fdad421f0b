#include "bridge/ucx/ucx_wire.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "bridge/ucx/ucx_seal.h"
#include "memd/shared/names.h"

namespace memd::bridge::ucx {
namespace {

// "MDRG" / "MDUA" as they appear in the first four bytes.
constexpr absl::string_view kRegionMagic = "MDRG";
constexpr absl::string_view kAddressMagic = "MDUA";

void PutLe(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

// REQUIRES: at + bytes <= in.size() (callers check the header size first).
uint64_t GetLe(std::string_view in, size_t at, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) {
    value |= static_cast<uint64_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  }
  return value;
}

absl::Status CheckMagicAndVersion(absl::string_view what, std::string_view bytes,
                                  absl::string_view magic, size_t header_bytes) {
  if (bytes.size() < header_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " is truncated: ", bytes.size(), " bytes; its header alone is ", header_bytes));
  }
  if (bytes.substr(0, 4) != std::string_view(magic.data(), magic.size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " does not start with '", magic, "' (not a memd UCX ", what, ")"));
  }
  const uint64_t version = GetLe(bytes, 4, 2);
  if (version != kWireVersion) {
    return absl::InvalidArgumentError(absl::StrCat(what, " has version ", version,
                                                   "; this daemon reads version ", kWireVersion));
  }
  return absl::OkStatus();
}

}  // namespace

std::string EncodeRegion(const Region& region) {
  std::string out;
  out.reserve(kRegionHeaderBytes + region.pool.size() + region.key.size() +
              region.seal_key.size());
  out.append(kRegionMagic.data(), kRegionMagic.size());
  PutLe(out, kWireVersion, 2);
  PutLe(out, region.pool.size(), 2);
  PutLe(out, 0, 8);  // reserved (an address, for a native-RDMA transport)
  PutLe(out, region.size_bytes, 8);
  PutLe(out, region.key.size(), 4);
  PutLe(out, region.seal_key.size(), 4);
  out.append(region.pool);
  out.append(region.key);
  out.append(region.seal_key);
  return out;
}

absl::StatusOr<Region> ParseRegion(std::string_view bytes) {
  constexpr absl::string_view kWhat = "region descriptor";
  if (absl::Status s = CheckMagicAndVersion(kWhat, bytes, kRegionMagic, kRegionHeaderBytes);
      !s.ok()) {
    return s;
  }
  Region region;
  const uint64_t name_bytes = GetLe(bytes, 6, 2);
  const uint64_t reserved_address = GetLe(bytes, 8, 8);
  region.size_bytes = GetLe(bytes, 16, 8);
  const uint64_t key_bytes = GetLe(bytes, 24, 4);
  const uint64_t seal_key_bytes = GetLe(bytes, 28, 4);
  if (reserved_address != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, " has reserved field ", reserved_address, "; version 2 requires 0"));
  }
  if (seal_key_bytes != 0 && seal_key_bytes != kSealKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        kWhat, " carries a seal key of ", seal_key_bytes, " bytes; version 2 seal keys are 0 "
        "(a trusted link, in clear) or ", kSealKeyBytes, " (AES-256-GCM)"));
  }
  if (name_bytes > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, " names a pool of ", name_bytes,
                                                   " bytes; the limit is ", kMaxNameBytes));
  }
  if (key_bytes != kRegionKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, " carries a key of ", key_bytes,
                                                   " bytes; version 2 keys are ",
                                                   kRegionKeyBytes));
  }
  const uint64_t expected = kRegionHeaderBytes + name_bytes + key_bytes + seal_key_bytes;
  if (bytes.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        kWhat, " is ", bytes.size(), " bytes; its header announces ", expected, " (",
        kRegionHeaderBytes, " header + ", name_bytes, " pool name + ", key_bytes, " key + ",
        seal_key_bytes, " seal key): ", bytes.size() < expected ? "truncated" : "trailing bytes"));
  }
  if (region.size_bytes == 0) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, " describes a region of 0 bytes"));
  }
  region.pool = std::string(bytes.substr(kRegionHeaderBytes, name_bytes));
  if (absl::Status s = ValidateName("pool name", region.pool); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, ": ", s.message()));
  }
  region.key = std::string(bytes.substr(kRegionHeaderBytes + name_bytes, key_bytes));
  region.seal_key =
      std::string(bytes.substr(kRegionHeaderBytes + name_bytes + key_bytes, seal_key_bytes));
  return region;
}

std::string EncodeWorkerAddress(std::string_view ucx_address) {
  std::string out;
  out.reserve(kAddressHeaderBytes + ucx_address.size());
  out.append(kAddressMagic.data(), kAddressMagic.size());
  PutLe(out, kWireVersion, 2);
  PutLe(out, 0, 2);  // reserved
  PutLe(out, ucx_address.size(), 4);
  out.append(ucx_address);
  return out;
}

absl::StatusOr<std::string_view> ParseWorkerAddress(std::string_view bytes) {
  constexpr absl::string_view kWhat = "worker address";
  if (absl::Status s = CheckMagicAndVersion(kWhat, bytes, kAddressMagic, kAddressHeaderBytes);
      !s.ok()) {
    return s;
  }
  const uint64_t reserved = GetLe(bytes, 6, 2);
  if (reserved != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, " has reserved field ", reserved, "; version 2 requires 0"));
  }
  const uint64_t length = GetLe(bytes, 8, 4);
  if (length == 0 || length > kMaxWorkerAddressBytes) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, " announces ", length,
                                                   " bytes; from 1 to ", kMaxWorkerAddressBytes,
                                                   " are allowed"));
  }
  if (bytes.size() != kAddressHeaderBytes + length) {
    return absl::InvalidArgumentError(absl::StrCat(
        kWhat, " is ", bytes.size(), " bytes; its header announces ",
        kAddressHeaderBytes + length, ": ",
        bytes.size() < kAddressHeaderBytes + length ? "truncated" : "trailing bytes"));
  }
  return bytes.substr(kAddressHeaderBytes);
}

namespace {
constexpr absl::string_view kRequestMagic = "MDPQ";
constexpr size_t kRequestNameOffset = 48;
}  // namespace

std::string EncodePullRequest(const PullRequest& request) {
  std::string out;
  out.reserve(kPullRequestBytes);
  out.append(kRequestMagic.data(), kRequestMagic.size());
  PutLe(out, request.pool.size(), 2);
  PutLe(out, 0, 2);  // reserved
  PutLe(out, request.request_id, 8);
  PutLe(out, request.offset, 8);
  PutLe(out, request.length, 8);
  out.append(request.key);
  out.resize(kRequestNameOffset, '\0');
  out.append(request.pool);
  out.resize(kPullRequestBytes, '\0');
  return out;
}

absl::StatusOr<PullRequest> ParsePullRequest(std::string_view bytes) {
  if (bytes.size() != kPullRequestBytes ||
      bytes.substr(0, 4) != std::string_view(kRequestMagic.data(), kRequestMagic.size())) {
    return absl::InvalidArgumentError(absl::StrCat("a pull request of ", bytes.size(),
                                                   " bytes is not a memd pull request (",
                                                   kPullRequestBytes, " bytes, 'MDPQ')"));
  }
  PullRequest request;
  const uint64_t name_bytes = GetLe(bytes, 4, 2);
  if (name_bytes == 0 || name_bytes > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("a pull request names a pool of ", name_bytes,
                                                   " bytes; from 1 to ", kMaxNameBytes));
  }
  request.request_id = GetLe(bytes, 8, 8);
  request.offset = GetLe(bytes, 16, 8);
  request.length = GetLe(bytes, 24, 8);
  request.key = std::string(bytes.substr(32, kRegionKeyBytes));
  request.pool = std::string(bytes.substr(kRequestNameOffset, name_bytes));
  return request;
}

std::string EncodePullReply(const PullReply& reply) {
  std::string out;
  const std::string_view message =
      std::string_view(reply.message).substr(0, kMaxReplyMessageBytes);
  PutLe(out, reply.request_id, 8);
  PutLe(out, reply.code, 4);
  PutLe(out, message.size(), 2);
  PutLe(out, reply.seal.size(), 2);
  out.append(reply.seal);
  out.append(message);
  return out;
}

absl::StatusOr<PullReply> ParsePullReply(std::string_view bytes) {
  if (bytes.size() < kPullReplyHeaderBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("a pull reply of ", bytes.size(), " bytes; its header alone is ",
                     kPullReplyHeaderBytes));
  }
  PullReply reply;
  reply.request_id = GetLe(bytes, 0, 8);
  reply.code = static_cast<uint32_t>(GetLe(bytes, 8, 4));
  const uint64_t message_bytes = GetLe(bytes, 12, 2);
  const uint64_t seal_bytes = GetLe(bytes, 14, 2);
  if (message_bytes > kMaxReplyMessageBytes || (seal_bytes != 0 && seal_bytes != kSealBytes) ||
      bytes.size() != kPullReplyHeaderBytes + seal_bytes + message_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("a pull reply of ", bytes.size(),
                                                   " bytes announces a seal of ", seal_bytes,
                                                   " bytes and a message of ", message_bytes,
                                                   " bytes"));
  }
  reply.seal = std::string(bytes.substr(kPullReplyHeaderBytes, seal_bytes));
  reply.message = std::string(bytes.substr(kPullReplyHeaderBytes + seal_bytes));
  return reply;
}

}  // namespace memd::bridge::ucx
