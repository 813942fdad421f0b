// libFuzzer target: random operation sequences from several sessions against
// one Pool (allocator + handle table + references), checked after every step
// against a model of who holds what, and with the pool's invariant checker.
#include <cstdint>
#include <cstring>
#include <map>
#include <vector>

#include "pool/pool.h"

namespace {

// Reads little-endian integers from the fuzz input; zeros once exhausted.
struct Input {
  const uint8_t* data;
  size_t size;
  template <typename T>
  T Take() {
    T value{};
    size_t n = std::min(sizeof(T), size);
    std::memcpy(&value, data, n);
    data += n;
    size -= n;
    return value;
  }
};

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "model violation: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr uint64_t kPoolBytes = 1 << 20;
  static std::vector<uint8_t> memory(kPoolBytes);
  memd::Pool pool(memd::PoolConfig{"fuzz", kPoolBytes, 64, 1 << 19}, 0, memory.data(), "/fuzz");
  memd::SessionRefs sessions[3];
  std::map<uint64_t, uint32_t> model_refs;  // handle -> total references
  std::vector<uint64_t> seen;               // every handle ever issued
  Input in{data, size};
  while (in.size > 0) {
    uint8_t op = in.Take<uint8_t>();
    memd::SessionRefs& s = sessions[op % 3];
    auto pick_handle = [&]() -> uint64_t {
      uint16_t choice = in.Take<uint16_t>();
      if (seen.empty() || choice % 8 == 0) return in.Take<uint64_t>();  // arbitrary value
      return seen[choice % seen.size()];
    };
    switch ((op >> 2) % 5) {
      case 0: {
        uint64_t size_bytes = in.Take<uint32_t>() % (kPoolBytes + 1024);
        auto r = pool.Allocate(s, size_bytes, op & 0x80);
        if (r.ok()) {
          Check(r->offset_bytes % 64 == 0, "unaligned block");
          Check(r->offset_bytes + r->capacity_bytes <= kPoolBytes, "block past the pool");
          Check(!model_refs.contains(r->handle), "handle issued twice");
          for (uint64_t h : seen) Check(h != r->handle, "handle reused");
          model_refs[r->handle] = 1;
          seen.push_back(r->handle);
        }
        break;
      }
      case 1: {
        uint64_t h = pick_handle();
        bool live = model_refs.contains(h);
        auto r = pool.Retain(s, h);
        Check(r.ok() == live, "retain result disagrees with the model");
        if (r.ok()) ++model_refs[h];
        break;
      }
      case 2: {
        uint64_t h = pick_handle();
        bool held = s.counts.contains(h);
        auto r = pool.Release(s, h);
        Check(r.ok() == held, "release result disagrees with the model");
        if (r.ok() && --model_refs[h] == 0) {
          Check(*r, "last release did not free");
          model_refs.erase(h);
        }
        break;
      }
      case 3: {
        uint64_t h = pick_handle();
        uint64_t size_bytes = in.Take<uint32_t>() % (kPoolBytes + 1024);
        auto r = pool.Realloc(s, h, size_bytes);
        if (r.ok()) Check(model_refs[h] == 1 && s.counts.contains(h), "realloc of a shared or foreign buffer");
        break;
      }
      case 4: {
        pool.ReleaseAll(s);
        std::map<uint64_t, uint32_t> rebuilt;
        for (auto& other : sessions) {
          for (auto& [h, n] : other.counts) rebuilt[h] += n;
        }
        model_refs = rebuilt;
        break;
      }
    }
    Check(pool.CheckInvariants().ok(), "pool invariants");
    Check(pool.Stats().live_buffers == model_refs.size(), "live buffers disagree with the model");
  }
  for (auto& s : sessions) pool.ReleaseAll(s);
  Check(pool.Stats().used_bytes == 0, "memory leaked after every session ended");
  return 0;
}
