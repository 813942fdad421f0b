// The C API's process-wide state (memd/memd.h): one Client, the session every
// memd_* call of the process uses, made by memd_init or from the environment
// on first use; memd_max_alloc's limit; each thread's last error. Which
// buffers the process holds is the Client's own record (Client::Held, its
// Holdings), not a table of the C API's. Private to libmemd.
//
// Thread-safe: the session pointer is guarded by a mutex; daemon round trips
// run outside it on a shared_ptr copy, or on a pointer a Session marks in
// its thread's hazard slot, so memd_uninit never pulls a Client from under
// a call (it waits for the marks; the last copy ends the session).
#ifndef MEMD_CLIENT_C_API_STATE_H_
#define MEMD_CLIENT_C_API_STATE_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "memd/client.h"

namespace memd::capi {

// Sets this thread's memd_last_error().
void SetError(std::string message);
// The negative errno a C caller gets for `status`.
int ErrnoOf(const absl::Status& status);

// The session, initialized from the environment on first use; null (with
// the reason in memd_last_error) when the daemon cannot be reached.
std::shared_ptr<Client> Acquire();
// The session if there is one, without making one (memd_free, memd_handle).
std::shared_ptr<Client> Current();

// The session for one memd_* call without the mutex on the common path: a
// thread that used the session before keeps a raw pointer to it and marks
// it in use (a per-thread hazard slot, one sequentially consistent store);
// memd_uninit bumps an epoch and waits until no thread marks the old
// session before it drops it. Other threads take the mutex path (Acquire).
// Nesting on one thread is allowed. Not movable; lives on the stack.
class Session {
 public:
  // `make`: initialize from the environment when there is no session
  // (Acquire); otherwise only an existing one (Current).
  explicit Session(bool make);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Client* get() const { return client_; }
  Client* operator->() const { return client_; }
  Client& operator*() const { return *client_; }
  explicit operator bool() const { return client_ != nullptr; }

 private:
  Client* client_ = nullptr;
  std::shared_ptr<Client> owned_;  // the mutex path's copy
  bool marked_ = false;            // this thread's hazard slot marks client_
};

// The largest allocation: memd_max_alloc's limit or the pool's max_alloc,
// whichever is lower.
size_t EffectiveMaxAlloc(const Client& client);

// "fn(ptr): not a pointer memd returned ...": the error for a pointer the
// session does not hold.
std::string NotOurs(const void* ptr, const char* fn);

}  // namespace memd::capi

#endif  // MEMD_CLIENT_C_API_STATE_H_
