"""Load on the OpenAI-compatible server: 100 concurrent chat requests against one at a time.

Starts `testtime serve`'s app in this process on a loopback port, with the
embedded model, then sends (1) requests one at a time and (2) 100 requests at
once through the official async client, each with a small budget. Prints
errors, throughput (completion tokens/s counted from each response's usage),
p50/p95 latency, and the batching gain: tokens/s at 100 concurrent against one
at a time. Bounded: every request has a timeout and the run a deadline. Usage:

    .venv/bin/python bench/serve_load.py [--concurrent 100] [--sequential 8] [--budget 2] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import threading
import time

os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

from testtime.models import DEFAULT_MODEL  # noqa: E402

QUESTIONS = [
    "Tom has 3 apples and buys {k} more. How many apples does he have?",
    "A box holds {k} pens. How many pens are in 3 boxes?",
    "Sara reads {k} pages a day. How many pages does she read in a week?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def ask(client, index: int, budget: int, max_tokens: int) -> tuple[float, int, bool]:
    question = QUESTIONS[index % len(QUESTIONS)].format(k=index % 9 + 2)
    start = time.perf_counter()
    response = await client.chat.completions.create(
        model=f"{DEFAULT_MODEL}+majority", messages=[{"role": "user", "content": question}], max_tokens=max_tokens,
        extra_body={"testtime": {"budget": budget}})
    valid = (response.object == "chat.completion" and len(response.choices) == 1
             and response.choices[0].message.content is not None and response.usage.completion_tokens > 0)
    return time.perf_counter() - start, response.usage.completion_tokens, valid


async def phase(url: str, count: int, concurrent: bool, budget: int, max_tokens: int) -> dict:
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key="none", timeout=600, max_retries=0)
    start = time.perf_counter()
    if concurrent:
        outcomes = await asyncio.gather(*(ask(client, i, budget, max_tokens) for i in range(count)),
                                        return_exceptions=True)
    else:
        outcomes = []
        for i in range(count):
            try:
                outcomes.append(await ask(client, i, budget, max_tokens))
            except Exception as exc:  # counted as an error below
                outcomes.append(exc)
    seconds = time.perf_counter() - start
    await client.close()
    done = [o for o in outcomes if not isinstance(o, BaseException)]
    latencies = sorted(o[0] for o in done)
    tokens = sum(o[1] for o in done)
    return {
        "requests": count, "errors": count - len(done), "invalid": sum(not o[2] for o in done),
        "seconds": seconds, "completion_tokens": tokens, "tok_per_s": tokens / seconds,
        "p50_s": statistics.median(latencies) if latencies else None,
        "p95_s": latencies[int(0.95 * (len(latencies) - 1))] if latencies else None,
    }


def main() -> int:
    import uvicorn

    from testtime.generators.vllm_engine import VLLMGenerator
    from testtime.models import resolve_model
    from testtime.server.app import create_app
    from testtime.server.config import ServerConfig

    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--sequential", type=int, default=8)
    parser.add_argument("--budget", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()

    gen = VLLMGenerator(resolve_model(DEFAULT_MODEL))
    config = ServerConfig(port=free_port(), max_queue=max(256, args.concurrent), verifier=None)
    server = uvicorn.Server(uvicorn.Config(create_app(config, gen), host="127.0.0.1", port=config.port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{config.port}/v1"
    asyncio.run(phase(url, 2, False, args.budget, args.max_tokens))  # warm up
    one = asyncio.run(phase(url, args.sequential, False, args.budget, args.max_tokens))
    many = asyncio.run(phase(url, args.concurrent, True, args.budget, args.max_tokens))
    for name, row in (("one at a time", one), (f"{args.concurrent} concurrent", many)):
        print(f"{name:>15}: {row['requests']} requests, {row['errors']} errors, {row['invalid']} invalid, "
              f"{row['completion_tokens']} completion tokens in {row['seconds']:.1f} s = {row['tok_per_s']:.1f} tok/s, "
              f"latency p50 {row['p50_s']:.2f} s, p95 {row['p95_s']:.2f} s")
    print(f"batching gain (tok/s at {args.concurrent} concurrent / one at a time): "
          f"{many['tok_per_s'] / one['tok_per_s']:.2f}")
    server.should_exit = True
    gen.close()
    return 0 if many["errors"] == 0 and many["invalid"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
