#include "service/admin_answer.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>

#include "memd/shared/text.h"

namespace memd {

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
