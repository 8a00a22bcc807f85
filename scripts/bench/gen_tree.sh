#!/bin/sh
# Generates a tree of N small Markdown files under DIR for the benchmarks:
# 100 files per directory, directories nested two deep (DIR/dAA/dBB/),
# names and contents a function of the file's number only, so two runs
# give the same tree. Usage: gen_tree.sh N DIR
set -eu
if [ $# -ne 2 ]; then
  echo "usage: gen_tree.sh N DIR" >&2
  exit 2
fi
n=$1
dir=$2
mkdir -p "$dir"
cd "$dir"
# Directories first, then the files, each written and closed by awk.
awk -v n="$n" 'BEGIN {
  for (d = 0; d * 100 < n; d++) printf "d%02d/d%02d\n", int(d / 100), d % 100
}' | xargs mkdir -p
awk -v n="$n" 'BEGIN {
  for (i = 0; i < n; i++) {
    d = int(i / 100)
    path = sprintf("d%02d/d%02d/f%06d.md", int(d / 100), d % 100, i)
    printf "# Document %d\n\nThis is file %d of the benchmark tree.\n", \
      i, i > path
    printf "It has a second paragraph, %d words long.\n", i % 97 > path
    close(path)
  }
}'
