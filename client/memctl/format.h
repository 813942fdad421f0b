// memctl's documents and output formats, a library of their own
// (memctl_format) that memctl and the Python module's stats() both link:
// each command's JSON document (stable keys, exact numbers) and table, and
// -o table|wide|json|yaml. Pure functions; any thread.
//
// Files: output.cc (-o, YAML through yaml-cpp), stats_format.cc and
// listing_format.cc (documents and tables), admin_channel.* (the channel to
// the Admin service).
#ifndef MEMD_CLIENT_MEMCTL_FORMAT_H_
#define MEMD_CLIENT_MEMCTL_FORMAT_H_

#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "memd/v1/admin.pb.h"

namespace memd {

// -o: how a command prints its answer.
enum class Output {
  kTable,  // aligned columns, human sizes (the default)
  kWide,   // the table with every column
  kJson,   // one JSON document, stable keys, exact numbers (handles as strings)
  kYaml,   // the same document as YAML
};
std::optional<Output> ParseOutput(const std::string& text);
// The document as JSON or YAML, or the table (`table(wide)`).
std::string Render(Output output, const nlohmann::ordered_json& doc,
                   const std::function<std::string(bool wide)>& table);
// YAML as kubectl writes it: plain keys, strings quoted only where a reader
// would take them for another type (a handle "1234" stays a string).
std::string ToYaml(const nlohmann::ordered_json& doc);

// Each command's document and table. Handles are decimal strings in the
// documents: jq and JavaScript read JSON numbers as doubles, exact only to 2^53.
nlohmann::ordered_json StatsDocument(const v1::GetStatsResponse& stats);
std::string StatsTable(const v1::GetStatsResponse& stats, bool wide);
nlohmann::ordered_json PoolsDocument(const v1::GetStatsResponse& stats);
std::string PoolsTable(const v1::GetStatsResponse& stats, bool wide);
nlohmann::ordered_json SessionsDocument(const v1::ListSessionsResponse& sessions);
std::string SessionsTable(const v1::ListSessionsResponse& sessions, bool wide);
nlohmann::ordered_json BuffersDocument(const v1::ListBuffersResponse& buffers);
std::string BuffersTable(const v1::ListBuffersResponse& buffers, bool wide);
nlohmann::ordered_json CheckDocument(const v1::CheckPoolsResponse& check);
std::string CheckTable(const v1::CheckPoolsResponse& check, bool wide);

}  // namespace memd

#endif  // MEMD_CLIENT_MEMCTL_FORMAT_H_
