#!/usr/bin/env bash
# install/install.sh — puts hakmem under a prefix and takes it away again;
# `make install` and `make uninstall` call it (install/install.mk).
#
#   install.sh install --prefix P [--destdir D] --default VARIANT --version X \
#                      [--build-dir build] BUILD...
#   install.sh uninstall --prefix P [--destdir D]
#
# Under D/P (D is empty unless staging for a package), for each BUILD (a
# variant, or a checked build <variant>-check):
#   lib/hakmem/<build>/libhakmem.so, libhakmem.a
#   lib/libhakmem.so, lib/libhakmem.a   symlinks to the default variant's
#   include/hakmem.h, include/hakmem_allocator.hpp
#   lib/pkgconfig/hakmem.pc             says prefix=P (not D/P)
#   lib/hakmem/hakmem-symbolize         file:line for the leak report (found by
#                                       libhakmem.so next to itself)
#   bin/hakmem                          the launcher; finds the libraries
#                                       relative to itself, so D/P/bin/hakmem
#                                       works before the files reach P
#   bin/hakmem-trace                    the allocation tracker's command; finds
#   lib/hakmem/libhaktrack.so           its preload and its plot script
#   share/hakmem/trace_html.py          relative to itself too
#   lib/hakmem/.manifest                what the install wrote
# The manifest has one line per entry, paths relative to D/P: "file <path>" for
# each file or symlink written, "dir <path>" for each directory the install
# created (a directory that was there before is not listed). Installing again
# into the same prefix keeps the earlier lines, so uninstall removes what any
# install put there. Uninstall removes exactly the listed files and the
# manifest, then each listed directory if it is empty; nothing else, and
# nothing outside D/P.
set -euo pipefail
me=hakmem
die() { echo "$me: $*" >&2; exit 1; }
usage() {
  sed -n '4,7p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[ $# -ge 1 ] || usage
action=$1; shift
prefix='' destdir='' default='' version='' builddir=build
builds=()
while [ $# -gt 0 ]; do
  case $1 in
  --prefix) prefix=${2-}; shift 2 || usage ;;
  --destdir) destdir=${2-}; shift 2 || usage ;;
  --default) default=${2-}; shift 2 || usage ;;
  --version) version=${2-}; shift 2 || usage ;;
  --build-dir) builddir=${2-}; shift 2 || usage ;;
  -*) echo "$me: unknown option '$1'" >&2; usage ;;
  *) builds+=("$1"); shift ;;
  esac
done
case $prefix in
*[!A-Za-z0-9._+@%,=~/-]*) die "PREFIX may hold only letters, digits and ._+@%,=~-/ (it goes into LD_PRELOAD and the pkg-config file): '$prefix'" ;;
/*) ;;
'') die "no prefix given (make install PREFIX=/absolute/path)" ;;
*) die "PREFIX must be an absolute path, not '$prefix'" ;;
esac
prefix=${prefix%/}
root=$destdir$prefix
[ -n "$root" ] || root=/ # PREFIX=/ and no DESTDIR
manifest_rel=lib/hakmem/.manifest
manifest=$root/$manifest_rel

# read_manifest: checks every line of the manifest and puts it in listed[];
# fails on a line that is not "file|dir <relative path without . or ..>", so
# that nothing is removed on the word of a damaged manifest.
listed=()
read_manifest() {
  local line kind path n=0
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    case $line in *' '*) ;; *) die "$manifest:$n: not 'file <path>' or 'dir <path>': $line" ;; esac
    kind=${line%% *} path=${line#* }
    case $kind in file | dir) ;; *) die "$manifest:$n: not 'file <path>' or 'dir <path>': $line" ;; esac
    case /$path/ in
    //* | */../* | */./* | *//*) die "$manifest:$n: not a plain path inside the prefix: $path" ;;
    esac
    listed+=("$line")
  done <"$manifest"
}

# ---- install ------------------------------------------------------------------------
do_install() {
  local here src b
  here=$(cd "$(dirname "$0")/.." && pwd)
  [ ${#builds[@]} -gt 0 ] || die "no builds to install"
  [ -n "$version" ] || die "no --version given"
  [[ " ${builds[*]} " == *" $default "* ]] || die "the default variant '$default' is not among the builds installed (${builds[*]})"
  for b in "${builds[@]}"; do
    case $b in */* | .* | '') die "not a build name: '$b'" ;; esac
    for src in "$builddir/$b/libhakmem.so" "$builddir/$b/libhakmem.a"; do
      [ -f "$src" ] || die "$src is missing (make builds it)"
    done
  done
  for src in "$builddir/hakmem-symbolize" "$here/core/hakmem.h" "$here/include/hakmem_allocator.hpp" "$here/install/hakmem.in" "$here/install/hakmem.pc.in" \
             "$builddir/hakmem-trace" "$builddir/libhaktrack.so" "$here/tracker/trace_html.py"; do
    [ -f "$src" ] || die "$src is missing"
  done

  local entries=()
  if [ -f "$manifest" ]; then read_manifest; entries=("${listed[@]}"); fi
  # need_dir <rel>: creates <rel> and its missing parents under the root,
  # listing each one it creates.
  need_dir() {
    local rel=$1 sub='' part
    local IFS=/
    for part in $rel; do
      sub=${sub:+$sub/}$part
      if [ ! -d "$root/$sub" ]; then
        mkdir "$root/$sub" || die "cannot create $root/$sub"
        entries+=("dir $sub")
      fi
    done
  }
  # put <mode> <source> <rel>: copies a file (install unlinks the old one first,
  # so a running program keeps its mapping of a replaced library)
  put() {
    install -m "$1" "$2" "$root/$3" || die "cannot install $root/$3"
    entries+=("file $3")
  }
  link() { # link <target> <rel>
    ln -sfn "$1" "$root/$2" || die "cannot link $root/$2"
    entries+=("file $2")
  }
  mkdir -p "$root" || die "cannot create $root"

  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  need_dir lib/hakmem
  for b in "${builds[@]}"; do
    need_dir "lib/hakmem/$b"
    put 644 "$builddir/$b/libhakmem.so" "lib/hakmem/$b/libhakmem.so"
    put 644 "$builddir/$b/libhakmem.a" "lib/hakmem/$b/libhakmem.a"
  done
  put 755 "$builddir/hakmem-symbolize" lib/hakmem/hakmem-symbolize
  link "hakmem/$default/libhakmem.so" lib/libhakmem.so
  link "hakmem/$default/libhakmem.a" lib/libhakmem.a
  need_dir include
  put 644 "$here/core/hakmem.h" include/hakmem.h
  put 644 "$here/include/hakmem_allocator.hpp" include/hakmem_allocator.hpp
  need_dir lib/pkgconfig
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" -e "s|@DEFAULT_VARIANT@|$default|g" \
    "$here/install/hakmem.pc.in" >"$tmp/hakmem.pc"
  put 644 "$tmp/hakmem.pc" lib/pkgconfig/hakmem.pc
  need_dir bin
  sed -e "s|@VERSION@|$version|g" -e "s|@DEFAULT_VARIANT@|$default|g" "$here/install/hakmem.in" >"$tmp/hakmem"
  put 755 "$tmp/hakmem" bin/hakmem
  put 755 "$builddir/hakmem-trace" bin/hakmem-trace
  put 644 "$builddir/libhaktrack.so" lib/hakmem/libhaktrack.so
  need_dir share/hakmem
  put 644 "$here/tracker/trace_html.py" share/hakmem/trace_html.py

  printf '%s\n' "${entries[@]}" | LC_ALL=C sort -u >"$tmp/manifest"
  install -m 644 "$tmp/manifest" "$manifest" || die "cannot write $manifest"
  echo "$me: installed ${builds[*]} (default $default) under $root; 'make uninstall PREFIX=$prefix${destdir:+ DESTDIR=$destdir}' removes them"
}

# ---- uninstall ----------------------------------------------------------------------
do_uninstall() {
  [ ${#builds[@]} -eq 0 ] || die "uninstall takes no builds (it removes what the manifest lists)"
  [ -f "$manifest" ] || die "nothing to uninstall under $root: no $manifest"
  local line path files=0 dirs=0 kept=()
  read_manifest
  [ ${#listed[@]} -gt 0 ] || die "$manifest is empty"
  # Every listed file must be a file, a symlink or gone before anything goes.
  for line in "${listed[@]}"; do
    path=$root/${line#* }
    if [ "${line%% *}" = file ] && [ -e "$path" ] && [ ! -L "$path" ] && [ ! -f "$path" ]; then
      die "$path is listed as a file but is not one; removed nothing"
    fi
  done
  for line in "${listed[@]}"; do
    [ "${line%% *}" = file ] || continue
    path=$root/${line#* }
    if [ -L "$path" ] || [ -e "$path" ]; then
      rm -f "$path" || die "cannot remove $path"
      files=$((files + 1))
    fi
  done
  rm -f "$manifest"
  # Directories deepest first (a path sorts after its parent).
  while IFS= read -r path; do
    [ -n "$path" ] || continue
    [ -d "$root/$path" ] || continue
    if rmdir "$root/$path" 2>/dev/null; then dirs=$((dirs + 1)); else kept+=("$root/$path"); fi
  done < <(printf '%s\n' "${listed[@]}" | sed -n 's/^dir //p' | LC_ALL=C sort -r)
  echo "$me: removed $files files and $dirs directories from $root"
  [ ${#kept[@]} -eq 0 ] || echo "$me: kept ${kept[*]}: not empty (files the install did not put there)" >&2
}

case $action in
install) do_install ;;
uninstall) do_uninstall ;;
*) echo "$me: unknown action '$action'" >&2; usage ;;
esac
