#!/bin/sh
# Rebuilds native/bin/<program>-<arch> from native/<program>.c (setid, pty, publish): freestanding static ELF
# executables, no libc (their system calls come from native/sys.h).
# Needs clang and lld (Debian: apt-get install clang-14 lld-14; CLANG=/LLD= name others).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
clang=${CLANG:-clang-14}
lld=${LLD:-ld.lld-14}
mkdir -p "$here/bin"
obj=$(mktemp)
trap 'rm -f "$obj"' EXIT
for program in setid pty publish; do
  for arch in x86_64 aarch64; do
    "$clang" --target="$arch-linux-gnu" -std=c11 -Os -Wall -Wextra -Werror -ffreestanding -fno-builtin \
      -fno-stack-protector -fno-pie -fno-asynchronous-unwind-tables -fno-unwind-tables \
      -c "$here/$program.c" -o "$obj"
    "$lld" -static -nostdlib --no-pie -e _start --gc-sections --build-id=none -z noexecstack -z norelro -s \
      -o "$here/bin/$program-$arch" "$obj"
    echo "native/bin/$program-$arch: $(wc -c < "$here/bin/$program-$arch") bytes"
  done
done
