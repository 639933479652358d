#!/usr/bin/env bash
# The tracked experiment archives (experiments/, over 200 MB) exceed the working tree the
# device tool sends (64 MiB). `detach` takes experiments/ out of git's index and ignores it
# (.git/info/exclude; the files stay on disk and keep changing), so a device call sends the
# code alone; name the archive a call needs in the call's `carry` (docs/benchmarks.md, "GPU
# check"). `attach` gives the index back its HEAD entries and drops the exclude line. Make no
# commit in between: it would record experiments/ as deleted.
#   bash bench/device_tree.sh detach   # then the device call(s)
#   bash bench/device_tree.sh attach
set -euo pipefail
cd "$(dirname "$0")/.."
exclude=.git/info/exclude
case "${1:-}" in
  detach)
    git rm -r -q --cached experiments
    grep -qx /experiments/ "$exclude" 2> /dev/null || echo /experiments/ >> "$exclude"
    echo "experiments/ detached: $(git ls-files -z | xargs -0 du -cb 2> /dev/null | tail -1 | cut -f1) bytes tracked"
    ;;
  attach)
    git reset -q HEAD -- experiments
    sed -i '\|^/experiments/$|d' "$exclude"
    echo "experiments/ attached"
    ;;
  *)
    echo "usage: $0 detach|attach" >&2
    exit 2
    ;;
esac
