#!/bin/sh
# Rebuilds native/bin/setid-<arch> from native/setid.c: freestanding static ELF executables, no libc.
# Needs clang and lld (Debian: apt-get install clang-14 lld-14; CLANG=/LLD= name others).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
clang=${CLANG:-clang-14}
lld=${LLD:-ld.lld-14}
mkdir -p "$here/bin"
obj=$(mktemp)
trap 'rm -f "$obj"' EXIT
for arch in x86_64 aarch64; do
  "$clang" --target="$arch-linux-gnu" -std=c11 -Os -Wall -Wextra -Werror -ffreestanding -fno-builtin \
    -fno-stack-protector -fno-pie -fno-asynchronous-unwind-tables -fno-unwind-tables \
    -c "$here/setid.c" -o "$obj"
  "$lld" -static -nostdlib --no-pie -e _start --gc-sections --build-id=none -z noexecstack -z norelro -s \
    -o "$here/bin/setid-$arch" "$obj"
  echo "native/bin/setid-$arch: $(wc -c < "$here/bin/setid-$arch") bytes"
done
