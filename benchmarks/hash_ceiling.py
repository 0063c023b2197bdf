"""How close this machine gets to item 5's limit (cores / one hash) with nothing but hashing to do:
``python benchmarks/hash_ceiling.py [SECONDS]`` prints hashes per second for a few process x thread layouts,
each as a share of the limit. geologin's servers cannot beat the row of their own layout (GEOLOGIN_WORKERS
x GEOLOGIN_THREADS; the benchmarks use 2 x 4)."""
import multiprocessing
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from argon2 import PasswordHasher  # noqa: E402

from geologin.config import DEFAULTS  # noqa: E402

PASSWORD = "Bench-login-correct-horse-42"
LAYOUTS = [(1, 1), (2, 1), (1, 2), (2, 2), (2, 4)]


def hasher():
    """argon2id at geologin's default cost (the one item 5's limit is about)."""
    return PasswordHasher(time_cost=int(DEFAULTS["ARGON2_TIME_COST"]), memory_cost=int(DEFAULTS["ARGON2_MEMORY_COST"]),
                          parallelism=int(DEFAULTS["ARGON2_PARALLELISM"]))


def cost_label():
    return (f"m={DEFAULTS['ARGON2_MEMORY_COST']} KiB, t={DEFAULTS['ARGON2_TIME_COST']}, "
            f"p={DEFAULTS['ARGON2_PARALLELISM']}")


def _process(threads, seconds, counts):
    argon2 = hasher()
    hashed = argon2.hash(PASSWORD)
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def loop(slot):
        while time.perf_counter() < stop:
            argon2.verify(hashed, PASSWORD)
            done[slot] += 1

    workers = [threading.Thread(target=loop, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    counts.put(sum(done))


def rate(processes, threads, seconds):
    counts = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_process, args=(threads, seconds, counts)) for _ in range(processes)]
    started = time.perf_counter()
    for proc in procs:
        proc.start()
    total = sum(counts.get() for _ in procs)
    for proc in procs:
        proc.join()
    return total / (time.perf_counter() - started)


def one_hash(samples=30):
    """Seconds for one verification on one core, nothing else hashing (median of ``samples``)."""
    argon2 = hasher()
    hashed = argon2.hash(PASSWORD)
    argon2.verify(hashed, PASSWORD)
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        argon2.verify(hashed, PASSWORD)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 6.0
    cores = multiprocessing.cpu_count()
    print(f"{cores} cores; argon2id {cost_label()}; {seconds:g} s per layout\n")
    print("| processes x threads | hashes/s | one hash just before (ms) | limit (cores / one hash) | share of limit |")
    print("| --- | --- | --- | --- | --- |")
    for processes, threads in LAYOUTS:
        hash_seconds = one_hash()
        limit = cores / hash_seconds
        measured = rate(processes, threads, seconds)
        print(f"| {processes} x {threads} | {measured:.1f} | {hash_seconds * 1000:.1f} | {limit:.1f} | "
              f"{measured / limit:.2f} |")


if __name__ == "__main__":
    main()
