"""Run the API and the worker side by side, restarting each when code changes.

`tox run -e run` starts this. Ctrl-C or SIGTERM stops both, and so does the
end of the process that started this one (tox, killed with SIGTERM, leaves
its children running), so nothing is left behind. If `fastapi dev` or
watchfiles exits, the other is stopped too; a worker that crashes is started
again by watchfiles at the next code change.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import FrameType

COMMANDS = {
    # `fastapi dev` reads the app from [tool.fastapi] in pyproject.toml, the port from PORT.
    "api": ["fastapi", "dev", "--reload-dir", "src"],
    # arq's own --watch restarts the worker loop but keeps the old code;
    # watchfiles restarts the whole process, so changed jobs are loaded.
    "worker": [
        "watchfiles",
        "--filter",
        "python",
        "--sigint-timeout",
        "10",
        "arq {{ cookiecutter.package_name }}.worker.main.WorkerSettings",
        "src",
    ],
}
STOP_WAIT_S = 15.0


def main() -> int:
    parent = os.getppid()
    stopping: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    # Each in a process group of its own, so a Ctrl-C reaches it once, from here.
    processes = {
        name: subprocess.Popen(args, process_group=0)  # noqa: S603 (the commands above)
        for name, args in COMMANDS.items()
    }
    exited: str | None = None
    while not stopping and os.getppid() == parent:
        exited = next((name for name, p in processes.items() if p.poll() is not None), None)
        if exited:
            print(f"dev: {exited} exited with {processes[exited].returncode}", file=sys.stderr)
            break
        time.sleep(0.2)
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_WAIT_S
    for process in processes.values():
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if exited is None:
        return 0
    return processes[exited].returncode or 1


if __name__ == "__main__":
    sys.exit(main())
