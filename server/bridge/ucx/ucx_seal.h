// Sealing of pulled bytes (issue 24): AES-256-GCM with OpenSSL's EVP, the
// one place the UCX transport's cipher lives. The SENDING side seals an
// answer's bytes (RegionServer::Reply) with the key of the peer's grant and
// a nonce from the grant's counter; the RECEIVING side opens them in place in
// the pull's destination (UcxConnection::Pull) and checks the tag. The key
// is drawn per grant (one per bridge link: bridge/transport.h Grant) and
// reaches the peer inside the region descriptor, over the peers' mutual TLS.
//
// What a tag covers besides the bytes (the additional data): the pull's
// request id and length, so an answer cannot be replayed into another pull.
//
// Plain functions, no state: safe from any thread.
#ifndef MEMD_SERVER_BRIDGE_UCX_UCX_SEAL_H_
#define MEMD_SERVER_BRIDGE_UCX_UCX_SEAL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace memd::bridge::ucx {

inline constexpr size_t kSealKeyBytes = 32;    // AES-256
inline constexpr size_t kSealNonceBytes = 12;  // GCM's 96-bit nonce: 4 zero bytes + a counter
inline constexpr size_t kSealTagBytes = 16;    // GCM's full 128-bit tag
// What travels with sealed bytes in the reply header: nonce, then tag.
inline constexpr size_t kSealBytes = kSealNonceBytes + kSealTagBytes;

// A fresh random key (getrandom); INTERNAL when the kernel gives none.
absl::Status NewSealKey(std::string* key);

// Encrypts `length` bytes of `in` into `out` (they may be the same memory)
// under `key` (kSealKeyBytes) with the nonce made of `counter`; returns the
// kSealBytes that the receiver needs (nonce and tag). INTERNAL when OpenSSL
// fails (never seen: a broken libcrypto).
absl::Status Seal(std::string_view key, uint64_t counter, uint64_t request_id, const char* in,
                  char* out, size_t length, std::string* seal);

// Decrypts `length` bytes at `bytes` in place and checks the tag in `seal`:
// DATA_LOSS when the tag does not match (bytes altered on the way, another
// key, a replayed answer); then `bytes` holds garbage and must not be used.
absl::Status Unseal(std::string_view key, std::string_view seal, uint64_t request_id, char* bytes,
                  size_t length);

}  // namespace memd::bridge::ucx

#endif  // MEMD_SERVER_BRIDGE_UCX_UCX_SEAL_H_
