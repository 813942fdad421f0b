// libFuzzer target: random operation sequences from several sessions against
// one Pool (allocator + handle table + references), checked after every step
// against a model of who holds what, and with the pool's invariant checker.
// One operation is the daemon dying: a new Pool re-adopts the state table and
// every session reclaims what it held; the model must not notice.
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

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
  static const std::string state_name = "/dev/shm/memd-fuzz-state-" + std::to_string(getpid());
  const memd::PoolConfig config{"fuzz", kPoolBytes, 64, 1 << 19};
  memd::StateTable::RemoveIfExists(state_name);
  auto table = memd::StateTable::Create(state_name, memd::StateIdentity{0, kPoolBytes, 64, 1});
  Check(table.ok(), "cannot create the state table");
  (*table)->MarkReady();
  auto owned = std::make_unique<memd::Pool>(config, 0, memory.data(), "/fuzz", std::move(*table));
  // Each session's ticket (AttachResponse.ticket): after a restart a session
  // reclaims with its predecessor's ticket and gets a new one.
  uint32_t epoch = 0;
  auto ticket = [](uint64_t session, uint32_t of_epoch) {
    std::string t(16, '\0');
    t[0] = static_cast<char>('a' + session);
    std::memcpy(&t[4], &of_epoch, sizeof(of_epoch));
    return t;
  };
  memd::HolderId sessions[3];
  for (uint64_t i = 0; i < 3; ++i) sessions[i] = owned->OpenSession(i + 1, std::nullopt, ticket(i, epoch));
  std::map<uint64_t, uint32_t> model_refs;  // handle -> total references
  std::vector<uint64_t> seen;               // every handle ever issued
  Input in{data, size};
  while (in.size > 0) {
    uint8_t op = in.Take<uint8_t>();
    memd::HolderId s = sessions[op % 3];
    auto holds = [&](uint64_t h) { return owned->Query(s, {h})[0].held > 0; };
    auto pick_handle = [&]() -> uint64_t {
      uint16_t choice = in.Take<uint16_t>();
      if (seen.empty() || choice % 8 == 0) return in.Take<uint64_t>();  // arbitrary value
      return seen[choice % seen.size()];
    };
    switch ((op >> 2) % 6) {
      case 0: {
        uint64_t size_bytes = in.Take<uint32_t>() % (kPoolBytes + 1024);
        auto r = owned->Allocate(s, size_bytes, op & 0x80);
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
        auto r = owned->Retain(s, h);
        Check(r.ok() == live, "retain result disagrees with the model");
        if (r.ok()) ++model_refs[h];
        break;
      }
      case 2: {
        uint64_t h = pick_handle();
        bool held = holds(h);
        auto r = owned->Release(s, h);
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
        auto r = owned->Realloc(s, h, size_bytes);
        if (r.ok()) Check(model_refs[h] == 1 && holds(h), "realloc of a shared or foreign buffer");
        break;
      }
      case 4: {
        owned->ReleaseAll(s);
        std::map<uint64_t, uint32_t> rebuilt;
        for (memd::HolderId other : sessions) {
          for (auto& [h, n] : owned->Holdings(other)) rebuilt[h] += n;
        }
        model_refs = rebuilt;
        break;
      }
      case 5: {  // the daemon dies; its successor re-adopts the pool
        memd::PoolStats before = owned->Stats();
        std::vector<absl::flat_hash_map<uint64_t, uint32_t>> held;
        for (memd::HolderId session : sessions) held.push_back(owned->Holdings(session));
        owned.reset();
        auto state = memd::StateTable::Open(state_name);
        Check(state.ok(), "state table does not reopen");
        auto adopted = memd::Pool::Adopt(config, 0, memory.data(), "/fuzz", std::move(*state));
        Check(adopted.ok(), "re-adoption failed");
        owned = std::move(*adopted);
        Check(owned->Stats().used_bytes == before.used_bytes, "used bytes changed by re-adoption");
        Check(owned->Stats().live_buffers == before.live_buffers, "live buffers changed by re-adoption");
        ++epoch;
        for (uint64_t i = 0; i < 3; ++i) {
          sessions[i] = owned->OpenSession(i + 1, std::nullopt, ticket(i, epoch));
          for (auto& [h, n] : held[i]) {
            auto got = owned->Reclaim(sessions[i], h, n, memd::HolderId::kNone, ticket(i, epoch - 1));
            Check(got.ok() && got->references == n, "a held reference was not reclaimed");
          }
        }
        Check(owned->Stats().unclaimed_references == 0, "references left unclaimed");
        break;
      }
    }
    Check(owned->CheckInvariants().ok(), "pool invariants");
    Check(owned->Stats().live_buffers == model_refs.size(), "live buffers disagree with the model");
  }
  for (memd::HolderId s : sessions) owned->CloseHolder(s);
  Check(owned->Stats().used_bytes == 0, "memory leaked after every session ended");
  owned.reset();
  memd::StateTable::RemoveIfExists(state_name);
  return 0;
}
