// StateTable: the persistent copy of one pool's allocation table, so that a
// daemon killed at any instruction can be succeeded by one that re-adopts
// every live buffer with its handle, references and content.
//
// It lives in a daemon-private file ("<state dir>/<pool>.state", mode 0600,
// in a directory only the daemon's user can write: startup/state_directory.h),
// which outlives the daemon process; on a tmpfs such as /run it goes with a
// reboot, like the pool itself. The
// daemon never reads it back while running: its own private tables are the
// truth, this is their write-behind image, read once at adoption.
//
// Crash safety: each slot has two 40-byte copies, each with a sequence number
// and a check value over its fields and slot index. A write fills the older
// copy and stores its check value last, so a crash mid-write leaves the newer
// copy intact; the reader takes the valid copy with the higher sequence.
//
// Ownership: owned by its Pool, which calls Reserve/Write under its mutex.
// Not thread-safe.
#ifndef MEMD_SERVER_SHM_STATE_TABLE_H_
#define MEMD_SERVER_SHM_STATE_TABLE_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "memd/shared/unique_fd.h"
#include "shm/holdings_file.h"
#include "shm/segment.h"

namespace memd {

// One slot of a pool's handle table as persisted.
struct SlotImage {
  enum class State : uint8_t { kFree = 0, kLive = 1, kRetired = 2 };
  State state = State::kFree;
  uint32_t generation = 1;      // of the live handle, or the next to issue
  uint32_t refs = 0;            // references held, by every session together
  uint64_t offset_bytes = 0;    // block start in the segment
  uint64_t capacity_bytes = 0;  // block size
  uint64_t size_bytes = 0;      // size the client asked for

  bool operator==(const SlotImage&) const = default;
};

// Which pool and segment a state table describes.
struct StateIdentity {
  uint32_t pool_index = 0;
  uint64_t size_bytes = 0;
  uint64_t alignment_bytes = 0;
  uint64_t segment_id = 0;  // random, chosen when the segment was created
  SegmentIdentity memory;   // which memfd holds the pool's bytes

  bool operator==(const StateIdentity&) const = default;
};

class StateTable {
 public:
  // Whether the predecessor recorded who held its references (Open).
  enum class HoldersRecord {
    kKept,     // its holdings file was read: a reference goes back to its holder only
    kNotKept,  // a predecessor older than holdings files: any session may reclaim
    kLost,     // the holdings file was unreadable: nobody can prove a reference
  };

  // Creates the object (mode 0600; fails when it exists). The table is not
  // adoptable until MarkReady(), which the daemon calls once the segment exists.
  static absl::StatusOr<std::unique_ptr<StateTable>> Create(const std::string& object_name,
                                                            const StateIdentity& identity);

  // Opens a predecessor's table and its holdings file (a new, empty one when
  // it has none or it is unreadable: holders_record() says which). NOT_FOUND
  // when there is no table; DATA_LOSS when
  // it is not a complete memd state table (crash during creation);
  // FAILED_PRECONDITION when it is another format version.
  static absl::StatusOr<std::unique_ptr<StateTable>> Open(const std::string& object_name);

  // Removes the table and its holdings file. True when the table existed.
  static bool RemoveIfExists(const std::string& object_name);

  ~StateTable();
  StateTable(const StateTable&) = delete;
  StateTable& operator=(const StateTable&) = delete;

  void MarkReady();
  // Records which memory object holds the pool now and its new segment id
  // (a pool continued in new memory when its predecessor's could not be had back).
  void SetMemory(const SegmentIdentity& memory, uint64_t segment_id);
  const StateIdentity& identity() const { return identity_; }
  // Who holds which buffer, persisted beside the slots (holdings_file.h).
  HoldingsFile& holdings() const { return *holdings_; }
  HoldersRecord holders_record() const { return holders_record_; }
  const std::string& object_name() const { return object_name_; }

  // Every slot up to the last one ever written, in slot order. A slot with
  // no valid copy (its first write was cut short) reads as free, generation 1.
  std::vector<SlotImage> Load() const;

  // Makes room for slots [0, slot_count). RESOURCE_EXHAUSTED when the
  // shared-memory filesystem is full; nothing changes then.
  absl::Status Reserve(uint64_t slot_count);

  // REQUIRES: slot < reserved slots. After a crash at any point, Load()
  // returns either the previous image of the slot or this one.
  void Write(uint32_t slot, const SlotImage& image);

  // Unlinks the object (clean shutdown).
  void Remove();

  // Gives the table and its holdings file to the user the daemon drops to (--user).
  absl::Status Chown(uid_t uid, gid_t gid);

  // Slots that fit in the current mapping.
  uint64_t capacity() const { return capacity_; }

  // The object's layout (defined in state_table.cc): a one-page Header, then
  // one Record of two Copy per slot.
  struct Header;
  struct Copy;
  struct Record;

 private:
  StateTable(std::string path, UniqueFd fd);
  absl::Status Map(uint64_t slot_capacity);
  void Unmap();
  Header* header() const;
  Record* records() const;

  const std::string object_name_;  // the file's path in the state directory
  UniqueFd fd_;
  void* mapping_ = nullptr;
  uint64_t mapped_bytes_ = 0;
  StateIdentity identity_;
  std::unique_ptr<HoldingsFile> holdings_;
  HoldersRecord holders_record_ = HoldersRecord::kKept;
  uint64_t capacity_ = 0;
  bool removed_ = false;
};

}  // namespace memd

#endif  // MEMD_SERVER_SHM_STATE_TABLE_H_
