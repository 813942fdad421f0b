// The bridge's crash-safe records in the daemon's state directory (issue 19;
// the argument for exactly-once delivery is in docs/multi-node.md):
//   OutboundJournal  sender side, one per outbound bridge
//                    ("<state dir>/bridge.<pool>.<channel>.out"): the messages
//                    the bridge took from its channel and the peer has not
//                    acknowledged (seq, handles, metadata), the last
//                    acknowledged seq, and the tickets under which the pool's
//                    holdings file records the bridge's references;
//   DeliveredMark    receiver side, one per inbound bridge
//                    ("<state dir>/bridge.<node>.<pool>.<channel>.in"): the
//                    last seq a local consumer received.
// Both are mapped private files (shm/private_file.h) whose records are
// written with DualCopy (shm/dual_copy.h), so a kill -9 at any instruction
// leaves each record's previous or new value. A process kill does not lose
// the page cache; a machine crash may (as for the state tables).
//
// Not thread-safe: the owner (an Outbound, an Inbound) serializes calls.
#ifndef MEMD_SERVER_BRIDGE_JOURNAL_H_
#define MEMD_SERVER_BRIDGE_JOURNAL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "memd/shared/unique_fd.h"

namespace memd::bridge {

// A private file mapped read-write (both classes below sit on it).
class MappedFile {
 public:
  // Opens `path`, or creates it zero-filled with `size_bytes` when missing.
  // DATA_LOSS when an existing file has another size.
  static absl::StatusOr<std::unique_ptr<MappedFile>> OpenOrCreate(const std::string& path,
                                                                  uint64_t size_bytes,
                                                                  const char* what);
  ~MappedFile();
  void* data() const { return data_; }
  bool created() const { return created_; }

 private:
  MappedFile(UniqueFd fd, void* data, uint64_t size_bytes, bool created)
      : fd_(std::move(fd)), data_(data), size_bytes_(size_bytes), created_(created) {}
  UniqueFd fd_;
  void* data_;
  uint64_t size_bytes_;
  bool created_;
};

class OutboundJournal {
 public:
  // Messages in flight per bridge: each holds its buffers in the sender's
  // pool until acknowledged; 8 x 12.4 MiB 4K frames keep a link busy while
  // bounding what a stalled peer pins (about 100 MiB).
  static constexpr uint32_t kSlots = 8;
  static constexpr uint32_t kMaxTickets = 4;

  struct Entry {
    uint64_t seq = 0;
    std::vector<uint64_t> handles;
    std::string metadata;
    uint32_t hops = 0;  // bridges it crossed to reach this node (ReceivedMessage::hops)
  };

  static absl::StatusOr<std::unique_ptr<OutboundJournal>> Open(const std::string& path);
  ~OutboundJournal();

  // Tickets whose holdings may hold the bridge's references (newest first).
  std::vector<std::string> tickets() const;
  // REQUIRES: at most kMaxTickets, each HoldingsFile::kTicketBytes long.
  void SetTickets(const std::vector<std::string>& tickets);

  uint64_t acked_seq() const;
  // The highest seq ever given (acknowledged or not).
  uint64_t last_seq() const;
  // Unacknowledged entries, seq ascending.
  std::vector<Entry> Load() const;
  bool full() const;
  // Records a new entry and returns its seq (last_seq() + 1). REQUIRES: !full().
  uint64_t Append(const std::vector<uint64_t>& handles, const std::string& metadata,
                  uint32_t hops);
  // Everything up to `seq` is acknowledged: recorded, then the slots freed.
  void Ack(uint64_t seq);

  struct HeaderCopy;
  struct SlotCopy;

 private:
  explicit OutboundJournal(std::unique_ptr<MappedFile> file) : file_(std::move(file)) {}
  struct Layout;
  Layout* layout() const;
  std::unique_ptr<MappedFile> file_;
};

class DeliveredMark {
 public:
  static absl::StatusOr<std::unique_ptr<DeliveredMark>> Open(const std::string& path);
  uint64_t delivered() const;
  void Set(uint64_t seq);

  struct Copy;

 private:
  explicit DeliveredMark(std::unique_ptr<MappedFile> file) : file_(std::move(file)) {}
  std::unique_ptr<MappedFile> file_;
};

}  // namespace memd::bridge

#endif  // MEMD_SERVER_BRIDGE_JOURNAL_H_
