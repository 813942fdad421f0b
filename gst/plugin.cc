// The memd GStreamer plugin (libgstmemd.so): memdsink and memdsrc.
#include <gst/gst.h>

#include "memd_sink.h"
#include "memd_src.h"

#ifndef PACKAGE
#define PACKAGE "memd"
#endif

static gboolean plugin_init(GstPlugin* plugin) {
  return gst_element_register(plugin, "memdsink", GST_RANK_NONE, GST_TYPE_MEMD_SINK) &&
         gst_element_register(plugin, "memdsrc", GST_RANK_NONE, GST_TYPE_MEMD_SRC);
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, memd,
                  "memd: raw frames between processes by reference, in memd pool memory",
                  plugin_init, MEMD_VERSION, "unknown", "memd", "https://github.com/memd/memd")
