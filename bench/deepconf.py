"""DeepConf online against offline (Fu et al. 2025) on GSM8K with the default model: completion tokens
per question and accuracy, paired on the same questions, with majority@N read from the offline
run's own traces (all N of them, unweighted: the same samples, no extra generation). One
`testtime run` (resumable); `--snapshot` writes its run store to bench/data/ for a later session.
`--keep` other than 0.9 (0.1 is the paper's aggressive "DeepConf-low") runs only its online unit, in a
store of its own, and pairs it with the offline traces of the first run (run that one first).

    .venv/bin/python bench/deepconf.py --questions 100 --n 16
    .venv/bin/python bench/deepconf.py --questions 100 --n 16 --keep 0.1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from snapshots import restore, run_options, run_resumable

DEFAULT_KEEP = 0.9  # the strategy's own default ("DeepConf-high")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--chunk-size", type=int, default=25)
    parser.add_argument("--keep", type=float, default=DEFAULT_KEEP,
                        help="online: the threshold is the (1 - keep) quantile of the warm-up traces' confidence")
    run_options(parser, "runs/deepconf")
    a = parser.parse_args()
    common = ["run", "--dataset", "gsm8k", "--data-root", a.data_root, "--limit", str(a.questions),
              "--chunk-size", str(a.chunk_size), "--n", str(a.n)]
    if a.keep == DEFAULT_KEEP:
        if not run_resumable([*common, "--strategy=deepconf[mode=offline]",
                              f"--strategy=deepconf[mode=online,warmup={a.warmup}]"], a.out, "deepconf", a.snapshot):
            return
        print(json.dumps(compare(a.out, a.out), indent=1))
        return
    name = f"deepconf-keep{a.keep:g}"
    online = a.out.with_name(f"{a.out.name}-keep{a.keep:g}")
    if not run_resumable([*common, f"--strategy=deepconf[mode=online,warmup={a.warmup},keep={a.keep:g}]"],
                         online, name, a.snapshot):
        return
    restore(a.out, "deepconf")  # the offline traces it is paired with
    print(json.dumps(compare(a.out, online), indent=1))


def compare(offline_dir: Path, online_dir: Path) -> dict:
    from testtime.analysis.paired import paired_difference
    from testtime.answers import answers_match, normalize_answer
    from testtime.selection import Candidate, select_majority
    from testtime.store import RunStore

    def units(run_dir: Path) -> dict:
        store = RunStore(run_dir)
        found = {d["mode"]: sorted(lines, key=lambda line: line["id"]) for d, lines in store.lines_by_unit()}
        store.close()
        return found

    offline, online = units(offline_dir)["offline"], units(online_dir)["online"]
    if [x["id"] for x in offline] != [x["id"] for x in online]:
        raise SystemExit(f"{offline_dir} and {online_dir} hold different questions: run both with the same --questions")
    runs = {"offline": offline, "online": online}

    def majority(line: dict) -> float:  # every offline trace votes once
        voters = [Candidate(c["text"], c["answer"], normalize_answer(c["answer"])) for c in line["candidates"]]
        chosen = select_majority(voters)
        return float(answers_match(chosen.answer if chosen else None, line["gold"]))

    correct = {"offline": [float(x["correct"]) for x in offline], "online": [float(x["correct"]) for x in online],
               "majority": [majority(x) for x in offline]}
    tokens = {mode: [x["ledger"]["completion_tokens"] for x in lines] for mode, lines in runs.items()}
    return {"questions": len(offline),
            "accuracy": {k: sum(v) / len(v) for k, v in correct.items()},
            "online_minus_offline": paired_difference(correct["online"], correct["offline"]).to_dict(),
            "offline_minus_majority": paired_difference(correct["offline"], correct["majority"]).to_dict(),
            "completion_tokens_per_question": {k: sum(v) / len(v) for k, v in tokens.items()},
            "online_token_saving": 1 - sum(tokens["online"]) / sum(tokens["offline"]),
            # per question, paired: what online saved, with its interval (over the same questions)
            "offline_minus_online_tokens": paired_difference(tokens["offline"], tokens["online"]).to_dict(),
            "aborted_traces": sum(x["aborted"] for x in online), "online_traces": sum(x["traces"] for x in online)}


if __name__ == "__main__":
    main()
