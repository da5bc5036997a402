"""What the search explorer shows: per question, every unit's answer, its samples, its tree or
its revision chains."""

from __future__ import annotations

from testtime.answers import stored_correct


def _clip(text: str | None, limit: int) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def chosen_path(nodes: list[dict], candidates: list[dict], chosen: int | None) -> list[int] | None:
    """Node ids from the root to the chosen solution, or None.

    A search's candidates are its terminal nodes in tree order (or, cut short, its
    leaves), so ``chosen`` indexes them; the path's text must spell the candidate,
    which guards against a strategy that orders its candidates differently.
    """
    if chosen is None or chosen >= len(candidates):
        return None
    by_id = {n["id"]: n for n in nodes}
    parents = {n["parent"] for n in nodes}
    ends = [n for n in nodes if n["terminal"]] or [n for n in nodes if n["parent"] is not None and n["id"] not in parents]

    def path(node: dict) -> list[dict]:
        out = [node]
        while out[-1]["parent"] is not None:
            out.append(by_id[out[-1]["parent"]])
        return out[::-1]

    want = candidates[chosen]["text"]
    ordered = [ends[chosen]] if chosen < len(ends) else []
    for end in ordered + ends:  # the indexed node first, then any end whose text matches
        nodes_on = path(end)
        if "".join(n["text"] for n in nodes_on) == want:
            return [n["id"] for n in nodes_on]
    return None


def _view(unit: dict, line: dict, limit: int) -> dict:
    gold = line["gold"]
    tree = line.get("tree")
    nodes = tree["nodes"] if tree else None
    return {
        "strategy": unit["strategy"], "budget": unit.get("budget"), "seed": unit.get("seed"),
        "kind": "tree" if tree else "chains" if line.get("chains") else "pool",
        "prediction": line.get("prediction"), "correct": bool(line.get("correct")), "chosen": line.get("chosen"),
        "candidates": [{"answer": _clip(c.get("answer"), limit) if c.get("verdict") else c.get("answer"),
                        "score": c.get("score"), "tokens": c.get("tokens"),
                        "correct": stored_correct(c, gold),
                        "text": _clip(c.get("text"), limit), **({"verdict": c["verdict"]} if c.get("verdict") else {})}
                       for c in line.get("candidates", [])],
        # Node texts are single steps; clip them too so one runaway step cannot bloat the page.
        "tree": [{**n, "text": _clip(n.get("text"), limit)} for n in nodes] if nodes is not None else None,
        "path": chosen_path(nodes, line.get("candidates", []), line.get("chosen")) if nodes else None,
        **({"chains": chain_indices(line)} if line.get("chains") else {}),
    }


def chain_indices(line: dict) -> list[dict]:
    """Each revision chain as the candidate indices of its attempts (candidates are chain by chain),
    how many earlier attempts each one saw, and the chain's own choice."""
    out, start = [], 0
    choices = line.get("chain_choices") or []
    for chain in line["chains"]:
        attempts = list(range(start, start + len(chain)))
        out.append({"attempts": attempts, "seen": [a.get("seen") for a in chain],
                    "choice": next((k for k in choices if k in attempts), None)})
        start += len(chain)
    return out


def explorer_data(lines_by_unit: list[tuple[dict, list[dict]]], limit_chars: int = 600) -> list[dict]:
    """Per question, in the first unit's order: {id, question, gold, views: one per unit that has it}."""
    units = [(unit, lines) for unit, lines in lines_by_unit if lines]  # a unit not yet run has no lines
    if not units:
        return []
    indexed = [(unit, {line["id"]: line for line in lines}) for unit, lines in units]
    out = []
    for first in units[0][1]:
        qid = first["id"]
        views = [_view(unit, by_id[qid], limit_chars) for unit, by_id in indexed if qid in by_id]
        out.append({"id": qid, "question": first["question"], "gold": first["gold"], "views": views})
    return out
