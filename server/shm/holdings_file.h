// HoldingsFile: the persistent record of which session holds how many
// references to which buffer of one pool, so that after a daemon restart a
// reference goes back only to the process that held it (issue 13, case 6:
// a handle is visible to anyone in `memctl buffers`; the session's ticket is
// not). Each record names the holding session by its ticket (16 random bytes
// the session's own stream received at attach; ReclaimRequest.ticket proves
// it later), the handle and the count.
//
// It lives beside the pool's state table ("<state dir>/<pool>.holders", mode
// 0600, in the daemon's private directory) and, like it, is a write-behind
// image read once at adoption. Records are written with DualCopy, so a
// crash at any instruction leaves each record's previous or new value.
// The slot table and this file are two writes: a kill -9 between them can
// leave one reference of one operation without a holder (the restarted
// daemon then keeps it unclaimed, released after the grace period) or a
// holder count above the slot's (trimmed at adoption).
//
// Ownership: owned by its StateTable; the Pool writes it under its mutex
// (HolderLedger's keyed-change hook). Not thread-safe.
#ifndef MEMD_SERVER_SHM_HOLDINGS_FILE_H_
#define MEMD_SERVER_SHM_HOLDINGS_FILE_H_

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "memd/shared/fd_handoff.h"
#include "memd/shared/unique_fd.h"

namespace memd {

// What one session held of one buffer when the record was written.
struct Holding {
  std::string ticket;  // kTicketBytes bytes
  uint64_t handle = 0;
  uint32_t refs = 0;   // > 0
};

class HoldingsFile {
 public:
  static constexpr size_t kTicketBytes = fd_handoff::kTicketBytes;  // AttachResponse.ticket

  // Creates the file (mode 0600; fails when it exists).
  static absl::StatusOr<std::unique_ptr<HoldingsFile>> Create(const std::string& path);
  // Opens a predecessor's file and indexes its records. NOT_FOUND when there
  // is none; DATA_LOSS when it is not a memd holdings file;
  // PERMISSION_DENIED when it is not a regular file of the daemon's uid.
  static absl::StatusOr<std::unique_ptr<HoldingsFile>> Open(const std::string& path);
  // "<dir>/<pool>.holders" for the state table "<dir>/<pool>.state".
  static std::string PathFor(const std::string& state_path);

  ~HoldingsFile();
  HoldingsFile(const HoldingsFile&) = delete;
  HoldingsFile& operator=(const HoldingsFile&) = delete;

  // Every record with references, in file order.
  std::vector<Holding> Load() const;

  // Records that the session of `ticket` holds `refs` references to `handle`
  // (0: none; the record is freed). RESOURCE_EXHAUSTED when the file cannot
  // grow (its filesystem is full); INVALID_ARGUMENT for a ticket that is not
  // kTicketBytes long. Nothing changes then.
  absl::Status Set(std::string_view ticket, uint64_t handle, uint32_t refs);

  // Records in use (one per session and buffer it holds).
  size_t records() const { return index_.size(); }
  const std::string& path() const { return path_; }
  absl::Status Chown(uid_t uid, gid_t gid);

  // The file's layout (holdings_file.cc): a Header, then one Record of two
  // Copy per record slot.
  struct Header;
  struct Copy;
  struct Record;

 private:
  HoldingsFile(std::string path, UniqueFd fd);
  absl::Status Grow(uint64_t records);
  void Write(uint32_t record, std::string_view ticket, uint64_t handle, uint32_t refs);
  Record* records_at() const;

  const std::string path_;
  UniqueFd fd_;
  void* mapping_ = nullptr;
  uint64_t mapped_bytes_ = 0;
  uint64_t capacity_ = 0;  // record slots in the file
  // (ticket, handle) -> record slot, for records with references. A fixed
  // array, not a string: Set runs on every reference change.
  using Key = std::pair<std::array<char, kTicketBytes>, uint64_t>;
  static Key KeyOf(std::string_view ticket, uint64_t handle);
  absl::flat_hash_map<Key, uint32_t> index_;
  std::vector<uint32_t> free_;  // record slots without references below used_
  uint64_t used_ = 0;           // record slots ever used (the rest are zero)
};

}  // namespace memd

#endif  // MEMD_SERVER_SHM_HOLDINGS_FILE_H_
