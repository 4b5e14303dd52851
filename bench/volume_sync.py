"""Blob volume materialisation vs a plain fsspec download, on a real S3 server (SeaweedFS).

    .venv/bin/python bench/volume_sync.py [--files 1000] [--size-kb 500] [--rounds 2]

Starts `weed mini` on free loopback ports, uploads ~500 MB in ~1,000 objects, then in the
same run measures (best of --rounds, alternating so neither side gets a warmer server):
  baseline  s3fs `fs.get(prefix, dir, recursive=True)`
  cold      `VolumeSession.prepare()` into an empty cache
  warm      a second prepare inside the cache interval (no listing, no transfer)
  checked   a prepare after the interval with nothing changed (one listing, no transfer)
and prints throughput and the ratio cold/baseline (target >= 0.8).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.servers

from tests.servers import weed_argv

from mizzen.plan.model import BlobSource, Mount, StoreRef
from mizzen.storage.volumes import VolumeSession


def start_weed(data: Path, key: str, secret: str) -> tuple[subprocess.Popen[bytes], str]:
    args, s3_port = weed_argv(data)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    proc = subprocess.Popen(
        args,
        cwd=data,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return proc, f"http://127.0.0.1:{s3_port}"


def wait_ready(fs: object, bucket: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            fs.mkdir(bucket)  # type: ignore[attr-defined]
            return
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--size-kb", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

    import s3fs

    work = Path(tempfile.mkdtemp(prefix="mizzen-bench-"))
    key, secret = "bench", secrets.token_hex(8)
    (work / "weed").mkdir()
    proc, endpoint = start_weed(work / "weed", key, secret)
    try:
        fs = s3fs.S3FileSystem(
            key=key,
            secret=secret,
            client_kwargs={"endpoint_url": endpoint},
            use_listings_cache=False,
        )
        bucket = "bench"
        wait_ready(fs, bucket, proc)
        src = work / "src"
        for i in range(args.files):
            part = src / f"part={i % 10}"
            part.mkdir(parents=True, exist_ok=True)
            (part / f"f{i:05d}.bin").write_bytes(os.urandom(args.size_kb * 1024))
        total = args.files * args.size_kb * 1024
        up = timed(lambda: fs.put(str(src) + "/", f"{bucket}/data/", recursive=True))
        shutil.rmtree(src)
        print(f"uploaded {args.files} objects, {total / 1e6:.0f} MB in {up:.1f}s")

        options = {"endpoint_url": endpoint, "key": key, "secret": secret}
        source = BlobSource(
            store=StoreRef("lake", f"s3://{bucket}", options), path="data", cache_seconds=600.0
        )
        clock = [time.time()]
        base_times, cold_times = [], []
        for r in range(args.rounds):
            dest = work / f"baseline-{r}"
            base_times.append(
                timed(lambda dest=dest: fs.get(f"{bucket}/data/", str(dest) + "/", recursive=True))
            )
            shutil.rmtree(dest)
            mount = Mount(
                volume="raw", kind="blob", path=str(work / f"cache-{r}" / "raw"), blob=source
            )
            session = VolumeSession((mount,), "bench", now=lambda: clock[0])
            cold_times.append(timed(session.prepare))
            assert session.stats["raw"].downloaded == args.files, session.stats
            if r < args.rounds - 1:
                shutil.rmtree(work / f"cache-{r}")
        warm_session = VolumeSession((mount,), "bench", now=lambda: clock[0])
        warm = timed(warm_session.prepare)
        assert warm_session.transfers == 0
        clock[0] += 601
        checked_session = VolumeSession((mount,), "bench", now=lambda: clock[0])
        checked = timed(checked_session.prepare)
        assert checked_session.transfers == 0 and checked_session.stats["raw"].listed == args.files

        base, cold = min(base_times), min(cold_times)
        mb = total / 1e6
        rows = [
            ("baseline fs.get(recursive)", base, f"{mb / base:.0f} MB/s", "1.00"),
            ("cold VolumeSession.prepare", cold, f"{mb / cold:.0f} MB/s", f"{base / cold:.2f}"),
            ("warm (inside cache interval)", warm, "0 objects moved", f"{warm / cold:.4f} of cold"),
            (
                "checked (after interval, unchanged)",
                checked,
                "0 objects moved",
                f"{checked / cold:.3f} of cold",
            ),
        ]
        print(f"\n{args.files} objects x {args.size_kb} KB on SeaweedFS, best of {args.rounds}")
        print(f"{'case':<38}{'seconds':>9}  {'rate':<16}ratio")
        for name, secs, rate, ratio in rows:
            print(f"{name:<38}{secs:>9.3f}  {rate:<16}{ratio}")
        verdict = "meets" if base / cold >= 0.8 else "misses"
        print(f"\ncold throughput ratio {base / cold:.2f} {verdict} the 0.8 target")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
