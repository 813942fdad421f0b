#!/usr/bin/env bash
# libmemd exports its API and nothing else (issue 14): every dynamic symbol it
# defines is a C API function (memd_*) or a member of a public C++ class
# (memd/client.h, memd/buffer_pool.h) or a raw-frame function (memd/raw_frame.h),
# and the API is all there. Fails
# listing each symbol that does not belong.
# Usage: exported_symbols_test.sh path/to/libmemd.so
set -euo pipefail
lib=$1
symbols=$(nm -D --defined-only "$lib" | awk '{print $3}' | c++filt)
[[ -n $symbols ]] || { echo "FAIL: $lib exports nothing" >&2; exit 1; }
public='^(memd_[a-z_0-9]+|memd::(Buffer|Client|PooledBuffer|BufferPool)::[A-Za-z~].*|memd::(FindRawFormat|RawFormats|RawPlaneRowBytes|RawPlaneRows|RawPlaneBytes|LayoutRawFrame|EncodeRawFrame|DecodeRawFrame|IsRawFrame)(\[abi:cxx11\])?\(.*)$'
stray=$(grep -Ev "$public" <<<"$symbols" || true)
if [[ -n $stray ]]; then
  echo "FAIL: $lib exports symbols outside its API:" >&2
  echo "$stray" | head -40 >&2
  exit 1
fi
# Internal parts never show, even as members of public classes.
if grep -Eq '::Impl::|memd::v1::|google::protobuf|SessionLink|RefLedger' <<<"$symbols"; then
  echo "FAIL: $lib exports internal symbols:" >&2
  grep -E '::Impl::|memd::v1::|google::protobuf|SessionLink|RefLedger' <<<"$symbols" | head >&2
  exit 1
fi
# The API is exported: a few of each kind.
for want in memd_malloc memd_free memd_channel_send 'memd::Client::Connect(' \
            'memd::Client::Held(' 'memd::BufferPool::Get(' 'memd::Buffer::Release(' \
            'memd::EncodeRawFrame' 'memd::DecodeRawFrame('; do
  grep -Fq -- "$want" <<<"$symbols" || { echo "FAIL: $lib does not export $want" >&2; exit 1; }
done
echo "OK: $(wc -l <<<"$symbols") symbols, all of the API"
