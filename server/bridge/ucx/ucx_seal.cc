#include "bridge/ucx/ucx_seal.h"

#include <openssl/evp.h>
#include <sys/random.h>

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"

namespace memd::bridge::ucx {
namespace {

using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

// EVP lengths are ints: bytes go through in steps of 1 GiB.
constexpr size_t kStepBytes = size_t{1} << 30;

std::string Nonce(uint64_t counter) {
  std::string nonce(kSealNonceBytes, '\0');
  for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<char>(counter >> (8 * i));
  return nonce;
}

// The additional data a tag covers: request id and length, little-endian.
std::string Aad(uint64_t request_id, uint64_t length) {
  std::string aad(16, '\0');
  for (int i = 0; i < 8; ++i) {
    aad[i] = static_cast<char>(request_id >> (8 * i));
    aad[8 + i] = static_cast<char>(length >> (8 * i));
  }
  return aad;
}

absl::Status Broken(const char* step) {
  return absl::InternalError(absl::StrCat("AES-256-GCM: OpenSSL failed at ", step));
}

// Runs `length` bytes through an initialized context, `in` to `out`.
bool Update(EVP_CIPHER_CTX* ctx, bool encrypt, const char* in, char* out, size_t length) {
  for (size_t done = 0; done < length;) {
    const int n = static_cast<int>(std::min(kStepBytes, length - done));
    int written = 0;
    auto* o = reinterpret_cast<unsigned char*>(out + done);
    auto* i = reinterpret_cast<const unsigned char*>(in + done);
    if ((encrypt ? EVP_EncryptUpdate(ctx, o, &written, i, n)
                 : EVP_DecryptUpdate(ctx, o, &written, i, n)) != 1 ||
        written != n) {
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

absl::Status NewSealKey(std::string* key) {
  key->assign(kSealKeyBytes, '\0');
  if (getrandom(key->data(), key->size(), 0) != static_cast<ssize_t>(key->size())) {
    return absl::InternalError("cannot draw a random AES-256-GCM key (getrandom failed)");
  }
  return absl::OkStatus();
}

absl::Status Seal(std::string_view key, uint64_t counter, uint64_t request_id, const char* in,
                  char* out, size_t length, std::string* seal) {
  CipherContext ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  const std::string nonce = Nonce(counter), aad = Aad(request_id, length);
  int ignored = 0;
  if (ctx == nullptr ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                         reinterpret_cast<const unsigned char*>(key.data()),
                         reinterpret_cast<const unsigned char*>(nonce.data())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &ignored,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1) {
    return Broken("encrypt init");
  }
  if (!Update(ctx.get(), true, in, out, length)) return Broken("encrypt");
  unsigned char tag[kSealTagBytes];
  if (EVP_EncryptFinal_ex(ctx.get(), tag, &ignored) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kSealTagBytes, tag) != 1) {
    return Broken("encrypt final");
  }
  *seal = nonce;
  seal->append(reinterpret_cast<const char*>(tag), kSealTagBytes);
  return absl::OkStatus();
}

absl::Status Unseal(std::string_view key, std::string_view seal, uint64_t request_id, char* bytes,
                  size_t length) {
  if (seal.size() != kSealBytes || key.size() != kSealKeyBytes) {
    return absl::DataLossError(absl::StrCat("the answer's seal is ", seal.size(),
                                            " bytes; AES-256-GCM needs ", kSealBytes));
  }
  CipherContext ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  const std::string aad = Aad(request_id, length);
  std::string tag(seal.substr(kSealNonceBytes));
  int ignored = 0;
  if (ctx == nullptr ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                         reinterpret_cast<const unsigned char*>(key.data()),
                         reinterpret_cast<const unsigned char*>(seal.data())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &ignored,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1) {
    return Broken("decrypt init");
  }
  if (!Update(ctx.get(), false, bytes, bytes, length)) return Broken("decrypt");
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kSealTagBytes, tag.data()) != 1) {
    return Broken("decrypt tag");
  }
  unsigned char tail[16];
  if (EVP_DecryptFinal_ex(ctx.get(), tail, &ignored) != 1) {
    return absl::DataLossError(absl::StrCat(
        "the ", length, " bytes failed their AES-256-GCM tag check (altered on the way, sealed "
        "with another key, or an answer to another pull): refused"));
  }
  return absl::OkStatus();
}

}  // namespace memd::bridge::ucx
