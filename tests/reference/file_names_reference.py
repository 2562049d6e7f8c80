#!/usr/bin/python3
"""THINGSvision's image order and file_names.txt, re-implemented for the ImageDataset tests.

Usage: file_names_reference.py ROOT OUT [--class-names a,b,...] [--prefix-root]

Restates thingsvision/utils/data/{dataset,helpers}.py (v2.7.0):
  - ROOT with sub-directories is a class dataset: classes = sorted(sub-directory names), or the
    user's order; per class `sorted(os.walk(root/cls, followlinks=True))`, then `sorted(files)`;
    file_names.txt lines are os.path.join(root, cls, ..., file).
  - otherwise an instance dataset: sorted(names of files with an image extension); lines are the
    bare names.
with thingsvision-cpp's documented differences: extensions jpg, jpeg, png, tif, tiff, bmp, webp in any
case; names starting with '.' (files and directories) are skipped.

Writes OUT with one line per image: "<class index>\t<relative path>\t<THINGSvision line>"
(class index -1 for a flat folder), in extraction order.
"""
import os
import sys

EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")


def is_image(name):
    return not name.startswith(".") and name.lower().endswith(EXTENSIONS) and \
        os.path.splitext(name)[0] != ""


def hidden_below(root, dirpath):
    rel = os.path.relpath(dirpath, root)
    return any(part.startswith(".") for part in rel.split(os.sep) if part != ".")


def reference(root, class_names=None):
    """Returns [(class_index, relative_path, thingsvision_line)] in extraction order."""
    children = sorted(d.name for d in os.scandir(root) if d.is_dir() and not d.name.startswith("."))
    rows = []
    if not children:
        names = sorted(f.name for f in os.scandir(root) if f.is_file() and is_image(f.name))
        return [(-1, name, name) for name in names]
    classes = class_names if class_names else children
    for index, cls in enumerate(classes):
        target_dir = os.path.join(root, cls)
        for dirpath, _, files in sorted(os.walk(target_dir, followlinks=True)):
            if hidden_below(target_dir, dirpath):
                continue
            for file in sorted(files):
                path = os.path.join(dirpath, file)
                if os.path.isfile(path) and is_image(file):
                    rows.append((index, os.path.relpath(path, root).replace(os.sep, "/"), path))
    return rows


def main(argv):
    root, out = argv[1], argv[2]
    class_names = None
    if "--class-names" in argv:
        class_names = argv[argv.index("--class-names") + 1].split(",")
    rows = reference(root, class_names)
    with open(out, "w", encoding="utf-8", errors="surrogateescape", newline="\n") as f:
        for index, relative, line in rows:
            f.write(f"{index}\t{relative}\t{line}\n")


if __name__ == "__main__":
    main(sys.argv)
