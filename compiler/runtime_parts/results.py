# ---------------------------------------------------------------------- results




def _run(record, vocab, trial, criteria, cohorts=(), rules=None):
    """Evaluate one record: result format 1 (or an error result). Never raises.
    rules: the fingerprint of the rules, carried by every result as "rules" when given."""
    pid = None
    try:
        if type(record) is dict:
            p = record.get("id")
            pid = p if type(p) is str and p.strip() else None
        rec = _prepare(record, vocab)
    except _RecordError as exc:
        return _with_rules({"format": 1, "patient_id": pid, "status": "error", "error": str(exc)}, rules)
    except Exception as exc:  # a defect in this evaluator: report, never raise
        return _with_rules({"format": 1, "patient_id": pid, "status": "error",
                            "error": "internal error reading the record: %s" % (type(exc).__name__,)}, rules)
    out = []
    append = out.append
    n_fail = 0
    n_pass = 0
    for cid, ref, kind, fn in criteria:
        try:
            r = fn(rec)
        except Exception as exc:  # a defect in this evaluator: the criterion cannot be decided
            r = (None, "internal error evaluating %s: %s" % (cid, type(exc).__name__), (), False)
        t = r[0]
        if t is None:
            outcome = "review" if r[3] and not r[2] else "unknown"
        elif (t is True) == (kind == "inclusion"):
            outcome = "pass"
            n_pass += 1
        else:
            outcome = "fail"
            n_fail += 1
        append({"id": cid, "ref": ref, "kind": kind, "outcome": outcome,
                "reason": r[1] or outcome, "missing": list(r[2]) if outcome == "unknown" else []})
    status = "ineligible" if n_fail else ("eligible" if n_pass == len(out) else "indeterminate")
    result = {"format": 1, "patient_id": rec.id, "trial": trial}
    if rules is not None:
        result["rules"] = rules
    result["status"] = status
    result["criteria"] = out
    result["warnings"] = list(dict.fromkeys(rec.warnings))
    if cohorts:
        result["status"], result["cohorts"] = _cohort_status(out, cohorts)
    return result


def _cohort_status(out, cohorts):
    """Per cohort, the status over the criteria that apply to it (those of every cohort and its
    own); the patient is eligible when eligible for some cohort, ineligible when ineligible for
    every cohort, else indeterminate."""
    per = []
    for name, applies in cohorts:
        outcomes = [c["outcome"] for c, a in zip(out, applies) if a]
        st = ("ineligible" if "fail" in outcomes else
              "eligible" if all(o == "pass" for o in outcomes) else "indeterminate")
        per.append({"id": name, "status": st})
    sts = [c["status"] for c in per]
    status = ("eligible" if "eligible" in sts else
              "ineligible" if all(s == "ineligible" for s in sts) else "indeterminate")
    return status, per


def _with_rules(result, rules):
    """An error result with the rules' fingerprint after the patient id (when there is one)."""
    if rules is None:
        return result
    return {"format": 1, "patient_id": result["patient_id"], "rules": rules, "status": "error",
            "error": result["error"]}


# ---- end of runtime ----------------------------------------------------------------------
