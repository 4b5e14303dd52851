"""The parity probe: a job that prints, as one JSON line, the environment contract it ran
under, so a test can diff a local run against a cluster run of the same spec.

Run as `python -c <this file's text> ARG...` (the image need not hold it). Arguments:
the volume paths (the spec passes its volume references), then an optional `exit=N`."""

import json
import os
import sys

import mizzen

args = [a for a in sys.argv[1:] if not a.startswith("exit=")]
code = int(next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("exit=")), "0"))
volumes = {}
for name in sorted(k for k in os.environ if k.startswith("MIZZEN_VOLUME_")):
    volume = name.removeprefix("MIZZEN_VOLUME_").lower()
    path = os.environ[name]
    volumes[volume] = {
        "sdk_matches_env": str(mizzen.volume(volume)) == path,
        "argument_matches_env": path in args,
        "exists": os.path.isdir(path),
        "writable": os.access(path, os.W_OK),
    }
secret_vars = sorted(k for k in os.environ if k.startswith("MIZZEN_SECRET_"))
contract = {
    "mizzen_vars": sorted(k for k in os.environ if k.startswith("MIZZEN_")),
    "volumes": volumes,
    "config": {k: os.environ.get(k) for k in ("ROWS", "SEED", "MIN_ACCURACY")},
    "sdk_config": mizzen.config("ROWS"),
    "secret_vars": secret_vars,
    "sdk_secret": mizzen.secret("probe", "token") == os.environ.get(secret_vars[0], "?"),
    "cwd_is_project": os.path.exists("mizzen.yaml"),
    "pythonunbuffered": os.environ.get("PYTHONUNBUFFERED"),
    "run_id_matches": os.environ.get("MIZZEN_RUN_ID", "") != "",
    "target": os.environ.get("MIZZEN_TARGET"),
    "datasets": {
        name: mizzen.dataset(name).path.endswith(f"tables/{name}")
        for name in json.loads(os.environ.get("MIZZEN_DATASETS") or "{}").get("datasets", {})
    },
}
print("CONTRACT " + json.dumps(contract, sort_keys=True), flush=True)
sys.exit(code)
