// The session `id` in a ListSessions answer (memctl clients), or null.
#ifndef MEMD_TESTS_SUPPORT_SESSIONS_H_
#define MEMD_TESTS_SUPPORT_SESSIONS_H_

#include <cstdint>

#include "memd/v1/admin.pb.h"

namespace memd::testing {

inline const v1::SessionInfo* FindSession(const v1::ListSessionsResponse& sessions, uint64_t id) {
  for (const v1::SessionInfo& s : sessions.sessions()) {
    if (s.session_id() == id) return &s;
  }
  return nullptr;
}

}  // namespace memd::testing

#endif  // MEMD_TESTS_SUPPORT_SESSIONS_H_
