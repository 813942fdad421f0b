// The guard that keeps every Admin answer parseable whatever bytes clients
// and the system gave the daemon (issue 13, case 4). Used by AdminService
// only; plain functions, no shared state.
#ifndef MEMD_SERVER_SERVICE_ADMIN_ANSWER_H_
#define MEMD_SERVER_SERVICE_ADMIN_ANSWER_H_

#include <google/protobuf/message.h>

namespace memd {

// The guard: every string field of `answer`, nested ones included, becomes
// valid UTF-8 (ValidUtf8 in memd/shared/text.h), so one bad byte anywhere
// cannot make the whole answer unparseable for the client.
void MakeStringsValid(google::protobuf::Message* answer);

}  // namespace memd

#endif  // MEMD_SERVER_SERVICE_ADMIN_ANSWER_H_
