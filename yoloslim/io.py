"""Output files and folders: atomic writes, writable-folder checks up front, and one owner per output folder.

- atomic_write: write to a temporary sibling, then rename, so a crash never leaves half a file; the file gets
  the permissions a plain open() would give (0644 under umask 022), not mkstemp's 0600.
- writable_dir: create (or find) an output folder and prove a file can be made in it, before any work.
- owned: hold an exclusive lock on an output folder, so two runs into one folder cannot replace each
  other's files; the second is refused with one line.
- new_folder: fill a hidden sibling and rename it into place at the end, so a crash or Ctrl-C never leaves
  half a dataset.
- output_set: fill a hidden folder inside an owned output folder and move its files into place together, so an
  interrupted verb leaves its old outputs or its new ones, never some of each (plan.json without slim.pt).
- refuse_existing: an output folder that already holds a verb's results is replaced only with exist_ok=True.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from .errors import YoloslimError

LOCK_NAME = ".yoloslim.lock"
PARTIAL_PREFIX = ".yoloslim-partial-"  # output_set's staging folders


def file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def cannot_write(path, e: OSError, what: str = "") -> YoloslimError:
    """One line naming the path and the reason, with the fix."""
    path = Path(e.filename) if getattr(e, "filename", None) else Path(path)
    if isinstance(e, (NotADirectoryError, FileExistsError)):
        blocker = next((p for p in [path, *path.parents] if p.exists() and not p.is_dir()), path)
        return YoloslimError(
            f"cannot write {what or path}: {blocker} is a file, not a folder; choose another project=/name= or out="
        )
    full = e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
    fix = "free some space there, or choose another folder" if full else "choose a writable project=/name= or out="
    return YoloslimError(f"cannot write {what or path} ({e.strerror or type(e).__name__}); {fix}")


def atomic_write(path, write) -> Path:
    """Call write(tmp_path) and move the result to path in one rename. The temporary file is removed on every
    exit path Python sees (errors, KeyboardInterrupt, SIGTERM through the CLI)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # the name is shortened so that a path near the file system's limit still gets a temporary sibling
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:64]}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.chmod(tmp, file_mode())
        write(Path(tmp))
        os.replace(tmp, path)
    except OSError as e:
        raise cannot_write(path, e) from None
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def writable_dir(path, what: str = "") -> Path:
    """path, created if needed, with proof that a file can be written there. On failure the folders this
    call created are removed again and the error names the path and why."""
    path = Path(path)
    missing = [p for p in [path, *path.parents] if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".yoloslim-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        for p in missing:  # deepest first
            with contextlib.suppress(OSError):
                p.rmdir()
        raise cannot_write(path, e, what or f"in {path}") from None
    return path


@contextlib.contextmanager
def owned(folder):
    """Hold folder's lock file for the duration; a second holder is refused at once. Folders this call
    created are removed again if nothing was written in them."""
    folder = Path(folder)
    created = [p for p in [folder, *folder.parents] if not p.exists()]
    folder = writable_dir(folder)
    lock = folder / LOCK_NAME
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, file_mode())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise YoloslimError(
                f"{folder} is in use by another yoloslim run; wait for it to finish or choose another name="
            ) from None
        try:  # the holder before us may have removed the file we opened: lock the one on disk
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield folder
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)
        for p in created:  # deepest first; rmdir refuses a folder that is not empty
            with contextlib.suppress(OSError):
                p.rmdir()


@contextlib.contextmanager
def new_folder(out, overwrite: bool = False, inputs=()):
    """Yield a hidden sibling of `out` to fill; when the block ends it replaces `out` in one rename.
    Refused before any work: a non-empty `out` without overwrite, and an `out` that holds the current
    folder, a git repository or one of `inputs` (replacing it would delete them)."""
    out = Path(out).expanduser().absolute()
    if out.exists() and not overwrite and (out.is_file() or any(out.iterdir())):
        raise YoloslimError(f"{out} already exists and is not empty; pass overwrite=True to replace it")
    held = [Path.cwd(), *(Path(p) for p in inputs)]
    inside = next((p for p in held if Path(p).resolve().is_relative_to(out.resolve())), None)
    if out.exists() and (inside is not None or (out / ".git").exists()):
        what = "a git repository" if inside is None else "the current folder" if inside == held[0] else str(inside)
        raise YoloslimError(f"refusing to replace {out}: it holds {what}; choose another out=")
    if inside is not None and inside != held[0]:
        raise YoloslimError(f"out={out} would hold its own input {inside}; choose another out=")
    writable_dir(out.parent)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    previous = out.parent / f".{out.name}.old-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir()
        yield partial
        if out.exists():
            os.replace(out, previous)
        os.replace(partial, out)
    except OSError as e:
        raise cannot_write(out, e) from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    if previous.is_dir():
        shutil.rmtree(previous)
    elif previous.exists():
        previous.unlink()


@contextlib.contextmanager
def output_set(folder, last: str | None = None):
    """Yield a hidden staging folder inside `folder` (which the caller holds with owned()); when the block ends,
    every file written there is moved into `folder` (`last` moved last: the file that marks the set done), with
    Ctrl-C and SIGTERM held off until the moves are done. On any error or interrupt the staging folder is removed
    and `folder` keeps what it had. Staging folders left by a killed run (SIGKILL) are removed here: under the
    lock no other run can be writing them."""
    folder = Path(folder)
    for stale in folder.glob(f"{PARTIAL_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=folder))
    try:
        yield staging
        files = sorted(staging.iterdir(), key=lambda p: p.name == last)
        held = threading.current_thread() is threading.main_thread()
        if held:  # a signal arriving now is delivered after the moves, so the set is never half in place
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            for f in files:
                os.replace(f, folder / f.name)
        except OSError as e:
            raise cannot_write(folder / f.name, e) from None
        finally:
            if held:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def refuse_existing(folder, exist_ok: bool, results=None) -> None:
    """Refuse to replace a verb's earlier results in `folder` unless exist_ok: any of `results` (file names), or
    with results=None anything at all but the lock and staging folders."""
    folder = Path(folder)
    if exist_ok or not folder.is_dir():
        return
    held = sorted(
        p.name
        for p in folder.iterdir()
        if (p.name in results if results is not None else p.name != LOCK_NAME and not p.name.startswith(PARTIAL_PREFIX))
    )
    if held:
        shown = ", ".join(held[:3]) + (f" and {len(held) - 3} more" if len(held) > 3 else "")
        raise YoloslimError(f"{folder} already holds {shown}; pass exist_ok=True to replace it, or name=<new folder>")
