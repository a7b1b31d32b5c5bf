#!/usr/bin/env python3
"""Evaluate `risk.onnx` (with onnxruntime) on the held-out trace and write MODEL_CARD.md and golden.json.

The held-out trace has its own seed and its own identities (`generate.py --seed 2 --prefix t-`): no
user, service or agent of the training trace appears in it. Scores are as the filter computes them:
score = round(100 * probability); tag from `tag_at` (30), step-up from `step_up_at` (70).

golden.json holds feature vectors and onnxruntime's outputs (probability and contributions); the Rust
test `risk::model::tests::parity_with_onnxruntime` checks tract against them (|diff| < 1e-4).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from sklearn.metrics import roc_auc_score

TAG_AT, STEP_UP_AT = 30, 70
DOCS: list[str] = []
# The engine's answers that stop or challenge a request (`warden features` carries each request's decision,
# taken with the final model embedded and `risk.responses` at its defaults: humans step up, agents and
# service accounts are throttled and suspended).
CAUGHT = {"step_up", "throttle", "suspend", "block"}
# An attack episode counts as caught if one of its first FIRST requests that reached the risk stage is: a
# request refused by authentication (a stuffed password, a forged token) is refused whatever the model
# says, so the goal measures whether the attack's first accepted requests are answered. The card also
# shows the plain reading (the first FIRST requests of any kind), so a reader sees both.
FIRST = 10
EPISODE_GOAL, BENIGN_LIMIT = 0.95, 0.005


SUSPEND_TTL_S = 900  # risk.responses.suspend.ttl_s, default


def answers(path: Path):
    """Per request of the trace, in order: (scenario, label, episode, decision, collateral, scored, retry).
    A benign request is collateral when it is refused by a suspension its identity earned with an attack
    episode of its own within the suspension's TTL (a rogue agent's ordinary calls while it is suspended);
    a request is scored when it reached the risk stage (it has features); a retry is a person's request
    sent again after answering a step-up challenge (`warden features` sends it)."""
    out = []
    attacked: dict[tuple, int] = {}
    with path.open() as f:
        for raw in f:
            line = json.loads(raw)
            if "feature_names" in line:
                continue
            who = (line.get("subject"), tuple(line.get("actors") or []))
            ts = int(line.get("ts_ms", 0))
            label = int(line["label"])
            if label and line.get("subject"):
                attacked[who] = ts
            collateral = (not label and line.get("decision") == "suspend" and who in attacked
                          and ts - attacked[who] <= SUSPEND_TTL_S * 1000)
            out.append((line["scenario"], label, line.get("episode", ""), line.get("decision", ""), collateral,
                        line.get("features") is not None, bool(line.get("step_up_retry"))))
    return out


def first_caught(decisions: list[str]) -> int | None:
    """Index of the first request the engine stopped or challenged, if any."""
    return next((i for i, x in enumerate(decisions) if x in CAUGHT), None)


def policy_rows(path: Path) -> tuple[list[str], list[str], bool]:
    """The engine's answers on the held-out trace: per attack scenario the share of episodes caught within
    their first FIRST requests that reached the risk stage (the goal) and within their first FIRST requests
    of any kind, per benign population the share of requests challenged. An episode none of whose requests
    reached the risk stage was refused by authentication throughout: counted apart, not in the share."""
    rows = answers(path)
    eps: dict[str, dict[str, list[tuple[str, bool]]]] = {}
    benign: dict[str, list[int]] = {}
    for scen, label, ep, decision, collateral, scored, retry in rows:
        if label:
            eps.setdefault(scen, {}).setdefault(ep, []).append((decision, scored))
        else:
            # A retry after a step-up is not a request of the trace (the share's denominator), but
            # if it is challenged again, that challenge counts.
            b = benign.setdefault(scen, [0, 0, 0])
            b[0] += int(not retry)
            b[1] += int(decision in CAUGHT and not collateral)
            b[2] += int(collateral)
    ok = True
    attack_lines, benign_lines = [], []
    for scen in sorted(eps):
        every = [[d for d, _ in run] for run in eps[scen].values()]
        scored = [[d for d, sc in run if sc] for run in eps[scen].values()]
        refused = sum(1 for d in scored if not d)
        runs = [d for d in scored if d]
        caught = sum(1 for d in runs if any(x in CAUGHT for x in d[:FIRST]))
        plain = sum(1 for d in every if any(x in CAUGHT for x in d[:FIRST]))
        seen = sorted(i for i in map(first_caught, runs) if i is not None)
        share = caught / len(runs) if runs else 1.0
        ok &= share >= EPISODE_GOAL
        kinds: dict[str, int] = {}
        for d in runs:
            for x in d[:FIRST]:
                if x in CAUGHT:
                    kinds[x] = kinds.get(x, 0) + 1
        how = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
        med = f"{np.median(seen):.0f}" if seen else "-"
        attack_lines.append(f"| {scen} | {len(every)} | {refused} | {caught} of {len(runs)} | {pct(share)} "
                            f"| {plain} of {len(every)} | {pct(plain / len(every))} | {med} | {how} |")
    for scen in sorted(benign):
        n, c, k = benign[scen]
        share = c / n if n else 0.0
        ok &= share <= BENIGN_LIMIT
        benign_lines.append(f"| {scen} | {n} | {c} | {share * 100:.2f}% | {k} |")
    return attack_lines, benign_lines, ok


def load(path: Path):
    global DOCS
    names: list[str] = []
    xs, ys, scenarios, engine, episodes = [], [], [], [], []
    refused: dict[str, list[int]] = {}
    with path.open() as f:
        for raw in f:
            line = json.loads(raw)
            if "feature_names" in line:
                names = list(line["feature_names"])
                DOCS = list(line.get("feature_docs", []))
                continue
            if line.get("step_up_retry"):
                continue  # a request sent again after a step-up: the trace's request is scored once
            if line.get("features") is None:
                r = refused.setdefault(line["scenario"], [0, 0])
                r[0] += 1
                r[1] += int(line["label"])
                continue
            xs.append(line["features"])
            ys.append(int(line["label"]))
            scenarios.append(line["scenario"])
            engine.append(line.get("risk_score"))
            episodes.append(line.get("episode", ""))
    return (names, np.asarray(xs, dtype=np.float32), np.asarray(ys), np.asarray(scenarios), refused,
            engine, np.asarray(episodes))


def pct(a: float) -> str:
    return f"{100 * a:.1f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--test", type=Path, required=True, help="`warden features` output, held out")
    ap.add_argument("--train-report", type=Path, help="train.py's JSON report (weights)")
    ap.add_argument("--card", type=Path, required=True)
    ap.add_argument("--golden", type=Path, required=True)
    ap.add_argument("--data", type=Path, nargs=2, metavar=("TRAIN", "TEST"),
                    help="generate.py's JSON summaries of the training and held-out traces")
    ap.add_argument("--rounds", type=Path, help="pipeline.sh's file with the number of training rounds")
    args = ap.parse_args()

    names, x, y, scen, refused, engine, episode = load(args.test)
    sess = ort.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    prob, contrib = sess.run(["probability", "contributions"], {"features": x})
    prob = prob.reshape(-1)
    # As the filter rounds (half away from zero).
    score = np.floor(100 * prob.astype(np.float64) + 0.5).astype(int)
    # The engine's own scores (tract, inside `warden features`) against onnxruntime's, request by request.
    same = sum(1 for a, b in zip(engine, score) if a is not None and int(a) == int(b))
    compared = sum(1 for a in engine if a is not None)
    meta = {p.key: p.value for p in onnx.load(str(args.model)).metadata_props}
    if meta.get("feature_names", "").split(",") != names:
        raise SystemExit("the model's feature_names differ from the test features' header")

    auc = roc_auc_score(y, prob)
    rows = []
    for s in sorted(set(scen), key=lambda s: (s.startswith("benign"), s)):
        m = scen == s
        n = int(m.sum())
        attack = bool(y[m].max())
        tag = float((score[m] >= TAG_AT).mean())
        step = float((score[m] >= STEP_UP_AT).mean())
        # Per attack scenario: this scenario's requests against every benign request.
        sm = m | (y == 0)
        s_auc = roc_auc_score(y[sm], prob[sm]) if attack else float("nan")
        rows.append((s, "attack" if attack else "benign", n, tag, step, float(np.median(score[m])), s_auc))
    attack_m, benign_m = y == 1, y == 0

    # Per attack episode: caught at all (any scored request at or above), and how many of its scored
    # requests went through before the first step-up.
    ep_rows = []
    for s in sorted(set(scen[attack_m])):
        eps = sorted(set(episode[(scen == s) & attack_m]))
        tagged = stepped = 0
        before = []
        for e in eps:
            sc = score[episode == e]  # in trace order
            tagged += int((sc >= TAG_AT).any())
            hit = np.flatnonzero(sc >= STEP_UP_AT)
            stepped += int(hit.size > 0)
            if hit.size:
                before.append(int(hit[0]))
        med = f"{np.median(before):.0f}" if before else "-"
        ep_rows.append(f"| {s} | {len(eps)} | {tagged} | {stepped} | {med} |")

    # Which factors the filter would name (top 3 positive contributions) per attack scenario.
    factor_lines = []
    for s in sorted(set(scen[attack_m])):
        m = (scen == s) & (score >= TAG_AT)
        counts: dict[str, int] = {}
        for row in contrib[m]:
            top = [i for i in np.argsort(-row, kind="stable")[:3] if row[i] > 0]
            for i in top:
                counts[names[i]] = counts.get(names[i], 0) + 1
        best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:4]
        factor_lines.append(f"| {s} | " + ", ".join(f"{k} ({v})" for k, v in best) + " |")

    weights = {}
    if args.train_report:
        weights = json.loads(args.train_report.read_text())

    data = [json.loads(p.read_text()) for p in args.data] if args.data else []
    rounds = args.rounds.read_text().strip() if args.rounds else ""
    benign_pops = sorted(set(scen[benign_m]))

    out = []
    out.append("# Model card: Warden risk model (`model/risk.onnx`)\n")
    out.append("Generated by `make model` (model/pipeline.sh, model/evaluate.py); do not edit by hand.\n")
    out.append("## What it is, and why this family\n")
    out.append(
        "A logistic regression over the engine's behavioural features (`warden features`, the same Rust\n"
        "code the filter runs), trained with scikit-learn and exported as a five-node ONNX graph\n"
        "(MatMul, Add, Sigmoid; Sub, Mul). It outputs `probability` (of an attack) and `contributions`\n"
        "= (x - baseline) * w, one per feature, which add up exactly to the logit minus a constant:\n"
        "the filter's factors (`x-auth-risk-factors`) are the largest positive ones. The filter scores\n"
        "`round(100 * probability)`; it tags from `risk.tag_at` (30) and asks for step-up from\n"
        f"`risk.step_up_at` (70). Model file: {args.model.stat().st_size} bytes.\n")
    out.append(
        "Why linear: the behavioural work (baselines per identity, novelty, rates) is done by the engine's\n"
        "features, so a linear score on them separates the scenarios below (ROC AUC near 1) while every\n"
        "explanation is exact (no attribution approximations), inference is one dot product (~1 us), and\n"
        "the graph needs five ONNX ops, which keeps the Wasm filter small. Trees or an MLP would buy\n"
        "interactions at the cost of approximate explanations and a larger runtime.\n")
    out.append(
        "Training: one weight per scenario population (every scenario weighs the same in total; attacks\n"
        "and benign halves equal; within an attack scenario every episode weighs the same, its first\n"
        f"requests most: 1 / (1 + position) among the first 10, a tenth of that after), L2 (C = {weights.get('c', 1):g}), "
        "lbfgs. Sign constraints: the risk signals (new country,\n"
        "client, network, travel, failures, velocity, ...) can only raise the risk and the caller's kind\n"
        "(`agent`, `service`) can only lower it: a weight learnt with the wrong sign is fixed at 0 and the\n"
        "rest refit. `delegation_depth`, `history` and `first_seen` say who the caller is, not what it\n"
        "does, and get weight 0. Calibration, per kind of caller: balanced training puts the boundary at\n"
        "probability 0.5, so the intercept is then lowered until at most "
        f"{100 * weights.get('false_tag_target', float('nan')):.1f}% of each benign training population's\n"
        f"people score at or above 30 and at most "
        f"{100 * weights.get('people_challenge_target', weights.get('challenge_target', float('nan'))):.1f}% "
        "at or above 70, and the `agent` and `service` weights (each kind's own intercept) until at most "
        f"{100 * weights.get('challenge_target', float('nan')):.1f}% of that kind's requests score at or above "
        "30 (the throttle answers them from there): one shift for all would spend one kind's budget on "
        f"another's (shift {weights.get('calibration_shift', float('nan')):.3f}; kind weights "
        f"{', '.join(f'{k} {v:+.3f}' for k, v in weights.get('kind_weights', {}).items()) or 'none'}; "
        f"fixed at 0 by a constraint: {', '.join(weights.get('constrained_to_zero', [])) or 'none'}).\n")
    if weights.get("operator_weights"):
        ow = weights["operator_weights"]
        out.append(
            "Set, not learnt: `bad_source` (the operator's `risk.deny_cidrs`) weighs "
            f"{ow.get('bad_source', float('nan')):+.3f}, so that the median benign\n"
            "training request, sent from a listed network, scores 30 (habitual callers score lower, unusual\n"
            "ones higher): the simulated attacks from such networks are caught by other signals, so the fit\n"
            "left it near 0 and a deny list would have changed no score. `impossible_travel` weighs at least "
            f"{ow.get('impossible_travel', float('nan')):+.3f},\n"
            "so that nine in ten benign training requests score 70 with it: it fires on the first request from afar\n"
            "only (once that passes, the far country is where the caller was last seen), so a fit over whole\n"
            "episodes gives it too little weight to challenge that request. `recent_failures` weighs "
            f"{ow.get('recent_failures', float('nan')):+.3f}\n"
            "(at least +2.5: eight refusals amid 12 successes then add 4.3 to the logit): a probe's refusals\n"
            "come before the risk stage, so the fit sees only the few requests of it that are scored, next\n"
            "to many benign requests after a single slip.\n")
    if rounds:
        out.append(
            "The engine learns an identity's habits only from requests it lets through, so features depend\n"
            "on the embedded model (a thief who is challenged keeps a \"new\" client). Training starts from a\n"
            f"neutral model (nothing stepped up) and runs {rounds} rounds: each embeds the latest model and\n"
            "trains on the features the engine then computes, so the final model is trained on features\n"
            "as a filter running a trained model sees them (a fixed-point iteration oscillates between\n"
            "signals). The held-out features below come from the engine with the final model embedded.\n")
    out.append("## Intended use\n")
    out.append(
        "Score API requests that already carry a valid credential, inside the gateway, to tag unusual\n"
        "ones for the upstream and to ask for step-up authentication on the risky ones; roll out in\n"
        "shadow mode first and tune the thresholds on recorded traffic with `warden replay`.\n"
        "Not for: refusing traffic on its own without shadow evaluation on your own traffic; judging\n"
        "requests refused before the risk stage (no credential, bad token, missing scope).\n")
    out.append("## Data\n")
    out.append(
        "Synthetic, from `model/generate.py` (seeded): humans with diurnal habits who sometimes travel\n"
        "(`benign_travel`), steady service accounts, bursty-but-stable AI agents acting for users\n"
        "(delegated tokens, allowed by the config's `delegation` section; `kinds` marks the service\n"
        "accounts), humans behind one office NAT address (`benign_office`: many identities, one\n"
        "source), and benign twins of the attacks: an agent paging through the customer list every\n"
        "night (`benign_paging_agent`), people opening a part of the app they never used\n"
        "(`benign_new_area`) or starting to use the phone app at home (`benign_new_device`: a new client,\n"
        "then a known one), agents whose tools are also called through their MCP client\n"
        "(`benign_agent_new_client`: a second program with the same token). Benign traffic fails as it\n"
        "does in production: clients send a token that has expired\n"
        "(401), refresh it and retry; humans open a page outside their scopes (403). An identity's\n"
        "requests in the 15 minutes after its own benign failure are `benign_after_failure`. People\n"
        "answer a step-up challenge (RFC 9470): a benign human's request carries the token its IdP issues\n"
        "after a second factor (`acr` mfa, `auth_time` now), and `warden features` sends the request again\n"
        "with it when the engine challenges it (the retry is not a request of the trace: the shares below\n"
        "count the challenge, not the retry, and training leaves it out). Attackers cannot. Attacks,\n"
        "injected after a two-day warm-up: a stolen token replayed from a new\n"
        "country and client, an agent gone rogue (100x volume; sweep of sensitive endpoints), credential\n"
        "stuffing, privilege probing, off-hours destructive writes, impossible travel. Tokens are real\n"
        "EdDSA JWTs verified by the engine with `model/config.json`. The held-out trace has its own seed,\n"
        "disjoint identities (`t-` prefix) and its own attack episodes.\n")
    if data:
        out.append("| trace | generator parameters | requests | per scenario |")
        out.append("|---|---|---:|---|")
        for label, d in zip(("training", "held-out"), data):
            params = ", ".join(f"{k} {v}" for k, v in d["params"].items() if v not in ("", None))
            per = ", ".join(f"{k} {v}" for k, v in d["scenarios"].items())
            out.append(f"| {label} | {params} | {d['lines']} | {per} |")
        out.append("")
    if weights:
        out.append(f"Training rows (requests that reached the risk stage): "
                   f"{weights['rows']} ({weights['attacks']} attack).\n")
    out.append("## Held-out evaluation\n")
    out.append(f"Requests scored: {len(y)} ({int(attack_m.sum())} attack, {int(benign_m.sum())} benign). "
               f"**ROC AUC {auc:.4f}.**\n")
    out.append(f"All attacks: detection {pct((score[attack_m] >= TAG_AT).mean())} at tag_at=30, "
               f"{pct((score[attack_m] >= STEP_UP_AT).mean())} at step_up_at=70. All benign: false tags "
               f"{pct((score[benign_m] >= TAG_AT).mean())}, false challenges "
               f"{pct((score[benign_m] >= STEP_UP_AT).mean())}. Per benign population: "
               + "; ".join(f"{s} {pct((score[scen == s] >= TAG_AT).mean())} / "
                           f"{pct((score[scen == s] >= STEP_UP_AT).mean())}" for s in benign_pops)
               + " (false tag / false challenge).\n")
    out.append("| scenario | kind | requests scored | score >= 30: detection (attack) or false tag (benign) "
               "| score >= 70: detection (attack) or false challenge (benign) | median score | ROC AUC vs benign |")
    out.append("|---|---|---:|---:|---:|---:|---:|")
    for s, kind, n, tag, step, med, s_auc in rows:
        a = f"{s_auc:.4f}" if kind == "attack" else ""
        out.append(f"| {s} | {kind} | {n} | {pct(tag)} | {pct(step)} | {med:.0f} | {a} |")
    out.append("")
    out.append("Per attack episode (a run of requests by one attacker): episodes with at least one scored request "
               "tagged or sent to step-up, and the median number of its scored requests that passed before the "
               "first step-up.\n")
    out.append("| scenario | episodes | tagged | stepped up | requests before step-up |")
    out.append("|---|---:|---:|---:|---:|")
    out.extend(ep_rows)
    out.append("")
    attack_lines, benign_lines, met = policy_rows(args.test)
    out.append("### The engine's answers (held-out trace, decisions of `warden features`)\n")
    out.append(f"What the filter does with these scores, request by request, with `risk.responses` at its defaults "
               f"(humans: RFC 9470 step-up; agents and service accounts: the throttle at twice their own pace from "
               f"tag_at, suspension after sustained step-up-level scores). Goal: every attack scenario has at least "
               f"{EPISODE_GOAL:.0%} of its episodes stepped up, throttled, suspended or blocked within its first "
               f"{FIRST} requests; every benign population at most {BENIGN_LIMIT:.1%} of its requests challenged "
               f"(any of those answers). **Goal {'met' if met else 'NOT met'}.**\n")
    held = data[1]["params"].get("episodes") if len(data) > 1 else None
    if held:
        out.append(f"The held-out trace has {held} episodes of each attack (generator parameters above): with "
                   f"{held}, {EPISODE_GOAL:.0%} of them allows {held - int(np.ceil(EPISODE_GOAL * held))} "
                   f"missed.\n")
    out.append(f"An episode's first {FIRST} requests, for the goal, are its first {FIRST} requests that reached "
               f"the risk stage: a request refused by authentication (a stuffed password, a forged or expired "
               f"token, a missing scope) is refused whatever the model says, so the goal measures whether the "
               f"attack's first accepted requests are answered. An episode none of whose requests reached the "
               f"risk stage was refused by authentication throughout and is counted apart. The plain reading, "
               f"the first {FIRST} requests of any kind (refusals by authentication included, which count as "
               f"not caught), is shown beside it. The median and the answers are over the requests that "
               f"reached the risk stage.\n")
    out.append(f"| attack scenario | episodes | refused by authentication throughout | caught within {FIRST} "
               f"scored requests | share (goal) | caught within {FIRST} requests of any kind | share "
               f"| median scored requests before the first | answers within the first {FIRST} scored |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    out.extend(attack_lines)
    out.append("")
    out.append("Collateral: requests of an identity suspended for its own attack episode (the same agent gone "
               f"rogue), refused within the suspension's {SUSPEND_TTL_S} s; not counted as challenged.\n")
    out.append("| benign population | requests | challenged | share | collateral |")
    out.append("|---|---:|---:|---:|---:|")
    out.extend(benign_lines)
    out.append("")
    out.append(f"The engine's own scores (tract, in `warden features`) equal onnxruntime's on {same} of "
               f"{compared} held-out requests.\n")
    if refused:
        out.append("Requests the engine refused before the risk stage (no features, not scored): "
                   + ", ".join(f"{s} {v[0]}" for s, v in sorted(refused.items())) + ".\n")
    out.append("Top factors named for tagged attack requests (how often each is among the top 3):\n")
    out.append("| scenario | factors |")
    out.append("|---|---|")
    out.extend(factor_lines)
    out.append("")
    out.append("## Features and weights\n")
    out.append("The engine's list (`warden features` header; plugin/src/risk/features.rs, the `Feature` enum). "
               "Weight: the logistic coefficient; baseline: the median benign training request.\n")
    out.append("| feature | weight | baseline | what it is |")
    out.append("|---|---:|---:|---|")
    for i, n in enumerate(names):
        w = weights.get("weights", {}).get(n, float("nan"))
        b = weights.get("baseline", {}).get(n, float("nan"))
        doc = DOCS[i].replace("|", "\\|") if i < len(DOCS) else ""
        out.append(f"| {n} | {w:+.3f} | {b:.3f} | {doc} |")
    out.append(f"\nIntercept: {weights.get('bias', float('nan')):+.3f} (fitted "
               f"{weights.get('fitted_bias', float('nan')):+.3f}, minus the calibration shift).\n")
    out.append("## Limits\n")
    out.append(
        "- Trained on synthetic traffic: the rates above say the features separate these scenarios, not\n"
        "  what happens on your traffic. Replay your own traces (`warden replay`) in shadow mode first,\n"
        "  and set `risk.tag_at` / `risk.step_up_at` from your own false-tag rates.\n"
        "- Linear: no interactions between features (a new country on a low-sensitivity read weighs the\n"
        "  same as on an export) except those the engine computes as features of their own\n"
        "  (`offhours_write`: the hour's unusualness on a write). That is what makes every factor exact\n"
        "  and inference cost ~1 us.\n"
        "- An attacker who stays inside the victim's habits (same country, client, network, hours, pace)\n"
        "  is not seen; neither is the first request of a new identity, which has no baseline\n"
        "  (`first_seen`), `velocity` needs 10 minutes and 3 busy 5-minute buckets of history, and\n"
        "  `burst` 10 minutes and 32 requests, `machine_pace` 32 requests and a run's second request.\n"
        "- Requests refused before scoring (stuffing attempts with bad tokens, calls outside the scopes)\n"
        "  only feed the failure counts (`source_failures`, `recent_failures`), which the next valid\n"
        "  request carries.\n"
        "- `velocity` compares the last 5 minutes with the identity's usual busy 5-minute bucket, `burst`\n"
        "  the last few seconds (2 s decay) with its usual pace at its own requests, and `machine_pace`\n"
        "  (agents and services) the run of requests since its last pause of 10 s with its usual gap:\n"
        "  `machine_pace` and `burst` see a flood within a few requests, `velocity` keeps seeing it as it\n"
        "  goes on. Within a few requests pace alone cannot tell a flood at four times an agent's burst\n"
        "  pace from a quick stretch of a burst with random gaps; the flood's larger answers\n"
        "  (`response_volume`) settle it. A flood at the pace of the\n"
        "  identity's own bursts is seen only by `velocity`, and a rogue agent that ramps up slowly\n"
        "  over days moves both baselines with it (only requests let through teach them, so a flood\n"
        "  that is stepped up does not, and a pace beyond the habit teaches `burst` only its edge).\n"
        "- Some signals get weight 0 from the sign constraints on this data (listed above): they were\n"
        "  learnt as protective, e.g. the simulation's benign travellers have new countries and networks\n"
        "  more often than its thieves, who are caught by their new client and the source's failures\n"
        "  instead, and humans delete orders in the daytime too. On traffic where that is not so, retrain.\n"
        "- `source_failures` excuses one failure per 10 recent successes from the same address, so that\n"
        "  an office or carrier NAT is not a stuffing source after a few expired tokens. The other side:\n"
        "  an attacker behind a busy NAT, or one who mixes 10 successful calls of an account of his own\n"
        "  into every guess, hides in that allowance; his victims' records still see the new client,\n"
        "  network and country, and his own account's `recent_failures` and pace.\n"
        + "".join(f"- Weak here: `{r[0]}` is sent to step-up for only {pct(r[4])} of its requests (tagged\n"
                  f"  {pct(r[3])}); its signals (hour, method, sensitivity) are ones benign humans also show.\n"
                  for r in rows if r[1] == "attack" and r[4] < 0.5) +
        "- The caller's kind can only lower the risk (" + ", ".join(
            f"`{k}` {weights.get('weights', {}).get(k, 0.0):+.3f}" for k in ("agent", "service"))
        + "): an agent is never scored higher\n  for being an agent, only for what it does.\n")
    # Measured numbers live in one place, written by `make footprint` on a quiet machine: a copy here
    # would go stale whenever the model is retrained without re-measuring (or the other way round).
    out.append("## Footprint\n")
    out.append("Module size, V8 compile time, Envoy start-up and inference time inside Envoy are measured by\n"
               "`make footprint` (model/footprint.py) and kept in [BENCHMARKS.md](BENCHMARKS.md).\n")
    args.card.write_text("\n".join(out))

    # Golden vectors: every scenario represented, plus the extremes of the input range.
    rng = np.random.default_rng(7)
    picks = []
    for s in sorted(set(scen)):
        idx = np.flatnonzero(scen == s)
        picks.extend(sorted(rng.choice(idx, size=min(4, len(idx)), replace=False).tolist()))
    gx = np.concatenate([x[picks], np.zeros((1, len(names)), np.float32),
                         np.full((1, len(names)), 6.0, np.float32)])
    gp, gc = sess.run(["probability", "contributions"], {"features": gx})
    golden = {"feature_names": names,
              "cases": [{"features": [float(v) for v in gx[i]],
                         "probability": float(gp.reshape(-1)[i]),
                         "contributions": [float(v) for v in gc[i]]} for i in range(len(gx))]}
    args.golden.write_text(json.dumps(golden, indent=1) + "\n")
    print(json.dumps({"auc": round(float(auc), 4), "card": str(args.card), "golden": len(gx),
                      "engine_scores_equal": f"{same}/{compared}"}))


if __name__ == "__main__":
    main()
