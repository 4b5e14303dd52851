"""Distributed training on one machine: N worker processes with the training operator's env.

In the cluster, the training operator starts one pod per replica and sets the rendezvous
environment; locally each replica is a process on 127.0.0.1 with the same variables, so the
same training code runs unchanged (`torch.distributed.init_process_group("gloo")` reads
MASTER_ADDR/MASTER_PORT/WORLD_SIZE/RANK; TensorFlow's MultiWorkerMirroredStrategy reads TF_CONFIG).
"""

from __future__ import annotations

import json
import socket
import sys

from mizzen.kinds.distributed import DistributedPlan

LOCALHOST = "127.0.0.1"


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOCALHOST, port))
        except OSError:
            return False
    return True


def free_ports(count: int, *, avoid: set[int] | None = None) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 right now (chosen by the OS)."""
    taken = set(avoid or ())
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOCALHOST, 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            taken.add(port)
            ports.append(port)
    return ports


def master_port(configured: int) -> int:
    """The configured rendezvous port, or a free one when something else holds it."""
    return configured if port_is_free(configured) else free_ports(1)[0]


def loopback_interface() -> str:
    return "lo0" if sys.platform == "darwin" else "lo"


def pytorch_envs(plan: DistributedPlan, port: int) -> list[dict[str, str]]:
    """Per worker, what the training operator sets for a PyTorchJob (rank 0 is the master)."""
    n = plan.workers
    envs = []
    for rank in range(n):
        envs.append(
            {
                "MASTER_ADDR": LOCALHOST,
                "MASTER_PORT": str(port),
                "WORLD_SIZE": str(n),
                "RANK": str(rank),
                "LOCAL_RANK": str(rank),
                "PET_MASTER_ADDR": LOCALHOST,
                "PET_MASTER_PORT": str(port),
                "PET_NNODES": str(n),
                "PET_NODE_RANK": str(rank),
                "GLOO_SOCKET_IFNAME": loopback_interface(),
                "PYTHONUNBUFFERED": "1",
            }
        )
    return envs


def tensorflow_envs(plan: DistributedPlan, ports: list[int]) -> list[dict[str, str]]:
    """Per worker, the TF_CONFIG the training operator sets for a TFJob of N workers."""
    cluster = {"worker": [f"{LOCALHOST}:{p}" for p in ports]}
    return [
        {
            "TF_CONFIG": json.dumps(
                {
                    "cluster": cluster,
                    "task": {"type": "worker", "index": index},
                    "environment": "cloud",
                },
                separators=(",", ":"),
            ),
            "PYTHONUNBUFFERED": "1",
        }
        for index in range(plan.workers)
    ]


def worker_envs(plan: DistributedPlan) -> list[dict[str, str]]:
    if plan.framework == "pytorch":
        return pytorch_envs(plan, master_port(plan.master_port))
    return tensorflow_envs(plan, free_ports(plan.workers))
