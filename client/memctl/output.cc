// memctl's output formats: the table (plain or wide) a command formats, or its
// JSON document as JSON or YAML (yaml-cpp's emitter: plain keys, as kubectl
// writes them).
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "memctl/format.h"

namespace memd {
namespace {

// True when a YAML reader would take `text` written plain for something
// other than a string (YAML 1.1 and 1.2 core: null, booleans, numbers), or
// would trim it. Such strings are written double-quoted, so a handle written
// as the string "1234" stays a string, as in the JSON document.
bool NeedsQuotes(const std::string& text) {
  if (text.empty() || absl::ascii_isspace(static_cast<unsigned char>(text.front())) ||
      absl::ascii_isspace(static_cast<unsigned char>(text.back()))) {
    return true;
  }
  std::string lower = absl::AsciiStrToLower(text);
  for (const char* word : {"~", "null", "true", "false", "yes", "no", "on", "off", "y", "n",
                           ".nan", ".inf", "-.inf", "+.inf"}) {
    if (lower == word) return true;
  }
  // Anything that starts like a number (digits, a sign, a dot, 0x, 0o):
  // quoting a few strings that are not numbers costs nothing.
  char first = text.front();
  return absl::ascii_isdigit(static_cast<unsigned char>(first)) || first == '-' ||
         first == '+' || first == '.';
}

void Emit(const nlohmann::ordered_json& value, YAML::Emitter& out) {
  switch (value.type()) {
    case nlohmann::ordered_json::value_t::object:
      if (value.empty()) out << YAML::Flow;  // `{}` on the key's line
      out << YAML::BeginMap;
      for (const auto& [key, item] : value.items()) {
        out << YAML::Key << key << YAML::Value;
        Emit(item, out);
      }
      out << YAML::EndMap;
      return;
    case nlohmann::ordered_json::value_t::array:
      if (value.empty()) out << YAML::Flow;  // `[]` on the key's line
      out << YAML::BeginSeq;
      for (const auto& item : value) Emit(item, out);
      out << YAML::EndSeq;
      return;
    case nlohmann::ordered_json::value_t::string: {
      const std::string& text = value.get_ref<const std::string&>();
      if (NeedsQuotes(text)) out << YAML::DoubleQuoted;
      out << text;
      return;
    }
    case nlohmann::ordered_json::value_t::boolean:
      out << value.get<bool>();
      return;
    case nlohmann::ordered_json::value_t::number_integer:
      out << value.get<int64_t>();
      return;
    case nlohmann::ordered_json::value_t::number_unsigned:
      out << value.get<uint64_t>();
      return;
    case nlohmann::ordered_json::value_t::number_float:
      out << value.get<double>();
      return;
    default:
      out << YAML::Null;
      return;
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
  YAML::Emitter out;
  out.SetBoolFormat(YAML::TrueFalseBool);
  out.SetNullFormat(YAML::LowerNull);
  out << YAML::BeginDoc;
  Emit(doc, out);
  return std::string(out.c_str()) + "\n";
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
