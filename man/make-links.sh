#!/usr/bin/env bash
# Writes one link page per documented name into man/: man/<name>.3 holding
# ".so man3/<page>.3", where <page> is the manual page whose NAME section
# lists the name (".Nm name"), so that "man <name>" finds it.
# The names come from include/zmalloc.h, so the links cannot drift from it:
#   - every zm_* function declared with ZM_EXPORT;
#   - every Redis/Valkey name: "#define name zm_...", the function-like
#     "#define name(...)", and the lowercase static inline functions
#     (internal zm__* helpers excluded).
# A header name that no page lists is an error (document it first). Every
# other name a NAME section lists gets its link too (a function defined in
# src/ before its declaration reaches the header); tests/check_man.sh checks
# that each of those is a symbol of the library. Link pages that match no
# listed name are removed.
#
# Usage: man/make-links.sh [--check]
#   --check  change nothing; exit 1, listing the differences, when the links
#            are not what this script would write.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
header=$here/../include/zmalloc.h
pages=(zmalloc.3 zmalloc_used_memory.3 zmalloc_get_rss.3 zm_defrag_hint.3)
check=0
[[ ${1:-} == --check ]] && check=1

# The public names of the header, one a line, sorted.
header_names() {
  {
    grep -E '^ZM_EXPORT' "$header" | grep -oE '\bzm_[a-z0-9_]+\(' | tr -d '('
    grep -oE '^#define[[:space:]]+[a-z_][a-z0-9_]*[[:space:]]+zm_[a-z0-9_]+[[:space:]]*$' "$header" |
      awk '{print $2}'
    grep -oE '^#define[[:space:]]+[a-z_][a-z0-9_]*\(' "$header" | awk '{print $2}' | tr -d '('
    grep -oE '^static inline [a-z_ ]+[ *]([a-z_][a-z0-9_]*)\(' "$header" |
      grep -oE '[a-z_][a-z0-9_]*\($' | tr -d '('
  } | grep -v '^zm__' | sort -u
}

# The page (without .3) whose NAME section lists $1.
page_of() {
  local p
  for p in "${pages[@]}"; do
    if grep -qE "^\.Nm $1( ,)?\$" "$here/$p"; then
      echo "${p%.3}"
      return 0
    fi
  done
  return 1
}

names=$(header_names)
if [[ $(wc -l <<<"$names") -lt 60 ]]; then
  echo "make-links.sh: only $(wc -l <<<"$names") names found in $header" >&2
  exit 1
fi
# Every name the pages' NAME sections list (".Nm name ,").
listed=$(cd "$here" && sed -nE 's/^\.Nm ([A-Za-z_][A-Za-z0-9_]*)( ,)?$/\1/p' "${pages[@]}" | sort -u)
names=$(printf '%s\n%s\n' "$names" "$listed" | sort -u)

status=0
declare -A want=()
for name in $names; do
  if ! page=$(page_of "$name"); then
    echo "make-links.sh: $name (include/zmalloc.h) is in no page's NAME section: document it in one of ${pages[*]}" >&2
    status=1
    continue
  fi
  [[ $name == "$page" ]] && continue # the page itself
  want[$name]=".so man3/$page.3"
done
((status == 0)) || exit "$status"

for name in "${!want[@]}"; do
  file=$here/$name.3
  if [[ ! -f $file ]] || [[ $(cat "$file") != "${want[$name]}" ]]; then
    if ((check)); then
      echo "missing or wrong link: man/$name.3 (want \"${want[$name]}\")" >&2
      status=1
    else
      printf '%s\n' "${want[$name]}" >"$file"
    fi
  fi
done

# Stale links: one-line .so pages for names the header no longer has.
for file in "$here"/*.3; do
  base=$(basename "$file" .3)
  if [[ $(head -c 4 "$file") == ".so " && -z ${want[$base]+x} ]]; then
    if ((check)); then
      echo "stale link: man/$base.3" >&2
      status=1
    else
      rm -f "$file"
    fi
  fi
done

if ((check == 0)); then
  echo "make-links.sh: ${#want[@]} links for $(wc -l <<<"$names") names"
fi
exit "$status"
