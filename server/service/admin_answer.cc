#include "service/admin_answer.h"

#include <algorithm>
#include <tuple>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/reflection.h>

#include "memd/shared/text.h"

namespace memd {

uint32_t PageLimit(uint32_t requested) {
  return requested == 0 ? kMaxPageEntries : std::min(requested, kMaxPageEntries);
}

bool AnswerBudget::Take(const google::protobuf::Message& entry) {
  const size_t size = entry.ByteSizeLong();
  // A repeated element costs its tag (1 byte for field numbers up to 15,
  // 2 above) and its length prefix besides its bytes.
  const size_t cost =
      2 + google::protobuf::io::CodedOutputStream::VarintSize64(size) + size;
  if (cost > left_) return false;
  left_ -= cost;
  return true;
}

size_t KeepBusiest(std::vector<ChannelStats>* channels) {
  auto busier = [](const ChannelStats& a, const ChannelStats& b) {
    return std::make_tuple(a.depth + a.waiting_senders + a.waiting_receivers, a.sent + a.received,
                           std::string_view(b.name)) >
           std::make_tuple(b.depth + b.waiting_senders + b.waiting_receivers, b.sent + b.received,
                           std::string_view(a.name));
  };
  const size_t kept = std::min(channels->size(), kMaxChannelsListed);
  std::partial_sort(channels->begin(), channels->begin() + static_cast<ptrdiff_t>(kept),
                    channels->end(), busier);
  const size_t dropped = channels->size() - kept;
  channels->resize(kept);
  return dropped;
}

void MakeStringsValid(google::protobuf::Message* answer) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Descriptor* type = answer->GetDescriptor();
  const google::protobuf::Reflection* reflection = answer->GetReflection();
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    if (field->type() == FieldDescriptor::TYPE_STRING) {
      if (field->is_repeated()) {
        for (int j = 0; j < reflection->FieldSize(*answer, field); ++j) {
          std::string text = reflection->GetRepeatedString(*answer, field, j);
          if (!IsValidUtf8(text)) reflection->SetRepeatedString(answer, field, j, ValidUtf8(text));
        }
      } else {
        std::string text = reflection->GetString(*answer, field);
        if (!IsValidUtf8(text)) reflection->SetString(answer, field, ValidUtf8(text));
      }
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (field->is_repeated()) {
        for (int j = 0; j < reflection->FieldSize(*answer, field); ++j) {
          MakeStringsValid(reflection->MutableRepeatedMessage(answer, field, j));
        }
      } else if (reflection->HasField(*answer, field)) {
        MakeStringsValid(reflection->MutableMessage(answer, field));
      }
    }
  }
}

}  // namespace memd
