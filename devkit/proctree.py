"""Process trees as /proc shows them: who descends from whom, what they use, killing them all."""

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from devkit.waiting import until

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass(frozen=True)
class Stat:
    """The fields of /proc/PID/stat these tools read."""

    state: str
    ppid: int
    cpu_ticks: int  # utime + stime + cutime + cstime: reaped children included
    rss_pages: int


def stat(pid: int) -> Stat | None:
    """The process's Stat, or None if it does not exist."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone, or going while we looked
        return None
    # The name in parentheses may hold spaces; the fields after it are plain (proc(5): field 3
    # onwards, so field N is fields[N - 3]).
    fields = text[text.rindex(")") + 2 :].split()
    cpu = sum(int(f) for f in fields[11:15])  # fields 14-17
    return Stat(fields[0], int(fields[1]), cpu, int(fields[21]))


def table() -> dict[int, Stat]:
    """Every process on the machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := stat(int(entry.name))) is not None:
            found[int(entry.name)] = info
    return found


def descendants(pid: int, processes: dict[int, Stat] | None = None) -> list[int]:
    """Children, grandchildren... of pid (in `processes`, by default every process now)."""
    children: dict[int, list[int]] = {}
    for child, info in (processes if processes is not None else table()).items():
        children.setdefault(info.ppid, []).append(child)
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    # PID 1 of a container may never reap orphans, so a zombie counts as dead.
    info = stat(pid)
    return info is not None and info.state not in ("Z", "X")


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def read_pid(path: Path) -> int | None:
    """The pid a pid file names first, or None if there is none."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def sigkill(pids: list[int], timeout: float = 10) -> None:
    """SIGKILL each of pids; return once all are dead, or after timeout seconds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    until(lambda: not any(alive(pid) for pid in pids), timeout=timeout)


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    processes = table()
    tree = [pid, *descendants(pid, processes)]
    pages = sum(processes[p].rss_pages for p in tree if p in processes)
    return pages * PAGE_KIB / 1024


def tree_cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """CPU time used so far by each named process and its descendants."""
    processes = table()
    used = {}
    for name, root in roots.items():
        tree = [root, *descendants(root, processes)]
        used[name] = sum(processes[p].cpu_ticks for p in tree if p in processes) / CLOCK_TICKS
    return used


def _socket_inodes(pids: list[int]) -> set[str]:
    """The inodes of the sockets these processes hold open."""
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):  # gone, or going while we looked
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[len("socket:[") : -1])
    return inodes


def connections_to(port: int, pids: list[int]) -> int:
    """Established TCP connections these processes hold to `port` (a server's, on any host)."""
    inodes = _socket_inodes(pids)
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                remote, state, inode = fields[2], fields[3], fields[9]
                established = state == "01"  # TCP_ESTABLISHED, in hex
                count += (
                    established and int(remote.rsplit(":", 1)[1], 16) == port and inode in inodes
                )
    return count
