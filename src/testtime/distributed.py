"""Scale a plan out on Ray: chunks of questions go to workers, results stream back into the run store.

Each worker opens its own generator from a ``GeneratorSpec`` (an in-process vLLM
engine on its own GPU, or a connection to a served model) and solves whole
chunks, exactly the chunks a single process would solve. Seeds are per question
and independent of batching, so the results equal those of a single-process run.
Only the driver writes the store: workers on other nodes never touch its file.
"""

from __future__ import annotations

import os
from typing import Callable

from testtime.generators import EngineDied, GeneratorSpec, SamplingParams
from testtime.prompting import PromptTemplate
from testtime.runner import Chunk, Plan, Solved, Unit, check_prompts_fit, commit_all, solve_chunk
from testtime.store import RunStore
from testtime.strategies.base import Context
from testtime.verifiers.base import Verifier

# Settings every worker process needs before its engine starts (quiet logs, vLLM-CPU threads).
_WORKER_ENV = ("VLLM_LOGGING_LEVEL", "VLLM_CPU_KVCACHE_SPACE", "VLLM_CPU_NUM_OF_RESERVED_CPU", "HF_HUB_OFFLINE")


class ShardWorker:
    """A Ray actor's body: one generator, many chunks."""

    def __init__(self, spec: GeneratorSpec, verifier: Verifier | None, sampling: SamplingParams,
                 template: PromptTemplate, thinking_split: str):
        import ray

        self.generator = spec.open()
        self.ctx = Context(generator=self.generator, verifier=verifier, sampling=sampling, template=template,
                           seed=spec.seed, thinking_split=thinking_split)
        self.name = f"ray:{ray.get_runtime_context().get_node_id()[:8]}:pid{os.getpid()}"

    def solve(self, unit: Unit, chunk: Chunk) -> Solved:
        check_prompts_fit([t for _, t in chunk], self.generator, self.ctx.template)  # its first sight of them
        return unit.key, solve_chunk(unit, chunk, self.ctx), self.name

    def info(self) -> dict:
        return {"generator": self.generator.name, "parameters": self.generator.parameter_count}


def execute_on_ray(
    plan: Plan,
    spec: GeneratorSpec,
    verifier: Verifier | None,
    sampling: SamplingParams,
    store: RunStore,
    *,
    address: str = "local",
    workers: int = 2,
    template: PromptTemplate = PromptTemplate(),
    on_commit: Callable[[Unit, list[dict]], None] | None = None,
    thinking_split: str = "paragraph",
) -> dict:
    """Solve the plan's pending chunks on ``workers`` Ray actors; what the workers ran (generator, parameters).

    ``address`` is ``local`` (start Ray on this machine) or a cluster address (``ray://host:10001``
    or ``host:6379``). A worker takes one GPU when the cluster has GPUs and the backend is in-process vLLM.
    """
    import ray
    from ray.util import ActorPool

    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    items = list(plan.pending(store))
    if not items:
        return {}
    env = {name: os.environ[name] for name in _WORKER_ENV if name in os.environ}
    ray.init(address=None if address == "local" else address, include_dashboard=False,
             ignore_reinit_error=True, runtime_env={"env_vars": env}, log_to_driver=False)
    try:
        uses_gpu = spec.backend == "vllm" and ray.cluster_resources().get("GPU", 0) >= 1
        actor = ray.remote(num_gpus=1)(ShardWorker) if uses_gpu else ray.remote(num_cpus=1)(ShardWorker)
        actors = [actor.remote(spec, verifier, sampling, template, thinking_split) for _ in range(min(workers, len(items)))]
        try:
            commit_all(plan, store, ActorPool(actors).map_unordered(lambda a, item: a.solve.remote(*item), items),
                       on_commit)
        except ray.exceptions.RayTaskError as exc:
            # The worker's own exception (an upstream failure, a prompt too long) is what the user needs.
            cause = getattr(exc, "cause", None)
            raise (cause if isinstance(cause, Exception) else exc) from None
        except ray.exceptions.RayActorError as exc:  # its process is gone, and its engine with it
            reason = next(iter(str(exc).strip().splitlines()), type(exc).__name__)
            raise EngineDied(f"a Ray worker's process died (killed, out of memory, or its node lost?): {reason}") from None
        return ray.get(actors[0].info.remote())
    finally:
        ray.shutdown()
