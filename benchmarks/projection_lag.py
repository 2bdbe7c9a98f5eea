from benchmarks.harness import Stack
from benchmarks.progress import Progress
from benchmarks.report import BenchResult

NAME = "projection_lag"
TITLE = "projection_lag"
NEEDS_CATALOG = False


async def run(stack: Stack, progress: Progress) -> BenchResult:
    return BenchResult(NAME, TITLE, status="ok", headline="stub")
