// memctl's output formats: the table (plain or wide) a command formats, or its
// JSON document as JSON or YAML.
#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "memctl/memctl.h"

namespace memd {
namespace {

// A JSON scalar is a valid YAML flow scalar (strings stay double-quoted, so
// "0x1", "yes" or "1e3" keep their type).
void AppendYaml(const nlohmann::ordered_json& value, int indent, std::string* out) {
  std::string pad(static_cast<size_t>(indent), ' ');
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      out->append(pad + nlohmann::ordered_json(key).dump() + ":");
      if ((item.is_object() || item.is_array()) && !item.empty()) {
        out->append("\n");
        AppendYaml(item, indent + 2, out);
      } else {
        out->append(" " + item.dump() + "\n");
      }
    }
  } else if (value.is_array()) {
    for (const auto& item : value) {
      if (item.is_object() && !item.empty()) {
        // "- " then the object's first key on the same line, the rest under it.
        std::string nested;
        AppendYaml(item, indent + 2, &nested);
        out->append(pad + "- " + nested.substr(static_cast<size_t>(indent) + 2));
      } else if (item.is_array() && !item.empty()) {
        out->append(pad + "-\n");
        AppendYaml(item, indent + 2, out);
      } else {
        out->append(pad + "- " + item.dump() + "\n");
      }
    }
  } else {
    out->append(pad + value.dump() + "\n");
  }
}

}  // namespace

std::optional<Output> ParseOutput(const std::string& text) {
  if (text == "table") return Output::kTable;
  if (text == "wide") return Output::kWide;
  if (text == "json") return Output::kJson;
  if (text == "yaml") return Output::kYaml;
  return std::nullopt;
}

std::string ToYaml(const nlohmann::ordered_json& doc) {
  std::string out = "---\n";
  AppendYaml(doc, 0, &out);
  return out;
}

std::string Render(Output output, const nlohmann::ordered_json& doc,
                   const std::function<std::string(bool wide)>& table) {
  switch (output) {
    case Output::kJson: return doc.dump(2) + "\n";
    case Output::kYaml: return ToYaml(doc);
    case Output::kWide: return table(true);
    case Output::kTable: break;
  }
  return table(false);
}

}  // namespace memd
