"""`lenet5 feedback`: the corrections of a feedback store, counted or exported as PNG."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lenet5.cli.common import Commands
from lenet5.errors import Lenet5Error


def add_parser(sub: Commands) -> None:
    p = sub.add_parser(
        "feedback",
        help="corrections collected by the page: counts, or export as PNG files",
        description="Read a feedback store (the SQLite file of `lenet5 serve --feedback`).",
    )
    fb_sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    st = fb_sub.add_parser("stats", help="counts per label and per (predicted, label) pair")
    st.add_argument("file", type=Path, metavar="FILE", help="feedback store")
    st.add_argument("--json", action="store_true", help="print one JSON object")
    fe = fb_sub.add_parser(
        "export",
        help="write one PNG per correction, <id>_<label>.png",
        description="Write the 28x28 input the model saw for each correction as DIR/<id>_<label>"
        ".png (white on black, readable by `lenet5 predict`).",
    )
    fe.add_argument("file", type=Path, metavar="FILE", help="feedback store")
    fe.add_argument("directory", type=Path, metavar="DIR", help="output folder")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from lenet5.data.feedback import label_name, open_existing
    from lenet5.files import atomic_write

    with open_existing(args.file) as store:
        if args.action == "stats":
            stats = store.stats()
            if args.json:
                print(json.dumps(stats))
                return 0
            print(f"{args.file}: {stats['total']} corrections")
            print("label " + "".join(f"{d:>6}" for d in range(10)))
            print("count " + "".join(f"{stats['per_label'][str(d)]:>6}" for d in range(10)))
            print(f"not a digit: {stats['per_label']['not-a-digit']}")
            for pair in sorted(stats["pairs"], key=lambda p: -p["count"]):
                label = label_name(pair["label"]).replace("-", " ")
                print(f"read {pair['predicted']} for {label}: {pair['count']}")
            return 0
        written = 0
        for row in store.corrections():
            path = args.directory / f"{row.id}_{label_name(row.label)}.png"
            picture = Image.fromarray(row.input)
            try:
                atomic_write(path, lambda f, picture=picture: picture.save(f, format="PNG"))
            except OSError as exc:
                raise Lenet5Error(f"cannot write {path}: {exc.strerror or exc}") from None
            written += 1
        print(f"wrote {written} PNG files to {args.directory}")
    return 0
