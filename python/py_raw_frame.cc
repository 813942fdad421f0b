#include "py_raw_frame.h"

#include <pybind11/stl.h>

#include "absl/strings/str_format.h"
#include "errors.h"
#include "memd/raw_frame.h"

namespace py = pybind11;

namespace memd::python {
namespace {

// The table entry of `format`; memd.InvalidArgument naming it when unknown.
const RawFormatInfo& FormatInfo(uint16_t format) {
  const RawFormatInfo* info = FindRawFormat(static_cast<RawFormat>(format));
  if (info == nullptr) {
    ThrowStatus(absl::InvalidArgumentError(
        absl::StrFormat("raw frame format %u is not a memd format (docs/wire-format.md)", format)));
  }
  return *info;
}

py::dict InfoDict(const RawFormatInfo& info) {
  py::list planes;
  size_t count = info.audio ? 1 : info.plane_count;
  for (size_t p = 0; p < count && p < 4; ++p) {
    planes.append(py::make_tuple(info.planes[p].unit_bytes, info.planes[p].h_shift,
                                 info.planes[p].v_shift));
  }
  py::dict d;
  d["number"] = static_cast<int>(info.format);
  d["name"] = info.name;
  d["audio"] = info.audio;
  d["planar_audio"] = info.planar_audio;
  d["plane_count"] = info.plane_count;
  d["planes"] = planes;  // (unit_bytes, h_shift, v_shift); audio: bytes per sample
  return d;
}

}  // namespace

void RegisterRawFrame(py::module_& m) {
  py::class_<RawFrame>(m, "RawFrame", R"(
One raw video or audio frame's description (memd/raw_frame.h): what travels
as a channel message's metadata. Planes are (buffer_index, stride_bytes,
offset_bytes) tuples into the message's buffers. Use memd.frames.)")
      .def(py::init<>())
      .def_property(
          "format", [](const RawFrame& f) { return static_cast<uint16_t>(f.format); },
          [](RawFrame& f, uint16_t v) { f.format = static_cast<RawFormat>(v); })
      .def_readwrite("flags", &RawFrame::flags)
      .def_readwrite("width", &RawFrame::width)
      .def_readwrite("height", &RawFrame::height)
      .def_readwrite("par_num", &RawFrame::par_num)
      .def_readwrite("par_den", &RawFrame::par_den)
      .def_readwrite("fps_num", &RawFrame::fps_num)
      .def_readwrite("fps_den", &RawFrame::fps_den)
      .def_property(
          "color",
          [](const RawFrame& f) {
            return py::make_tuple(f.color.range, f.color.matrix, f.color.transfer,
                                  f.color.primaries, f.color.chroma_location);
          },
          [](RawFrame& f, std::tuple<uint8_t, uint8_t, uint8_t, uint8_t, uint8_t> c) {
            std::tie(f.color.range, f.color.matrix, f.color.transfer, f.color.primaries,
                     f.color.chroma_location) = c;
          },
          "(range, matrix, transfer, primaries, chroma_location) as H.273 code points")
      .def_readwrite("samples", &RawFrame::samples)
      .def_readwrite("sample_rate_hz", &RawFrame::sample_rate_hz)
      .def_readwrite("channels", &RawFrame::channels)
      .def_readwrite("channel_mask", &RawFrame::channel_mask)
      .def_readwrite("pts_ns", &RawFrame::pts_ns)
      .def_readwrite("duration_ns", &RawFrame::duration_ns)
      .def_property(
          "planes",
          [](const RawFrame& f) {
            py::list out;
            for (const RawPlane& p : f.planes) {
              out.append(py::make_tuple(p.buffer_index, p.stride_bytes, p.offset_bytes));
            }
            return out;
          },
          [](RawFrame& f, const std::vector<std::tuple<uint32_t, uint32_t, uint64_t>>& planes) {
            f.planes.clear();
            for (const auto& [index, stride, offset] : planes) {
              f.planes.push_back(RawPlane{index, stride, offset});
            }
          })
      .def_readwrite("buffer_count", &RawFrame::buffer_count)
      .def_property(
          "extensions",
          [](const RawFrame& f) {
            py::list out;
            for (const RawExtension& e : f.extensions) {
              out.append(py::make_tuple(e.type, py::bytes(e.bytes)));
            }
            return out;
          },
          [](RawFrame& f, const std::vector<std::pair<uint32_t, std::string>>& extensions) {
            f.extensions.clear();
            for (const auto& [type, bytes] : extensions) f.extensions.push_back({type, bytes});
          });

  m.def("encode_raw_frame", [](const RawFrame& frame) {
    return py::bytes(ValueOrThrow(EncodeRawFrame(frame)));
  });
  m.def("decode_raw_frame", [](const py::bytes& metadata, const std::vector<uint64_t>& sizes) {
    return ValueOrThrow(DecodeRawFrame(std::string_view(metadata), sizes));
  });
  m.def("is_raw_frame", [](const py::bytes& metadata) {
    return IsRawFrame(std::string_view(metadata));
  });
  m.def("layout_raw_frame", [](RawFrame& frame, uint32_t stride_align) {
    const RawFormatInfo& info = FormatInfo(static_cast<uint16_t>(frame.format));
    if (stride_align == 0 || (stride_align & (stride_align - 1)) != 0) {
      ThrowStatus(absl::InvalidArgumentError(
          absl::StrFormat("stride_align %u is not a power of two", stride_align)));
    }
    // LayoutRawFrame REQUIRES the size (video) or samples and channels
    // (audio); Encode checks the limits of each afterwards.
    if (info.audio ? (frame.samples == 0 || frame.channels == 0)
                   : (frame.width == 0 || frame.height == 0)) {
      ThrowStatus(absl::InvalidArgumentError(absl::StrFormat(
          "a %s frame needs %s before its layout", info.name,
          info.audio ? "samples and channels" : "width and height")));
    }
    return LayoutRawFrame(frame, stride_align);
  });
  m.def("raw_plane_bytes", [](const RawFrame& frame, size_t plane) {
    if (plane >= frame.planes.size()) throw py::index_error("no such plane");
    return RawPlaneBytes(frame, plane);
  });
  m.def("raw_plane_row_bytes", [](uint16_t format, size_t plane, uint32_t width) {
    const RawFormatInfo& info = FormatInfo(format);
    if (info.audio || plane >= info.plane_count) throw py::index_error("no such video plane");
    return RawPlaneRowBytes(info, plane, width);
  });
  m.def("raw_plane_rows", [](uint16_t format, size_t plane, uint32_t height) {
    const RawFormatInfo& info = FormatInfo(format);
    if (info.audio || plane >= info.plane_count) throw py::index_error("no such video plane");
    return RawPlaneRows(info, plane, height);
  });
  m.def("raw_formats", [] {
    py::list out;
    for (const RawFormatInfo& info : RawFormats()) out.append(InfoDict(info));
    return out;
  });
  m.attr("RAW_FLAG_KEYFRAME") = kRawFrameKeyframe;
  m.attr("RAW_FLAG_END_OF_STREAM") = kRawFrameEndOfStream;
  m.attr("RAW_FLAG_DISCONT") = kRawFrameDiscont;
  m.attr("RAW_FLAG_CORRUPT") = kRawFrameCorrupt;
  m.attr("RAW_FLAG_INTERLACED") = kRawFrameInterlaced;
  m.attr("RAW_FLAG_TOP_FIELD_FIRST") = kRawFrameTopFieldFirst;
  m.attr("RAW_NO_TIMESTAMP") = kNoTimestamp;
}

}  // namespace memd::python
